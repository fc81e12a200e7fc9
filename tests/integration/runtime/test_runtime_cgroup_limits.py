"""cgroup membership and limits as the container sees them, runc vs dockyard-runtime.

The container reads its own cgroup files (mounted read-only under /sys/fs/cgroup); the test
reads the host side of the same cgroup. Both runtimes must write the same values.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.runc

FILES = [
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "memory/memory.swappiness",
    "memory/memory.oom_control",
    "pids/pids.max",
    "blkio/blkio.weight",
    "devices/devices.list",
    "freezer/freezer.state",
]


def _read_all(files) -> str:
    return "; ".join(f"echo '== {name}'; cat /sys/fs/cgroup/{name} 2>&1" for name in files)


def _by_file(stdout: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    name = None
    for line in stdout.splitlines():
        if line.startswith("== "):
            name = line[3:]
            out[name] = []
        elif name is not None:
            out[name].append(line)
    # The kernel lists device rules in the order they were written; runc writes them sorted
    # (its rule emulator), we in the spec's order. The set is what is enforced.
    out["devices/devices.list"] = sorted(out.get("devices/devices.list", []))
    return {name: "\n".join(lines) for name, lines in out.items()}


def _limited(spec):
    spec["linux"]["resources"].update(
        {
            "memory": {"limit": 96 << 20, "reservation": 48 << 20, "swap": 128 << 20},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 64},
            "blockIO": {"weight": 300},
        }
    )


def test_limits_match_runc(runtimes, bundle):
    runs = runtimes.run_both(bundle(["sh", "-c", _read_all(FILES)], edit=_limited))
    seen = {name: _by_file(run.stdout) for name, run in runs.items()}
    assert seen["dockyard"] == seen["runc"]
    ours = seen["dockyard"]
    assert ours["cpu/cpu.shares"] == "512"
    assert ours["cpu/cpu.cfs_quota_us"] == "50000"
    assert ours["memory/memory.limit_in_bytes"] == str(96 << 20)
    assert ours["memory/memory.soft_limit_in_bytes"] == str(48 << 20)
    assert ours["memory/memory.memsw.limit_in_bytes"] == str(128 << 20)
    assert ours["pids/pids.max"] == "64"
    assert ours["cpuset/cpuset.cpus"] == "0"
    assert ours["freezer/freezer.state"] == "THAWED"
    # Docker's default rules: everything denied but the usual nodes (and mknod of any).
    assert "a *:* rwm" not in ours["devices/devices.list"]
    assert "c 1:3 rwm" in ours["devices/devices.list"].splitlines()


def test_default_limits_match_runc(runtimes, bundle):
    runs = runtimes.run_both(bundle(["sh", "-c", _read_all(FILES)]))
    seen = {name: _by_file(run.stdout) for name, run in runs.items()}
    assert seen["dockyard"] == seen["runc"]


def test_device_rules_are_enforced(runtimes, bundle):
    """A node the rules do not allow cannot be opened even by root with CAP_MKNOD."""
    script = "; ".join(
        [
            "rm -f /tmp/sda /tmp/mem",  # the next run uses the same rootfs
            "mknod /tmp/sda b 8 0 && echo made",
            "probe read /tmp/sda",
            "probe read /dev/null",
            "mknod /tmp/mem c 1 1 && probe read /tmp/mem",
        ]
    )
    runs = runtimes.run_both(bundle(["sh", "-c", script]))
    assert runs["dockyard"].stdout == runs["runc"].stdout
    assert runs["dockyard"].stdout.splitlines() == [
        "made",
        "open: EPERM",
        "read: 0 bytes",
        "open: EPERM",
    ]


def test_membership(runtimes, bundle, cgroups):
    """The container's processes are in its cgroup in every hierarchy, and only them."""
    for runtime in runtimes.all:
        made = bundle(["sleep", "600"], edit=_limited)
        runtime.ok("run", "--detach", "--bundle", made.path, "c")
        pid = runtime.state("c")["pid"]
        directories = cgroups.leftovers(made.cgroup)
        # cpu, cpuacct, cpuset, memory, devices, freezer, blkio, pids, systemd, unified
        assert len(directories) >= 9
        for directory in directories:
            assert (directory / "cgroup.procs").read_text().split() == [str(pid)], directory
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                assert line.rstrip("\n").endswith(f":{made.cgroup}"), (runtime, line)
        runtime.ok("delete", "--force", "c")
