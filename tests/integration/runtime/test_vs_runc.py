"""The same bundles under runc and dockyard-runtime: what the process sees must be equal.

Each test runs one bundle under both runtimes with `run` (so the exit status passes through)
and compares what the container printed, after normalising what must differ between two runs
(ids, cgroup names, mount ids, anonymous device numbers). Then it checks the values themselves,
so a test also fails when both runtimes are wrong the same way.
"""

from __future__ import annotations

import difflib
import os
import subprocess

import pytest
from runtime_helpers import REPORT, normalize_report, sections

pytestmark = pytest.mark.runc

# The default capability set (Docker's 14) as /proc/<pid>/status shows it.
DEFAULT_CAPS_HEX = "00000000a80425fb"


def _accept_readonly_cgroup_tmpfs(report: dict[str, list[str]]) -> None:
    """Known difference: the spec mounts /sys/fs/cgroup "ro"; runc leaves the tmpfs holding the
    hierarchies writable (the hierarchies themselves are read-only in both), we make that
    mount read-only. Stricter is safer, so our line is rewritten to runc's after checking
    that only the mount's own flag differs."""
    for index, line in enumerate(report.get("mountinfo", [])):
        if " /sys/fs/cgroup " in line and " - tmpfs " in line:
            left, _, right = line.partition(" - ")
            assert " ro," in left and right.split()[2].startswith("rw,"), line
            report["mountinfo"][index] = left.replace(" ro,", " rw,") + " - " + right


def compare(runs) -> dict[str, list[str]]:
    """Assert both runs exited alike and printed the same; returns the (normalised) report."""
    reports = {name: normalize_report(run.stdout, run.id, run.cgroup) for name, run in runs.items()}
    _accept_readonly_cgroup_tmpfs(reports["dockyard"])
    assert runs["dockyard"].returncode == runs["runc"].returncode, runs
    assert reports["dockyard"].keys() == reports["runc"].keys()
    for name, theirs in reports["runc"].items():
        ours = reports["dockyard"][name]
        assert ours == theirs, f"{name} differs:\n" + "\n".join(
            difflib.unified_diff(theirs, ours, "runc", "dockyard", lineterm="")
        )
    return reports["dockyard"]


def test_default_spec(runtimes, bundle):
    made = bundle(["sh", "-c", REPORT])
    runs = runtimes.run_both(made)
    report = compare(runs)
    assert runs["runc"].returncode == 0, runs
    assert report["status"] == [
        "CapInh:\t0000000000000000",
        f"CapPrm:\t{DEFAULT_CAPS_HEX}",
        f"CapEff:\t{DEFAULT_CAPS_HEX}",
        f"CapBnd:\t{DEFAULT_CAPS_HEX}",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t0",
        "Seccomp:\t2",
        "Seccomp_filters:\t1",
    ]
    assert report["hostname"] == [made.spec["hostname"]]
    assert report["id"] == ["uid=0(root) gid=0(root)"]
    assert all(line.endswith(":<cgroup>") for line in report["cgroup"]), report["cgroup"]
    assert "HOME=/root" in report["env"]  # from the image's /etc/passwd, as runc does
    points = [line.split()[4] for line in report["mountinfo"]]
    for point in ("/", "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/shm"):
        assert point in points


@pytest.mark.parametrize(
    ("script", "status"),
    [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("exec probe nosuchcommand", 2)],
)
def test_exit_status(runtimes, bundle, script, status):
    runs = runtimes.run_both(bundle(["sh", "-c", script]))
    assert runs["runc"].returncode == runs["dockyard"].returncode == status, runs


def test_missing_cwd_is_created(runtimes, bundle):
    def cwd(spec):
        spec["process"]["cwd"] = "/no/such/dir"

    made = bundle(["sh", "-c", "pwd; stat -c '%a %u' ."], edit=cwd)
    runs = runtimes.run_both(made)
    assert runs["dockyard"].stdout == runs["runc"].stdout == "/no/such/dir\n755 0\n"


