"""After delete (or a failed create) nothing is left: no state, no cgroup, no mount, no process."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.runc


def _host_mounts_mentioning(path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


def _processes_in(cgroups, cgroup: str) -> list[str]:
    return [
        pid
        for directory in cgroups.leftovers(cgroup)
        for pid in (directory / "cgroup.procs").read_text().split()
    ]


def assert_nothing_left(runtime, cgroups, container_id: str, made, pids=()) -> None:
    assert runtime("state", container_id).returncode == 1
    assert not (runtime.root / container_id).exists()
    assert cgroups.leftovers(made.cgroup) == []
    assert _host_mounts_mentioning(made.path) == []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state in ("Z", "X"), f"process {pid} outlived its container"


def test_delete_after_exit(runtime, bundle, cgroups):
    made = bundle(["true"])
    runtime.ok("create", "--bundle", made.path, "c")
    pid = runtime.state("c")["pid"]
    assert cgroups.leftovers(made.cgroup)  # the cgroup exists while the container does
    runtime.ok("start", "c")
    runtime.wait_status("c", "stopped")
    runtime.ok("delete", "c")
    assert_nothing_left(runtime, cgroups, "c", made, [pid])


def test_force_delete_of_a_busy_container(runtime, bundle, cgroups):
    def with_mounts(spec):
        spec["mounts"].append(
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
        )

    made = bundle(["sleep", "600"], edit=with_mounts)
    runtime.ok("run", "--detach", "--bundle", made.path, "c")
    runtime.ok("exec", "--detach", "c", "sleep", "600")
    runtime.ok("exec", "--detach", "c", "sh", "-c", "sleep 600 & sleep 600")
    pids = json.loads(runtime.ok("ps", "--format", "json", "c"))
    assert len(pids) >= 4
    runtime.ok("delete", "--force", "c")
    assert_nothing_left(runtime, cgroups, "c", made, pids)


def test_delete_of_a_paused_container(runtime, bundle, cgroups):
    made = bundle(["sleep", "600"])
    runtime.ok("run", "--detach", "--bundle", made.path, "c")
    pid = runtime.state("c")["pid"]
    runtime.ok("pause", "c")
    runtime.ok("delete", "--force", "c")
    assert_nothing_left(runtime, cgroups, "c", made, [pid])


def test_run_deletes_what_it_ran(runtime, bundle, cgroups):
    made = bundle(["sh", "-c", "exit 5"])
    assert runtime("run", "--bundle", made.path, "c").returncode == 5
    assert_nothing_left(runtime, cgroups, "c", made)


def _missing_program(spec):
    spec["process"]["args"] = ["/no/such/program"]


def _bad_mount(spec):
    spec["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/source"})


def _bad_sysctl(spec):
    spec["linux"]["sysctl"] = {"net.no.such.key": "1"}


def _bad_device(spec):
    spec["linux"]["devices"] = [{"path": "/dev/x", "type": "q", "major": 1, "minor": 1}]


@pytest.mark.parametrize("breakage", [_missing_program, _bad_mount, _bad_sysctl, _bad_device])
def test_a_failed_create_leaves_nothing(runtimes, bundle, cgroups, breakage):
    made = bundle(["true"], edit=breakage)
    statuses = {}
    for runtime in runtimes.all:
        made.fresh_cgroup()
        result = runtime("create", "--bundle", made.path, "c")
        statuses[runtime.name] = result.returncode
        assert_nothing_left(runtime, cgroups, "c", made)
    assert statuses == {"runc": 1, "dockyard": 1}


def test_delete_kills_what_outlived_the_init(runtime, bundle, cgroups):
    """Without a pid namespace the init's children survive it; delete must not leave them."""

    def host_pid_namespace(spec):
        spec["linux"]["namespaces"] = [
            ns for ns in spec["linux"]["namespaces"] if ns["type"] != "pid"
        ]

    made = bundle(["sh", "-c", "sleep 600 & echo $! > /tmp/child; exit 0"], edit=host_pid_namespace)
    runtime.ok("create", "--bundle", made.path, "c")
    runtime.ok("start", "c")
    runtime.wait_status("c", "stopped")
    child = int((made.rootfs / "tmp" / "child").read_text())
    assert set(_processes_in(cgroups, made.cgroup)) == {str(child)}  # in every hierarchy
    runtime.ok("delete", "c", timeout=5)
    assert_nothing_left(runtime, cgroups, "c", made, [child])
