"""`exec` into a running container: same security as the init, options, status, detaching."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.runc

SECURITY = "grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status"


def _running(runtime, bundle, **edits) -> str:
    made = bundle(["sleep", "600"], **edits)
    container_id = f"{runtime.name}-c"
    runtime.ok("run", "--detach", "--bundle", made.path, container_id)
    return container_id


def _security_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/status") as f:
        return [line.rstrip("\n") for line in f if line.startswith(("Cap", "Seccomp", "NoNewPr"))]


def test_exec_has_the_init_security_settings(runtime, bundle):
    container_id = _running(runtime, bundle)
    init = runtime.state(container_id)["pid"]
    seen = runtime.ok("exec", container_id, "sh", "-c", SECURITY).splitlines()
    assert seen == _security_of(init)
    assert "Seccomp:\t2" in seen


def test_exec_of_a_no_new_privileges_container(runtime, bundle):
    def nnp(spec):
        spec["process"]["noNewPrivileges"] = True

    container_id = _running(runtime, bundle, edit=nnp)
    seen = runtime.ok("exec", container_id, "sh", "-c", SECURITY).splitlines()
    assert seen == _security_of(runtime.state(container_id)["pid"])
    assert "NoNewPrivs:\t1" in seen


def test_exec_options_match_runc(runtimes, bundle):
    script = f"{SECURITY}; id; echo FOO=$FOO; echo HOME=$HOME; pwd"
    outputs = {}
    for runtime in runtimes.all:
        container_id = _running(runtime, bundle)
        outputs[runtime.name] = {
            "cap": runtime.ok(
                "exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_ADMIN", container_id,
                "sh", "-c", SECURITY,
            ),
            "user": runtime.ok(
                "exec", "--user", "1000:1000", "--additional-gids", "5", container_id,
                "sh", "-c", script,
            ),
            "env-cwd": runtime.ok(
                "exec", "--env", "FOO=bar", "--env", "PATH=/bin", "--cwd", "/tmp", container_id,
                "sh", "-c", f"{script}; echo PATH=$PATH",
            ),
            "nnp": runtime.ok(
                "exec", "--no-new-privs", container_id, "sh", "-c", SECURITY
            ),
        }  # fmt: skip
    assert outputs["dockyard"] == outputs["runc"]
    ours = outputs["dockyard"]
    # CAP_SYS_ADMIN (21) and CAP_NET_ADMIN (12) on top of the default 14.
    assert "CapEff:\t00000000a82435fb" in ours["cap"]
    assert "uid=1000 gid=1000 groups=5(tty)" in ours["user"]
    assert "CapEff:\t0000000000000000" in ours["user"]
    assert ours["env-cwd"].splitlines()[-4:] == [
        "FOO=bar",
        "HOME=/root",
        "/tmp",
        "PATH=/bin",
    ]
    assert "NoNewPrivs:\t1" in ours["nnp"]


def test_exec_process_json(runtime, bundle, tmp_path):
    container_id = _running(runtime, bundle)
    process = {
        "args": ["sh", "-c", "echo $GREETING; id -u; pwd"],
        "env": ["PATH=/bin", "GREETING=hello"],
        "cwd": "/etc",
        "user": {"uid": 33, "gid": 33},
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    assert runtime.ok("exec", "--process", path, container_id).split() == ["hello", "33", "/etc"]


@pytest.mark.parametrize(
    ("script", "status"), [("exit 0", 0), ("exit 7", 7), ("kill -KILL $$", 137)]
)
def test_exec_exit_status_passes_through(runtime, bundle, script, status):
    container_id = _running(runtime, bundle)
    result = runtime("exec", container_id, "sh", "-c", script)
    assert result.returncode == status, result


def test_exec_detached_with_a_pid_file(runtime, bundle, tmp_path):
    container_id = _running(runtime, bundle)
    pid_file = tmp_path / "exec.pid"
    runtime.ok("exec", "--detach", "--pid-file", pid_file, container_id, "sleep", "600")
    pid = int(pid_file.read_text())
    init = runtime.state(container_id)["pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x00600\x00"
    for namespace in ("pid", "mnt", "net", "uts", "ipc"):
        assert _namespace(pid, namespace) == _namespace(init, namespace), namespace
    pids = json.loads(runtime.ok("ps", "--format", "json", container_id))
    assert sorted(pids) == sorted([init, pid])
    assert _security_of(pid) == _security_of(init)


def _namespace(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_exec_refused_unless_running(runtime, bundle):
    made = bundle(["sleep", "600"])
    runtime.ok("create", "--bundle", made.path, "c")
    runtime.ok("start", "c")
    runtime.ok("pause", "c")
    paused = runtime("exec", "c", "true")
    assert paused.returncode != 0 and "paused" in paused.stderr
    runtime.ok("resume", "c")
    runtime.ok("kill", "c", "KILL")
    runtime.wait_status("c", "stopped")
    stopped = runtime("exec", "c", "true")
    assert stopped.returncode != 0 and "stopped" in stopped.stderr


def test_exec_failure_status_matches_runc(runtimes, bundle):
    """runc exits 255 when exec itself fails, so it never looks like the process's status."""
    statuses = {}
    for runtime in runtimes.all:
        container_id = _running(runtime, bundle)
        missing = runtime("exec", container_id, "/no/such/program")
        bad_cwd = runtime("exec", "--cwd", "/nonexistent", container_id, "true")
        absent = runtime("exec", "nosuch", "true")
        statuses[runtime.name] = [missing.returncode, bad_cwd.returncode, absent.returncode]
        assert "/no/such/program" in missing.stderr
    assert statuses["dockyard"] == statuses["runc"] == [255, 255, 255]


def test_exec_into_a_user_namespace(runtimes, bundle):
    def userns(spec):
        linux = spec["linux"]
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]

    outputs = {}
    for runtime in runtimes.all:
        container_id = _running(runtime, bundle, edit=userns)
        script = f"id; cat /proc/self/uid_map; {SECURITY}"
        outputs[runtime.name] = runtime.ok("exec", container_id, "sh", "-c", script)
        pid = runtime.state(container_id)["pid"]
        assert _namespace(pid, "user") != _namespace(os.getpid(), "user")
    assert outputs["dockyard"] == outputs["runc"]
    assert outputs["dockyard"].split()[:4] == ["uid=0(root)", "gid=0(root)", "0", "200000"]
