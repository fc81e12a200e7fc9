"""The container lifecycle with runc's semantics, checked under both runtimes.

Tests taking `runtime` run once per runtime with the same assertions: runc passing is what
shows the assertion is runc's behaviour; tests taking `runtimes` compare the two directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from runtime_helpers import wait_until

pytestmark = pytest.mark.runc

SLEEPER = ["sleep", "600"]
# pid 1 only gets signals it handles: trap TERM and say so, then say we are ready.
TRAPPER = [
    "sh",
    "-c",
    "trap 'echo term > /tmp/got; exit 0' TERM; touch /tmp/ready; sleep 600 & wait",
]


def _started(runtime, bundle, args=SLEEPER, **edits) -> tuple[str, object]:
    made = bundle(args, **edits)
    container_id = f"{runtime.name}-c"
    runtime.ok("create", "--bundle", made.path, container_id)
    runtime.ok("start", container_id)
    return container_id, made


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_status_transitions(runtime, bundle, tmp_path):
    made = bundle(SLEEPER)
    container_id = f"{runtime.name}-c"
    pid_file = tmp_path / "pid"
    runtime.ok("create", "--bundle", made.path, "--pid-file", pid_file, container_id)
    created = runtime.state(container_id)
    assert created["status"] == "created"
    assert created["pid"] == int(pid_file.read_text()) > 0
    assert _alive(created["pid"])
    assert created["bundle"] == str(made.path)
    assert created["rootfs"] == str(made.rootfs)
    assert created["id"] == container_id
    time.strptime(created["created"][:19], "%Y-%m-%dT%H:%M:%S")

    runtime.ok("start", container_id)
    assert runtime.status(container_id) == "running"
    runtime.ok("pause", container_id)
    assert runtime.status(container_id) == "paused"
    runtime.ok("resume", container_id)
    assert runtime.status(container_id) == "running"
    runtime.ok("kill", container_id, "KILL")
    runtime.wait_status(container_id, "stopped")
    stopped = runtime.state(container_id)
    assert stopped["pid"] == 0
    assert not _alive(created["pid"])
    runtime.ok("delete", container_id)
    gone = runtime("state", container_id)
    assert gone.returncode == 1
    assert "does not exist" in gone.stderr


def test_state_json_matches_runc(runtimes, bundle):
    """Same keys, same values where they do not name the run, at every status."""
    seen = {}
    for runtime in runtimes.all:
        made = bundle(SLEEPER)
        container_id = f"{runtime.name}-c"
        states = []
        runtime.ok("create", "--bundle", made.path, container_id)
        states.append(runtime.state(container_id))
        runtime.ok("start", container_id)
        states.append(runtime.state(container_id))
        runtime.ok("pause", container_id)
        states.append(runtime.state(container_id))
        runtime.ok("kill", container_id, "KILL")
        runtime.wait_status(container_id, "stopped")
        states.append(runtime.state(container_id))
        listed = json.loads(runtime.ok("list", "--format", "json"))
        quiet = runtime.ok("list", "-q").split()
        assert quiet == [container_id]
        for entry in [*states, *listed]:
            assert entry.pop("id") == container_id
            assert entry.pop("bundle") == str(made.path)
            assert entry.pop("rootfs") == str(made.rootfs)
            entry["pid"] = "pid" if entry["pid"] else 0
            assert entry.pop("created").endswith("Z")
        seen[runtime.name] = {"states": states, "list": listed}
    assert seen["dockyard"] == seen["runc"]
    assert [s["status"] for s in seen["dockyard"]["states"]] == [
        "created",
        "running",
        "paused",
        "stopped",
    ]


@pytest.mark.parametrize("name", ["KILL", "SIGKILL", "9"])
def test_kill_by_name_and_number(runtime, bundle, name):
    container_id, _ = _started(runtime, bundle)
    runtime.ok("kill", container_id, name)
    runtime.wait_status(container_id, "stopped")


@pytest.mark.parametrize("name", [None, "TERM", "SIGTERM", "15"])
def test_kill_delivers_the_signal(runtime, bundle, name):
    container_id, made = _started(runtime, bundle, TRAPPER)
    wait_until((made.rootfs / "tmp" / "ready").exists, what="the trap")
    runtime.ok("kill", container_id, *([name] if name else []))  # SIGTERM is the default
    runtime.wait_status(container_id, "stopped")
    assert (made.rootfs / "tmp" / "got").read_text() == "term\n"


def test_kill_all(runtime, bundle):
    container_id, _ = _started(runtime, bundle)
    runtime.ok("exec", "--detach", container_id, "sleep", "600")
    pids = json.loads(runtime.ok("ps", "--format", "json", container_id))
    assert len(pids) == 2
    runtime.ok("kill", "--all", container_id, "KILL")
    runtime.wait_status(container_id, "stopped")
    wait_until(lambda: not any(_alive(pid) for pid in pids), what="every process to die")


def test_delete_refuses_a_running_container(runtime, bundle):
    container_id, _ = _started(runtime, bundle)
    pid = runtime.state(container_id)["pid"]
    refused = runtime("delete", container_id)
    assert refused.returncode == 1
    assert "cannot delete container" in refused.stderr and "running" in refused.stderr
    assert runtime.status(container_id) == "running"
    runtime.ok("delete", "--force", container_id)
    assert runtime("state", container_id).returncode == 1
    assert not _alive(pid)


def test_kill_a_created_container(runtime, bundle):
    made = bundle(SLEEPER)
    runtime.ok("create", "--bundle", made.path, "c")
    runtime.ok("kill", "c", "KILL")
    runtime.wait_status("c", "stopped")
    assert runtime("start", "c").returncode == 1


def test_delete_of_a_created_container_needs_no_force(runtime, bundle):
    made = bundle(SLEEPER)
    runtime.ok("create", "--bundle", made.path, "c")
    pid = runtime.state("c")["pid"]
    runtime.ok("delete", "c")
    assert not _alive(pid)


def test_pause_freezes_the_processes(runtime, bundle):
    container_id, _ = _started(runtime, bundle)
    pid = runtime.state(container_id)["pid"]
    runtime.ok("pause", container_id)
    with open(f"/proc/{pid}/cgroup") as f:
        freezer = next(line for line in f if ":freezer:" in line).strip().split(":", 2)[2]
    with open(f"/sys/fs/cgroup/freezer{freezer}/freezer.state") as f:
        assert f.read().strip() == "FROZEN"
    assert runtime("pause", container_id).returncode == 1  # already paused
    runtime.ok("resume", container_id)
    assert runtime("resume", container_id).returncode == 1  # not paused


def test_pause_a_created_container(runtime, bundle):
    made = bundle(SLEEPER)
    runtime.ok("create", "--bundle", made.path, "c")
    runtime.ok("pause", "c")
    assert runtime.status("c") == "paused"
    runtime.ok("resume", "c")
    assert runtime.status("c") == "created"
    runtime.ok("start", "c")
    assert runtime.status("c") == "running"


def test_kill_a_paused_container(runtime, bundle):
    container_id, _ = _started(runtime, bundle)
    runtime.ok("pause", container_id)
    runtime.ok("kill", container_id, "KILL")
    runtime.wait_status(container_id, "stopped")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["state", "nosuch"], "does not exist"),
        (["start", "nosuch"], "does not exist"),
        (["kill", "nosuch", "KILL"], "does not exist"),
        (["delete", "nosuch"], "does not exist"),
        (["pause", "nosuch"], "does not exist"),
        (["ps", "nosuch"], "does not exist"),
        (["create", "--bundle", "/nonexistent", "c"], "/nonexistent"),
    ],
)
def test_errors_exit_1(runtime, command, message):
    result = runtime(*command)
    assert result.returncode == 1, result
    assert message in result.stderr


def test_errors_on_wrong_states_exit_1(runtime, bundle):
    made = bundle(SLEEPER)
    runtime.ok("create", "--bundle", made.path, "c")
    again = runtime("create", "--bundle", made.path, "c")
    assert again.returncode == 1 and "exists" in again.stderr
    invalid = runtime("create", "--bundle", made.path, "bad/id")
    assert invalid.returncode == 1 and "invalid" in invalid.stderr
    runtime.ok("start", "c")
    assert runtime("start", "c").returncode == 1
    runtime.ok("kill", "c", "KILL")
    runtime.wait_status("c", "stopped")
    assert runtime("kill", "c", "KILL").returncode == 1
    assert runtime("start", "c").returncode == 1
    assert runtime("kill", "c", "NOSUCHSIGNAL").returncode == 1


def test_delete_force_of_a_missing_container_succeeds(runtime):
    assert runtime("delete", "--force", "nosuch").returncode == 0


def test_run_returns_128_plus_the_signal(runtime, bundle):
    made = bundle(SLEEPER)
    process = subprocess.Popen(
        runtime.command("run", "--bundle", made.path, "c"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: runtime("state", "c").stdout.count('"running"') == 1, what="running")
        runtime.ok("kill", "c", "KILL")
        assert process.wait(timeout=10) == 128 + signal.SIGKILL
    finally:
        process.kill()
        process.wait()
    assert runtime("state", "c").returncode == 1  # run deletes what it ran


def test_run_keep_and_detach(runtime, bundle):
    made = bundle(["true"])
    runtime.ok("run", "--keep", "--bundle", made.path, "kept")
    assert runtime.status("kept") == "stopped"
    made = bundle(SLEEPER)
    runtime.ok("run", "--detach", "--bundle", made.path, "detached")
    assert runtime.status("detached") == "running"


def test_ps(runtime, bundle):
    container_id, _ = _started(runtime, bundle)
    pid = runtime.state(container_id)["pid"]
    assert json.loads(runtime.ok("ps", "--format", "json", container_id)) == [pid]
    table = runtime.ok("ps", container_id).splitlines()
    assert table[0].split()[:2] == ["UID", "PID"]
    assert [line.split()[1] for line in table[1:]] == [str(pid)]
    assert "sleep 600" in table[1]


def test_list_table(runtime, bundle):
    container_id, made = _started(runtime, bundle)
    header, *rows = runtime.ok("list").splitlines()
    assert header.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert len(rows) == 1
    fields = rows[0].split()
    assert fields[0] == container_id
    assert fields[2:4] == ["running", str(made.path)]
    assert fields[5] == "root"


def test_spec_refuses_to_overwrite(runtime, tmp_path):
    runtime.ok("spec", "--bundle", tmp_path)
    written = (tmp_path / "config.json").read_text()
    spec = json.loads(written)
    assert spec["process"]["args"] == ["sh"]
    assert spec["root"]["path"] == "rootfs"
    refused = runtime("spec", "--bundle", tmp_path)
    assert refused.returncode == 1
    assert "exists" in refused.stderr
    assert (tmp_path / "config.json").read_text() == written


def test_update_resources(runtime, bundle, tmp_path):
    container_id, _ = _started(runtime, bundle)
    resources = tmp_path / "resources.json"
    resources.write_text(json.dumps({"pids": {"limit": 42}, "memory": {"limit": 64 << 20}}))
    runtime.ok("update", "--resources", resources, container_id)
    read = "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert runtime.ok("exec", container_id, "sh", "-c", read).split() == ["42", str(64 << 20)]
    runtime.ok("update", "--resources", "-", container_id, input='{"pids": {"limit": 7}}')
    assert runtime.ok("exec", container_id, "cat", "/sys/fs/cgroup/pids/pids.max") == "7\n"
    runtime.ok("update", "--pids-limit", "9", container_id)
    assert runtime.ok("exec", container_id, "cat", "/sys/fs/cgroup/pids/pids.max") == "9\n"


def test_preserve_fds(runtime, bundle):
    """--preserve-fds N hands fds 3..3+N-1 of the runtime to the container's process."""
    made = bundle(["sh", "-c", "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '"])
    read_end, write_end = os.pipe()
    os.write(write_end, b"through fd 3\n")
    os.close(write_end)
    try:
        result = subprocess.run(
            runtime.command("run", "--preserve-fds", "1", "--bundle", made.path, "c"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            pass_fds=[3],
            preexec_fn=lambda: os.dup2(read_end, 3),
            timeout=30,
        )
    finally:
        os.close(read_end)
    assert result.returncode == 0, result
    # 0-2, the preserved 3, and the fd ls opens on /proc/self/fd.
    assert result.stdout.decode() == "through fd 3\n0 1 2 3 4 "


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "c", "--bundle", "{bundle}"],
        ["create", "--pid-file", "{pid}", "c", "--bundle", "{bundle}"],
    ],
)
def test_flags_after_the_id(runtime, bundle, tmp_path, argv):
    """runc (urfave/cli) accepts flags after the container id, except for exec's command."""
    made = bundle(SLEEPER)
    runtime.ok(*(a.format(bundle=made.path, pid=tmp_path / "pid") for a in argv))
    assert runtime.status("c") == "created"
    runtime.ok("delete", "c", "--force")
    assert runtime("state", "c").returncode == 1


def test_run_forwards_signals_to_the_container(runtime, bundle):
    made = bundle(TRAPPER)
    process = subprocess.Popen(
        runtime.command("run", "--bundle", made.path, "c"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until((made.rootfs / "tmp" / "ready").exists, what="the trap")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0  # the trap's "exit 0"
    finally:
        process.kill()
        process.wait()
    assert (made.rootfs / "tmp" / "got").read_text() == "term\n"


def test_errors_go_to_the_json_log(runtime, tmp_path):
    """containerd runs runc with --log FILE --log-format json and reads errors from there."""
    log = tmp_path / "log.json"
    global_flags = ["--root", str(runtime.root), "--log", str(log), "--log-format", "json"]
    result = subprocess.run(
        [runtime.binary, *global_flags, "state", "nosuch"], capture_output=True, text=True
    )
    assert result.returncode == 1
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [entry for entry in entries if entry["level"] == "error"]
    assert len(errors) == 1
    assert "does not exist" in errors[0]["msg"]
    assert errors[0]["time"]