def test_readonly_rootfs(runtimes, bundle):
    def readonly(spec):
        spec["root"]["readonly"] = True

    script = "touch /newfile; echo touch=$?; touch /tmp/x; echo tmp=$?; " + REPORT
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=readonly))
    report = compare(runs)
    output = runs["dockyard"].stdout
    assert "touch=1" in output and "tmp=1" in output
    root = next(line for line in report["mountinfo"] if line.split()[4] == "/")
    assert root.split()[5].startswith("ro,"), root


def test_user_and_no_new_privileges(runtimes, bundle):
    def unprivileged(spec):
        process = spec["process"]
        process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 0o027}
        process["noNewPrivileges"] = True
        process["capabilities"] = {
            key: ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
            for key in ("bounding", "effective", "permitted", "inheritable", "ambient")
        }
        process["cwd"] = "/tmp"

    runs = runtimes.run_both(bundle(["sh", "-c", REPORT], edit=unprivileged))
    report = compare(runs)
    assert report["id"] == ["uid=1000 gid=1000 groups=5(tty),100(users)"]
    # CAP_KILL (5) and CAP_NET_BIND_SERVICE (10), kept across the uid change by ambient.
    assert "CapEff:\t0000000000000420" in report["status"]
    assert "CapAmb:\t0000000000000420" in report["status"]
    assert "NoNewPrivs:\t1" in report["status"]
    assert report["umask"] == ["0027"]
    assert report["cwd"] == ["/tmp"]
    assert "HOME=/" in report["env"]  # uid 1000 has no passwd entry


def test_memory_limit_oom_kills_the_hog_only(runtimes, bundle):
    limit = 32 << 20

    def limited(spec):
        spec["linux"]["resources"]["memory"] = {"limit": limit, "swap": limit}

    script = (
        "probe hog 256 >/dev/null; echo hog=$?; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes; "
        "grep oom_kill /sys/fs/cgroup/memory/memory.oom_control; echo alive"
    )
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=limited))
    compare(runs)
    assert runs["dockyard"].stdout.splitlines() == [
        "hog=137",  # SIGKILL from the OOM killer
        str(limit),
        str(limit),
        "oom_kill_disable 0",
        "oom_kill 1",
        "alive",
    ]
    assert runs["dockyard"].returncode == 0


def test_pids_limit_stops_a_fork_bomb(runtimes, bundle):
    def limited(spec):
        spec["linux"]["resources"]["pids"] = {"limit": 16}

    script = "cat /sys/fs/cgroup/pids/pids.max; probe forks 1000; echo forks=$?"
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=limited))
    compare(runs)
    # sh and the probe count against the limit: 14 children fit, then fork says EAGAIN.
    assert runs["dockyard"].stdout.splitlines() == [
        "16",
        "forks: 14 of 1000",
        "fork: EAGAIN",
        "forks=1",
    ]


def _deny_mkdir(action: str):
    def edit(spec):
        spec["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action, "errnoRet": 13}],
        }

    return edit


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("SCMP_ACT_ERRNO", ["mkdir: EACCES", "status=1", "Seccomp:\t2"]),
        ("SCMP_ACT_KILL", ["status=159", "Seccomp:\t2"]),  # 128 + SIGSYS
        ("SCMP_ACT_ALLOW", ["mkdir: ok", "status=0", "Seccomp:\t2"]),  # the control
    ],
)
def test_seccomp_denied_syscall(runtimes, bundle, action, expected):
    # rmdir: the next run of the bundle must find no /tmp/made.
    script = (
        "probe mkdir /tmp/made; echo status=$?; rmdir /tmp/made 2>/dev/null; "
        "grep ^Seccomp: /proc/self/status"
    )
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=_deny_mkdir(action)))
    compare(runs)
    assert runs["dockyard"].stdout.splitlines() == expected


@pytest.mark.parametrize("readonly", [False, True])
def test_user_namespace(runtimes, bundle, readonly):
    def userns(spec):
        linux = spec["linux"]
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["root"]["readonly"] = readonly

    script = "cat /proc/self/uid_map /proc/self/gid_map; stat -c '%u %g' /bin/busybox; " + REPORT
    made = bundle(["sh", "-c", script], edit=userns)
    runs = runtimes.run_both(made)
    report = compare(runs)
    assert runs["dockyard"].returncode == 0, runs
    head = runs["dockyard"].stdout.split("---")[0].split()
    assert head == ["0", "100000", "65536", "0", "100000", "65536", "65534", "65534"]
    assert report["id"] == ["uid=0(root) gid=0(root)"]
    assert report["hostname"] == [made.spec["hostname"]]


