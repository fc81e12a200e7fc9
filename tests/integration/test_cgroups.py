"""dockyard.runtime.cgroups against the real kernel (root, no mocks).

Every test works in its own cgroup "dockyard-test-<random>", which the `cgroup` fixture
destroys even when the test fails, after killing whatever is left in it. On cgroup v1 the path
is relative, so the test cgroups nest under the cgroups running pytest (their memory is still
accounted to whoever runs the tests); on v2 it is absolute, because a relative child of a
populated cgroup could not get controllers. One test checks the absolute mapping on any host.
"""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import Cgroup, CgroupError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

MB = 1 << 20
V1 = os.geteuid() == 0 and cgroups.version() == 1


def _name() -> str:
    return f"dockyard-test-{uuid.uuid4().hex[:12]}"


class Harness:
    """Makes test cgroups and processes; `cleanup` removes them all."""

    def __init__(self):
        self.cgroups: list[Cgroup] = []
        self.procs: list[subprocess.Popen] = []

    def new(self, resources=None, *, path=None, create=True) -> Cgroup:
        if path is None:
            path = _name() if V1 else "/" + _name()
        cg = Cgroup(path)
        self.cgroups.append(cg)
        if create:
            cg.create(resources)
        return cg

    def spawn(self, cg: Cgroup, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start argv inside cg: the child waits on its stdin until it has been moved."""
        proc = subprocess.Popen(
            ["sh", "-c", 'read _ && exec "$@"', "sh", *argv], stdin=subprocess.PIPE, **kwargs
        )
        self.procs.append(proc)
        cg.add_process(proc.pid)
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        proc.stdin = None  # so that communicate() does not flush it
        return proc

    def python(self, cg: Cgroup, code: str, *args: str, **kwargs) -> subprocess.Popen:
        return self.spawn(cg, [sys.executable, "-S", "-c", code, *args], **kwargs)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for f in (proc.stdout, proc.stderr):
                if f:
                    f.close()
        for cg in reversed(self.cgroups):
            # never kill outside our own cgroups, whatever a bug might resolve them to
            assert all("dockyard-test-" in p for p in cg.paths().values())
            if cg.exists():
                try:
                    if cg.is_frozen():
                        cg.thaw()
                except CgroupError:
                    pass
                deadline = time.monotonic() + 5
                while cg.pids() and time.monotonic() < deadline:
                    for pid in cg.pids():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    time.sleep(0.02)
            cg.destroy(timeout=5)


@pytest.fixture
def h():
    harness = Harness()
    try:
        yield harness
    finally:
        harness.cleanup()


def read(cg: Cgroup, controller: str, name: str) -> str | None:
    d = cg.paths()[""] if cgroups.version() == 2 else cg._dir(controller)
    try:
        with open(os.path.join(d, name)) as f:
            return f.read().strip()
    except OSError:
        return None


def has(cg: Cgroup, controller: str, name: str) -> bool:
    return read(cg, controller, name) is not None


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ------------------------------------------------------------------------------ layout


def test_paths_absolute_relative_create_destroy(h):
    name = _name()
    absolute = h.new(path="/" + name, create=False)
    mounts = {m.key: m for m in cgroups._hierarchies()}
    assert set(absolute.paths()) == set(mounts)
    for key, path in absolute.paths().items():
        assert path == os.path.join(mounts[key].mountpoint, name)
    if cgroups.version() == 1:
        assert "memory" in absolute.paths() and "name=systemd" in absolute.paths()
        if any(m.version == 2 for m in cgroups.host_cgroup_mounts()):
            assert "" in absolute.paths()  # hybrid: the unified hierarchy too
    else:
        assert list(absolute.paths()) == [""]

    relative = Cgroup(name)
    own = cgroups.self_paths()
    for key, path in relative.paths().items():
        mine = (
            own[""]
            if key == ""
            else next(v for k, v in own.items() if k and set(k.split(",")) == set(key.split(",")))
        )
        assert path == os.path.normpath(
            os.path.join(mounts[key].mountpoint, mine.lstrip("/"), name)
        )

    assert not absolute.exists()
    absolute.create()
    assert absolute.exists()
    assert all(os.path.isdir(p) for p in absolute.paths().values())
    if cgroups.version() == 1:  # cpuset copied from the parent, so tasks can join
        assert read(absolute, "cpuset", "cpuset.cpus")
        assert read(absolute, "cpuset", "cpuset.mems")
    nested = Cgroup(f"/{name}/inner")
    nested.create()
    absolute.destroy()  # deepest first
    assert not absolute.exists() and not nested.exists()
    absolute.destroy()  # already gone: fine


def test_invalid_paths():
    for bad in ("", "/", "/a/../b", "a/./b", "system.slice:docker:abc"):
        with pytest.raises(CgroupError):
            Cgroup(bad)


# ------------------------------------------------------------------- limits readback


def test_create_applies_limits(h):
    probe = h.new()
    swap_accounting = has(
        probe, "memory", "memory.memsw.limit_in_bytes" if V1 else "memory.swap.max"
    )
    weight_file = (
        next((f for f in ("blkio.weight", "blkio.bfq.weight") if has(probe, "blkio", f)), None)
        if V1
        else next((f for f in ("io.bfq.weight", "io.weight") if has(probe, "io", f)), None)
    )

    resources = {
        "memory": {"limit": 64 * MB, "reservation": 32 * MB, "swappiness": 0},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": {"weight": 300} if weight_file else {},
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rw"},
            {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"},
            {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        ],
    }
    if swap_accounting:
        resources["memory"]["swap"] = 128 * MB
    cg = h.new(resources)

    if V1:
        assert read(cg, "memory", "memory.limit_in_bytes") == str(64 * MB)
        assert read(cg, "memory", "memory.soft_limit_in_bytes") == str(32 * MB)
        assert read(cg, "memory", "memory.swappiness") == "0"
        if swap_accounting:
            assert read(cg, "memory", "memory.memsw.limit_in_bytes") == str(128 * MB)
        assert read(cg, "cpu", "cpu.shares") == "512"
        assert read(cg, "cpu", "cpu.cfs_quota_us") == "50000"
        assert read(cg, "cpu", "cpu.cfs_period_us") == "100000"
        if weight_file:
            assert read(cg, "blkio", weight_file) == "300"
        assert read(cg, "devices", "devices.list").splitlines() == [
            "c 1:5 rwm",
            "c 1:3 rwm",
            "c 136:* rw",
            "b 7:0 r",
        ]
    else:
        assert read(cg, "memory", "memory.max") == str(64 * MB)
        assert read(cg, "memory", "memory.low") == str(32 * MB)
        if swap_accounting:
            assert read(cg, "memory", "memory.swap.max") == str(64 * MB)
        assert read(cg, "cpu", "cpu.weight") == str(cgroups.shares_to_weight(512))
        assert read(cg, "cpu", "cpu.max") == "50000 100000"
        if weight_file == "io.bfq.weight":
            assert "300" in read(cg, "io", weight_file)
        elif weight_file:
            assert str(cgroups.blkio_weight_to_io_weight(300)) in read(cg, "io", weight_file)
    assert read(cg, "cpuset", "cpuset.cpus") == "0"
    assert read(cg, "cpuset", "cpuset.mems") == "0"
    assert read(cg, "pids", "pids.max") == "42"


def _block_device() -> tuple[int, int] | None:
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram")):
            continue
        with open(f"/sys/block/{name}/dev") as f:
            major, minor = f.read().split(":")
        return int(major), int(minor)
    return None


def test_blkio_throttle(h):
    dev = _block_device()
    if dev is None:
        pytest.skip("no disk in /sys/block")
    major, minor = dev
    cg = h.new(
        {
            "blockIO": {
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": MB}],
                "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}],
            }
        }
    )
    if V1:
        assert read(cg, "blkio", "blkio.throttle.read_bps_device") == f"{major}:{minor} {MB}"
        assert read(cg, "blkio", "blkio.throttle.write_iops_device") == f"{major}:{minor} 100"
        cg.update({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor}]}})
        assert read(cg, "blkio", "blkio.throttle.read_bps_device") == ""
    else:
        line = read(cg, "io", "io.max")
        assert f"{major}:{minor} rbps={MB} wbps=max riops=max wiops=100" in line


def test_hugepage_limits(h):
    probe = h.new()
    sizes = (
        sorted(os.listdir("/sys/kernel/mm/hugepages"))
        if os.path.isdir("/sys/kernel/mm/hugepages")
        else []
    )
    if not sizes:
        pytest.skip("no huge pages on this kernel")
    kb = int(sizes[0].split("-")[1][:-2])
    size = f"{kb // 1024}MB" if kb < 1024 * 1024 else f"{kb // (1024 * 1024)}GB"
    res = {"hugepageLimits": [{"pageSize": size, "limit": 4 * kb * 1024}]}
    file = f"hugetlb.{size}.limit_in_bytes" if V1 else f"hugetlb.{size}.max"
    if probe._dir("hugetlb") is None or not has(probe, "hugetlb", file):
        with pytest.raises(CgroupError, match="hugetlb"):
            probe.update(res)
        return
    probe.update(res)
    assert read(probe, "hugetlb", file) == str(4 * kb * 1024)


# -------------------------------------------------------------------------- processes


def test_add_process_and_pids(h):
    cg = h.new()
    sleeper = h.spawn(cg, ["sleep", "60"])
    wait_for(lambda: cg.pids() == [sleeper.pid], what="sleep in the cgroup")
    with open(f"/proc/{sleeper.pid}/cgroup") as f:
        mine = cgroups.parse_proc_cgroup(f.read())
    assert all(p.endswith(cg.path) for p in mine.values() if p != "/")

    # a multi-threaded process is listed once; its children follow it in
    threads = h.python(
        cg,
        "import subprocess, threading, time\n"
        "for _ in range(4): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n",
        stdout=subprocess.PIPE,
    )
    grandchild = int(threads.stdout.readline())
    assert cg.pids() == sorted([sleeper.pid, threads.pid, grandchild])

    # recursive: a process in a nested cgroup counts too
    inner = h.new(path=f"{cg.path}/inner")
    inner_sleeper = h.spawn(inner, ["sleep", "60"])
    wait_for(lambda: inner_sleeper.pid in cg.pids(), what="nested pid")
    assert inner.pids() == [inner_sleeper.pid]

    # a process that is still there keeps the cgroup: destroy says so
    with pytest.raises(CgroupError, match="processes"):
        inner.destroy(timeout=0.2)


def test_join_from_preexec(h):
    cg = h.new()

    def join():
        for f in cg.procs_file():
            fd = os.open(f, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)

    proc = subprocess.Popen(["sleep", "60"], preexec_fn=join)
    h.procs.append(proc)
    assert cg.pids() == [proc.pid]


def test_add_process_errors(h):
    cg = h.new()
    with pytest.raises(CgroupError, match=r"cgroup\.procs"):
        cg.add_process(2**22 + 12345)  # no such process


def test_pids_limit_enforced(h):
    cg = h.new({"pids": {"limit": 5}})
    script = "i=0; while [ $i -lt 20 ]; do sleep 60 2>/dev/null & i=$((i+1)); done"
    proc = h.spawn(cg, ["sh", "-c", script], stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert b"fork" in err.lower()
    assert 1 <= len(cg.pids()) <= 5
    if V1 or has(cg, "pids", "pids.events"):
        assert int(read(cg, "pids", "pids.events").split()[1]) > 0
    assert cg.stats()["pids"]["limit"] == 5


def test_memory_hog_is_oom_killed(h):
    probe = h.new()
    memory = {"limit": 32 * MB}
    if has(probe, "memory", "memory.memsw.limit_in_bytes" if V1 else "memory.swap.max"):
        memory["swap"] = 32 * MB  # no swap on top of memory
    cg = h.new({"memory": memory})
    before = cg.oom_kill_count()
    hog = h.python(
        cg, "data = b'x' * (200 << 20)\nprint('survived', len(data))\n", stdout=subprocess.PIPE
    )
    out, _ = hog.communicate(timeout=60)
    assert hog.returncode == -signal.SIGKILL, out
    assert out == b""
    wait_for(lambda: cg.oom_kill_count() > before, what="oom_kill count")
    assert cg.stats()["memory"]["max_usage"] <= 32 * MB or not V1


def test_freeze_and_thaw(h):
    cg = h.new()
    with tempfile.NamedTemporaryFile() as counter:
        h.python(
            cg,
            "import os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
            "i = 0\n"
            "while True:\n"
            "    i += 1\n"
            "    os.pwrite(fd, b'%20d' % i, 0)\n"
            "    time.sleep(0.001)\n",
            counter.name,
        )

        def count() -> int:
            with open(counter.name, "rb") as f:
                return int(f.read().strip() or 0)

        wait_for(lambda: count() > 10, what="counter to start")
        assert not cg.is_frozen()
        cg.freeze()
        assert cg.is_frozen()
        frozen_at = count()
        time.sleep(0.3)
        assert count() == frozen_at
        cg.thaw()
        assert not cg.is_frozen()
        wait_for(lambda: count() > frozen_at + 10, what="counter to resume")


def test_update_live_cgroup(h):
    cg = h.new({"memory": {"limit": 64 * MB}, "pids": {"limit": 10}, "cpu": {"shares": 256}})
    sleeper = h.spawn(cg, ["sleep", "60"])
    has_swap = has(cg, "memory", "memory.memsw.limit_in_bytes" if V1 else "memory.swap.max")
    memory = {"limit": 128 * MB, "swap": 256 * MB} if has_swap else {"limit": 128 * MB}
    cg.update({"memory": memory, "pids": {"limit": 20}, "cpu": {"quota": 20000, "period": 50000}})
    if V1:
        assert read(cg, "memory", "memory.limit_in_bytes") == str(128 * MB)
        if has_swap:
            assert read(cg, "memory", "memory.memsw.limit_in_bytes") == str(256 * MB)
        assert read(cg, "cpu", "cpu.cfs_quota_us") == "20000"
        assert read(cg, "cpu", "cpu.cfs_period_us") == "50000"
        assert read(cg, "cpu", "cpu.shares") == "256"  # untouched
    else:
        assert read(cg, "memory", "memory.max") == str(128 * MB)
        assert read(cg, "cpu", "cpu.max") == "20000 50000"
    assert read(cg, "pids", "pids.max") == "20"
    # shrink again (swap now drops below the old memory limit: order matters on v1)
    memory = {"limit": 48 * MB, "swap": 96 * MB} if has_swap else {"limit": 48 * MB}
    cg.update({"memory": memory, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert read(cg, "pids", "pids.max") == "max"
    assert read(cg, "cpu", "cpu.cfs_quota_us" if V1 else "cpu.max") in ("-1", "max 50000")
    if has(cg, "cpu", "cpu.idle"):
        cg.update({"cpu": {"idle": 1}})
        assert read(cg, "cpu", "cpu.idle") == "1"
        cg.update({"cpu": {"idle": 0}})
        assert read(cg, "cpu", "cpu.idle") == "0"
    assert sleeper.poll() is None
    with pytest.raises(CgroupError, match="does not exist"):
        Cgroup(_name()).update({"pids": {"limit": 1}})


def _swap_enabled() -> bool:
    with open("/proc/swaps") as f:
        return len(f.read().splitlines()) > 1


def test_memory_limit_below_usage(h):
    probe = h.new()
    has_memsw = has(probe, "memory", "memory.memsw.limit_in_bytes")
    if V1 and _swap_enabled() and not has_memsw:
        pytest.skip("swap without swap accounting: the kernel can always reclaim by swapping")
    memory = {"limit": 256 * MB, "swap": 256 * MB} if has_memsw else {"limit": 256 * MB}
    cg = h.new({"memory": memory})
    hog = h.python(
        cg,
        "import time\ndata = b'x' * (48 << 20)\nprint('ready', flush=True)\ntime.sleep(60)\n",
        stdout=subprocess.PIPE,
    )
    assert hog.stdout.readline() == b"ready\n"
    small = {"limit": 16 * MB, "swap": 16 * MB} if has_memsw else {"limit": 16 * MB}
    with pytest.raises(CgroupError, match="below"):
        cg.update({"memory": small})
    assert hog.poll() is None


def test_devices_enforced(h):
    if not V1:
        pytest.skip("device rules are v1 only (v2 would need eBPF)")
    block = next((p for p in ("/dev/loop0", "/dev/vda", "/dev/sda") if os.path.exists(p)), None)
    if block is None:
        pytest.skip("no block device node to try")
    cg = h.new(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            ]
        }
    )
    probe = h.python(
        cg,
        "import sys\n"
        "open('/dev/null', 'wb').close()\n"
        "try:\n"
        "    open(sys.argv[1], 'rb')\n"
        "except PermissionError:\n"
        "    print('denied')\n",
        block,
        stdout=subprocess.PIPE,
    )
    out, _ = probe.communicate(timeout=30)
    assert probe.returncode == 0 and out == b"denied\n"


# ----------------------------------------------------------------------------- stats


def test_stats_shape(h):
    cg = h.new({"memory": {"limit": 256 * MB}, "pids": {"limit": 10}})
    worker = h.python(
        cg,
        "import time\n"
        "data = b'y' * (20 << 20)\n"
        "end = time.time() + 0.3\n"
        "while time.time() < end: pass\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n",
        stdout=subprocess.PIPE,
    )
    assert worker.stdout.readline() == b"ready\n"
    stats = cg.stats()
    assert set(stats) == {"cpu", "memory", "pids", "blkio"}
    cpu, memory = stats["cpu"], stats["memory"]
    assert cpu["usage_total_ns"] >= 200_000_000
    assert cpu["usage_user_ns"] > 0 and cpu["usage_system_ns"] >= 0
    assert cpu["throttled_periods"] == 0
    if V1:
        assert len(cpu["percpu_ns"]) >= 1
        assert sum(cpu["percpu_ns"]) == pytest.approx(cpu["usage_total_ns"], rel=0.1)
    assert 20 * MB <= memory["usage"] <= 256 * MB
    assert memory["limit"] == 256 * MB
    assert memory["max_usage"] >= memory["usage"] or not V1
    assert isinstance(memory["cache"], int) and memory["rss"] >= 20 * MB
    assert isinstance(memory["stats"], dict) and memory["stats"]
    assert stats["pids"] == {"current": 1, "limit": 10}
    for key in ("io_service_bytes", "io_serviced"):
        for entry in stats["blkio"].get(key, []):
            assert set(entry) == {"major", "minor", "op", "value"}

    # a cgroup that is not there has no numbers, and no exception either
    gone = Cgroup(_name()).stats()
    assert gone == {"cpu": {}, "memory": {}, "pids": {}, "blkio": {}}


# ----------------------------------------------------------------------------- errors


def test_invalid_values(h):
    with pytest.raises(CgroupError, match=r"cpuset\.cpus.*999|999.*cpuset\.cpus") as info:
        h.new({"cpu": {"cpus": "999"}})
    assert info.value.errno is not None
    assert not h.cgroups[-1].exists()  # a failed create leaves nothing behind

    cg = h.new()
    for bad in (
        {"memory": {"limit": "64m"}},
        {"cpu": {"shares": 1}},
        {"memory": {"swappiness": 101}},
        {"devices": [{"allow": True, "type": "q"}]},
        {"unified": {"memory.high": "1M"}} if V1 else {"unified": {"no.such.file": "1"}},
    ):
        with pytest.raises(CgroupError):
            cg.update(bad)
    with pytest.raises(CgroupError, match=r"cpu\.cfs_quota_us|cpu\.max"):
        cg.update({"cpu": {"quota": 10}})  # below the kernel's 1ms minimum
    assert cg.exists()