def test_rlimits_lowered(runtimes, bundle):
    def lowered(spec):
        spec["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
            {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]

    script = "ulimit -n; ulimit -Hn; ulimit -u; " + REPORT
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=lowered))
    report = compare(runs)
    assert runs["dockyard"].stdout.splitlines()[:3] == ["512", "1024", "100"]
    assert any(line.split()[3:5] == ["512", "1024"] for line in report["limits"])


def test_rlimit_above_the_hard_limit_fails_clearly(runtimes, bundle):
    if _has_sys_resource():
        pytest.fail("this host grants CAP_SYS_RESOURCE: no limit is out of reach here")
    hard = int(subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True).stdout)

    def raised(spec):
        spec["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": hard + 1000, "hard": hard + 1000}
        ]

    made = bundle(["true"], edit=raised)
    results = {}
    for runtime in runtimes.all:
        made.fresh_cgroup()
        results[runtime.name] = runtime("create", "--bundle", made.path, "c")
        assert runtime("state", "c").returncode == 1  # nothing was created
    assert results["runc"].returncode == results["dockyard"].returncode == 1, results
    assert "RLIMIT_NOFILE" in results["dockyard"].stderr
    assert "CAP_SYS_RESOURCE" in results["dockyard"].stderr


def _has_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        effective = next(line for line in f if line.startswith("CapEff:"))
    return bool(int(effective.split()[1], 16) & (1 << 24))


def test_sysctl(runtimes, bundle):
    def sysctl(spec):
        spec["linux"]["sysctl"] = {
            "net.ipv4.ip_unprivileged_port_start": "80",
            "kernel.shmmni": "1000",
        }

    script = "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni"
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=sysctl))
    compare(runs)
    assert runs["dockyard"].stdout.split() == ["80", "1000"]


def test_oom_score_adj(runtimes, bundle):
    def adjusted(spec):
        spec["process"]["oomScoreAdj"] = 500

    runs = runtimes.run_both(bundle(["cat", "/proc/self/oom_score_adj"], edit=adjusted))
    compare(runs)
    assert runs["dockyard"].stdout.strip() == "500"


def test_masked_and_readonly_paths(runtimes, bundle):
    def extra(spec):
        spec["linux"]["maskedPaths"] += ["/etc/passwd", "/home", "/nonexistent"]
        spec["linux"]["readonlyPaths"] += ["/var", "/nonexistent2"]

    checks = {
        "kcore": "probe read /proc/kcore",
        "keys": "probe read /proc/keys",
        "passwd": "probe read /etc/passwd",
        "home": "ls -A /home | wc -l",
        "firmware": "ls -A /sys/firmware | wc -l",
        "sysrq": "probe write /proc/sysrq-trigger h",
        "var": "probe mkdir /var/x",
        "home-write": "probe mkdir /home/x",
        "proc-sys": "probe write /proc/sys/kernel/domainname x",
    }
    script = "; ".join(f"echo -n '{name} '; {command}" for name, command in checks.items())
    runs = runtimes.run_both(bundle(["sh", "-c", f"{script}; {REPORT}"], edit=extra))
    compare(runs)
    seen = dict(line.split(" ", 1) for line in runs["dockyard"].stdout.split("---")[0].splitlines())
    # Some kernels have no /proc/kcore or /proc/sysrq-trigger: absent is as good as masked.
    assert seen.pop("kcore") in ("read: 0 bytes", "open: ENOENT")
    assert seen.pop("sysrq") in ("open: EROFS", "open: ENOENT")
    assert seen == {
        "keys": "read: 0 bytes",
        "passwd": "read: 0 bytes",
        "home": "0",
        "firmware": "0",
        "var": "mkdir: EROFS",
        "home-write": "mkdir: EROFS",
        "proc-sys": "open: EROFS",
    }


def test_devices(runtimes, bundle):
    def devices(spec):
        spec["linux"]["devices"] = [
            {
                "path": "/dev/fuse",
                "type": "c",
                "major": 10,
                "minor": 229,
                "fileMode": 0o640,
                "uid": 1000,
                "gid": 1001,
            },
            {"path": "/dev/sub/loopish", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620},
        ]

    script = (
        "stat -c '%n %F %a %u %g %t %T' /dev/fuse /dev/sub/loopish /dev/null; "
        "cd /dev && stat -c '%n %F %a %u %g %t %T %N' * | sort; "
        "echo hello > /dev/null && echo null-writable; head -c 1 /dev/fuse; echo fuse=$?"
    )
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=devices))
    compare(runs)
    lines = runs["dockyard"].stdout.splitlines()
    assert lines[:3] == [
        "/dev/fuse character special file 640 1000 1001 a e5",
        "/dev/sub/loopish block special file 600 0 0 7 c8",
        "/dev/null character special file 620 0 0 1 3",
    ]
    assert "null-writable" in lines


def test_join_network_namespace(runtimes, bundle):
    """A second container joins the first one's network namespace by path."""
    for runtime in runtimes.all:
        first = bundle(["sleep", "60"])
        runtime.ok("run", "--detach", "--bundle", first.path, f"{runtime.name}-first")
        pid = runtime.state(f"{runtime.name}-first")["pid"]
        wanted = os.readlink(f"/proc/{pid}/ns/net")

        def join(spec, pid=pid):
            for entry in spec["linux"]["namespaces"]:
                if entry["type"] == "network":
                    entry["path"] = f"/proc/{pid}/ns/net"

        script = "readlink /proc/self/ns/net; readlink /proc/self/ns/uts"
        second = bundle(["sh", "-c", script], edit=join)
        output = runtime.ok("run", "--bundle", second.path, f"{runtime.name}-second")
        net, uts = output.split()
        assert net == wanted, runtime
        assert uts != os.readlink(f"/proc/{pid}/ns/uts"), runtime  # only the network is shared
        runtime.ok("delete", "--force", f"{runtime.name}-first")


def test_bind_mount_propagation(runtimes, bundle, tmp_path):
    """rslave binds see mounts the host makes later; rprivate ones do not."""
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        (shared / "late").mkdir()
        outputs = {}
        for runtime in runtimes.all:
            outputs[runtime.name] = _propagation_run(runtime, bundle, shared)
    finally:
        subprocess.run(["umount", "-R", "-l", str(shared)], check=False)
    assert outputs["dockyard"] == outputs["runc"]
    assert outputs["dockyard"]["slave"] == "seen"
    assert outputs["dockyard"]["private"] == "missing"


def _propagation_run(runtime, bundle, shared) -> dict[str, object]:
    def binds(spec):
        for name, propagation in (("slave", "rslave"), ("private", "rprivate")):
            spec["mounts"].append(
                {
                    "destination": f"/mnt/{name}",
                    "type": "bind",
                    "source": str(shared),
                    "options": ["rbind", propagation],
                }
            )

    made = bundle(["sleep", "60"], edit=binds)
    container_id = f"{runtime.name}-propagation"
    runtime.ok("run", "--detach", "--bundle", made.path, container_id)
    late = shared / "late"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(late)], check=True)
    (late / "marker").write_text("x")
    try:
        seen: dict[str, object] = {}
        for name in ("slave", "private"):
            result = runtime("exec", container_id, "sh", "-c", f"test -e /mnt/{name}/late/marker")
            seen[name] = "seen" if result.returncode == 0 else "missing"
        mountinfo = runtime.ok("exec", container_id, "cat", "/proc/self/mountinfo")
    finally:
        subprocess.run(["umount", str(late)], check=True)
    # Mount point and propagation tags ("master", "shared"), without the peer group numbers.
    seen["mounts"] = sorted(
        " ".join([fields[4], *(tag.split(":")[0] for tag in fields[6:])])
        for fields in (line.split(" - ")[0].split() for line in mountinfo.splitlines())
        if fields[4].startswith("/mnt/")
    )
    runtime.ok("delete", "--force", container_id)
    return seen


def test_report_sections_parse():
    """The comparison helpers themselves: sections split as expected."""
    assert sections("--- a\n1\n--- b\n2\n3\n") == {"a": ["1"], "b": ["2", "3"]}
