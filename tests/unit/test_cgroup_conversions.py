"""Pure parts of dockyard.runtime.cgroups: conversions, parsers and the v1/v2 write plans."""

import pytest

from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import (
    CgroupError,
    Mount,
    blkio_weight_to_io_weight,
    cpu_max,
    device_rule,
    memory_swap_v2,
    parse_mountinfo,
    parse_proc_cgroup,
    plan_v1,
    plan_v2,
    shares_to_weight,
)


def probe_of(files: dict[str, str]):
    """A probe answering from a {file name: content} dict; absent files are None."""
    return lambda _controller, name: files.get(name)


def writes(plan):
    return [(c, f, v) for c, f, v, _ in plan]


# ------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("shares", "weight"), [(0, 0), (2, 1), (1024, 39), (512, 20), (262144, 10000)]
)
def test_shares_to_weight(shares, weight):
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(0, 0), (10, 1), (500, 4950), (1000, 10000)])
def test_blkio_weight_to_io_weight(blkio, io):
    assert blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize(
    ("swap", "limit", "v2"),
    [
        (0, 0, 0),  # nothing set
        (0, -1, -1),  # unlimited memory: unlimited swap
        (-1, 1 << 20, -1),
        (0, 1 << 20, 0),  # swap unset stays unset
        (1 << 20, 1 << 20, 0),  # swap == limit: no swap
        (3 << 20, 1 << 20, 2 << 20),
    ],
)
def test_memory_swap_v2(swap, limit, v2):
    assert memory_swap_v2(swap, limit) == v2


@pytest.mark.parametrize(("swap", "limit"), [(1 << 20, 0), (1 << 20, -1), (1 << 20, 2 << 20)])
def test_memory_swap_v2_rejects(swap, limit):
    with pytest.raises(CgroupError):
        memory_swap_v2(swap, limit)


@pytest.mark.parametrize(
    ("quota", "period", "current", "line"),
    [
        (50000, 100000, None, "50000 100000"),
        (10000, 0, None, "10000 100000"),
        (10000, 0, "max 50000", "10000 50000"),
        (-1, 0, "20000 50000", "max 50000"),
        (0, 25000, "20000 50000", "20000 25000"),
        (0, 25000, None, "max 25000"),
    ],
)
def test_cpu_max(quota, period, current, line):
    assert cpu_max(quota, period, current) == line


@pytest.mark.parametrize(
    ("rule", "file", "line"),
    [
        ({"allow": False, "access": "rwm"}, "devices.deny", "a *:* rwm"),
        (
            {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            "devices.allow",
            "c 1:5 rwm",
        ),
        (
            {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rw"},
            "devices.allow",
            "c 136:* rw",
        ),
        ({"allow": False, "type": "b", "major": 8, "access": "r"}, "devices.deny", "b 8:* r"),
    ],
)
def test_device_rule(rule, file, line):
    assert device_rule(rule) == (file, line)


@pytest.mark.parametrize(
    "rule",
    [
        {"type": "c"},  # allow is required
        {"allow": True, "type": "x"},
        {"allow": True, "access": "rwx"},
        {"allow": True, "major": "1"},
        {"allow": True, "minor": -2},
        "c 1:5 rwm",
    ],
)
def test_device_rule_rejects(rule):
    with pytest.raises(CgroupError):
        device_rule(rule)


# ----------------------------------------------------------------------------- parsers

HYBRID = r"""
22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
90 88 0:32 /docker/abc /mnt/with\040space rw - cgroup cgroup rw,memory
"""

PURE_V2 = """
25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw
"""


def test_parse_mountinfo_hybrid():
    mounts = parse_mountinfo(HYBRID)
    assert mounts == [
        Mount("/sys/fs/cgroup/cpu,cpuacct", "/", ("cpu", "cpuacct"), 1),
        Mount("/sys/fs/cgroup/cpuset", "/", ("cpuset",), 1),
        Mount("/sys/fs/cgroup/memory", "/", ("memory",), 1),
        Mount("/sys/fs/cgroup/systemd", "/", ("name=systemd",), 1),
        Mount("/sys/fs/cgroup/unified", "/", (), 2),
    ]
    assert [m.key for m in mounts] == ["cpu,cpuacct", "cpuset", "memory", "name=systemd", ""]
    assert cgroups._version_of(mounts) == 1


def test_parse_mountinfo_escapes_and_second_mounts():
    only_bind = "\n".join(line for line in HYBRID.splitlines() if line.startswith("90 "))
    (mount,) = parse_mountinfo(only_bind)
    assert mount.mountpoint == "/mnt/with space"
    assert mount.root == "/docker/abc"


def test_parse_mountinfo_pure_v2():
    mounts = parse_mountinfo(PURE_V2)
    assert mounts == [Mount("/sys/fs/cgroup", "/", (), 2)]
    assert cgroups._version_of(mounts) == 2
    # a lone name=systemd v1 mount (old systemd in a container) does not make a host v1
    legacy = "50 31 0:40 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd"
    assert cgroups._version_of(parse_mountinfo(PURE_V2 + legacy)) == 2
    with pytest.raises(CgroupError):
        cgroups._version_of([])


def test_parse_proc_cgroup():
    text = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/init.scope\n0::/init.scope\n"
    assert parse_proc_cgroup(text) == {
        "cpu,cpuacct": "/user.slice",
        "name=systemd": "/init.scope",
        "": "/init.scope",
    }


# ----------------------------------------------------------------------------- v1 plan

DOCKER_RESOURCES = {  # what dockerd hands runc for a plain `docker run`
    "devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    ],
    "memory": {"disableOOMKiller": False},
    "cpu": {"shares": 0},
    "blockIO": {"weight": 0},
}

V1_FILES = {
    "memory.limit_in_bytes": "9223372036854771712\n",
    "memory.memsw.limit_in_bytes": "9223372036854771712\n",
    "blkio.weight": "500\n",
    "cpu.idle": "0\n",
}


def test_plan_v1_docker_defaults():
    assert writes(plan_v1(DOCKER_RESOURCES, probe_of(V1_FILES))) == [
        ("devices", "devices.deny", "a"),
        ("devices", "devices.deny", "a *:* rwm"),
        ("devices", "devices.allow", "c 1:5 rwm"),
        ("devices", "devices.deny", "c 10:229 rwm"),
    ]


def test_plan_v1_everything():
    res = {
        "memory": {
            "limit": 64 << 20,
            "reservation": 32 << 20,
            "swap": 128 << 20,
            "kernel": 1 << 20,
            "swappiness": 10,
            "disableOOMKiller": True,
        },
        "cpu": {
            "shares": 512,
            "quota": 50000,
            "period": 100000,
            "cpus": "0-1",
            "mems": "0",
            "realtimePeriod": 1000000,
            "realtimeRuntime": 950000,
            "idle": 1,
        },
        "pids": {"limit": 100},
        "blockIO": {
            "weight": 300,
            "leafWeight": 200,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 400, "leafWeight": 100}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
        },
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
    }
    assert writes(plan_v1(res, probe_of(V1_FILES))) == [
        ("cpuset", "cpuset.cpus", "0-1"),
        ("cpuset", "cpuset.mems", "0"),
        # swap grows past the current limit? no: the current limit is "unlimited"
        ("memory", "memory.limit_in_bytes", str(64 << 20)),
        ("memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
        ("memory", "memory.soft_limit_in_bytes", str(32 << 20)),
        ("memory", "memory.oom_control", "1"),
        ("memory", "memory.swappiness", "10"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.rt_period_us", "1000000"),
        ("cpu", "cpu.rt_runtime_us", "950000"),
        ("cpu", "cpu.idle", "1"),
        ("pids", "pids.max", "100"),
        ("blkio", "blkio.weight", "300"),
        ("blkio", "blkio.leaf_weight", "200"),
        ("blkio", "blkio.weight_device", "8:0 400"),
        ("blkio", "blkio.leaf_weight_device", "8:0 100"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio", "blkio.throttle.write_iops_device", "8:16 100"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", str(4 << 20)),
    ]


def test_plan_v1_period_may_fail_until_quota_is_set():
    plan = plan_v1({"cpu": {"quota": 1000, "period": 2000}}, probe_of({}))
    assert [p[3] for p in plan] == [True, False, False]
    plan = plan_v1({"cpu": {"period": 2000}}, probe_of({}))
    assert plan == [("cpu", "cpu.cfs_period_us", "2000", False)]


def test_plan_v1_memory_write_order():
    res = {"memory": {"limit": 256 << 20, "swap": 512 << 20}}
    # growing from 64M: swap first, or memory would exceed memory+swap
    grow = writes(plan_v1(res, probe_of({**V1_FILES, "memory.limit_in_bytes": str(64 << 20)})))
    assert [f for _, f, _ in grow] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    # shrinking from 1G: memory first
    shrink = writes(plan_v1(res, probe_of({**V1_FILES, "memory.limit_in_bytes": str(1 << 30)})))
    assert [f for _, f, _ in shrink] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    # unlimited memory, swap unset: both unlimited, swap first
    assert writes(plan_v1({"memory": {"limit": -1}}, probe_of(V1_FILES))) == [
        ("memory", "memory.memsw.limit_in_bytes", "-1"),
        ("memory", "memory.limit_in_bytes", "-1"),
    ]


def test_plan_v1_without_swap_accounting(capsys):
    files = {"memory.limit_in_bytes": "9223372036854771712\n"}
    res = {"memory": {"limit": 32 << 20, "swap": 32 << 20}}
    assert writes(plan_v1(res, probe_of(files))) == [
        ("memory", "memory.limit_in_bytes", str(32 << 20))
    ]
    assert capsys.readouterr().err == ""  # swap == limit asks for nothing: no warning
    res = {"memory": {"limit": 32 << 20, "swap": 64 << 20}}
    assert len(plan_v1(res, probe_of(files))) == 1
    assert "swap" in capsys.readouterr().err


def test_plan_v1_bfq_only_and_pids_unlimited():
    files = {"blkio.bfq.weight": "100\n"}
    res = {
        "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}]},
        "pids": {"limit": 0},
    }
    assert writes(plan_v1(res, probe_of(files))) == [
        ("pids", "pids.max", "max"),
        ("blkio", "blkio.bfq.weight", "300"),
        ("blkio", "blkio.bfq.weight_device", "8:0 10"),
    ]
    assert writes(plan_v1({"pids": {"limit": -1}}, probe_of({}))) == [("pids", "pids.max", "max")]
    assert plan_v1({"pids": None, "cpu": {"idle": 0}}, probe_of({})) == []


@pytest.mark.parametrize(
    "res",
    [
        {"memory": {"limit": "64m"}},
        {"memory": {"limit": True}},
        {"memory": {"limit": -2}},
        {"memory": {"limit": 64 << 20, "swap": 32 << 20}},
        {"memory": {"swappiness": 101}},
        {"memory": {"disableOOMKiller": "yes"}},
        {"cpu": {"shares": 1}},
        {"cpu": {"shares": 262145}},
        {"cpu": {"cpus": 0}},
        {"cpu": []},
        {"devices": {"allow": False}},
        {"pids": {"limit": "10"}},
        {"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}},
        {"hugepageLimits": [{"pageSize": "../x", "limit": 1}]},
        {"unified": {"memory.high": "1M"}},
    ],
)
def test_plan_v1_rejects(res):
    with pytest.raises(CgroupError):
        plan_v1(res, probe_of(V1_FILES))


# ----------------------------------------------------------------------------- v2 plan

V2_FILES = {"memory.swap.max": "max\n", "memory.current": str(10 << 20), "cpu.max": "max 100000"}


def test_plan_v2_everything(capsys):
    res = {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "kernel": 1},
        "cpu": {"shares": 1024, "quota": 50000, "cpus": "0", "mems": "0", "idle": 1},
        "pids": {"limit": 0},
        "blockIO": {
            "weight": 1000,
            "leafWeight": 100,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 20}],
        },
        "hugepageLimits": [{"pageSize": "1GB", "limit": -1}],
        "devices": DOCKER_RESOURCES["devices"],
        "unified": {"memory.high": "48M"},
    }
    assert writes(plan_v2(res, probe_of(V2_FILES))) == [
        ("pids", "pids.max", "max"),
        ("memory", "memory.swap.max", str(64 << 20)),
        ("memory", "memory.max", str(64 << 20)),
        ("memory", "memory.low", str(32 << 20)),
        ("io", "io.weight", "10000"),
        ("io", "io.max", "8:0 rbps=1048576"),
        ("io", "io.max", "8:0 wbps=max"),
        ("io", "io.max", "8:0 riops=10"),
        ("io", "io.max", "8:0 wiops=20"),
        ("cpu", "cpu.weight", "39"),
        ("cpu", "cpu.max", "50000 100000"),
        ("cpu", "cpu.idle", "1"),
        ("cpuset", "cpuset.cpus", "0"),
        ("cpuset", "cpuset.mems", "0"),
        ("hugetlb", "hugetlb.1GB.max", "max"),
        ("memory", "memory.high", "48M"),
    ]
    err = capsys.readouterr().err
    assert "device" in err and len(err.splitlines()) == 1


def test_plan_v2_memory_edge_cases(capsys):
    swap_eq = {"memory": {"limit": 32 << 20, "swap": 32 << 20}}
    # no memory.swap.max (no swap accounting): "no swap" is what the host gives anyway
    assert writes(plan_v2(swap_eq, probe_of({}))) == [("memory", "memory.max", str(32 << 20))]
    assert writes(plan_v2(swap_eq, probe_of({"memory.swap.max": "max"}))) == [
        ("memory", "memory.swap.max", "0"),
        ("memory", "memory.max", str(32 << 20)),
    ]
    assert writes(plan_v2({"memory": {"limit": -1}}, probe_of(V2_FILES))) == [
        ("memory", "memory.swap.max", "max"),
        ("memory", "memory.max", "max"),
    ]
    assert capsys.readouterr().err == ""
    plan_v2({"memory": {"swappiness": 60, "disableOOMKiller": True}}, probe_of({}))
    assert len(capsys.readouterr().err.splitlines()) == 2
    with pytest.raises(CgroupError, match="below"):
        plan_v2({"memory": {"limit": 1 << 20}}, probe_of(V2_FILES))


def test_plan_v2_bfq():
    res = {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}}
    assert writes(plan_v2(res, probe_of({"io.bfq.weight": "default 100"}))) == [
        ("io", "io.bfq.weight", "300"),
        ("io", "io.bfq.weight", "8:0 10"),
    ]


@pytest.mark.parametrize(
    "res",
    [
        {"cpu": {"realtimeRuntime": 1000}},
        {"cpu": {"realtimePeriod": 1000}},
        {"memory": {"swap": 1 << 20}},
        {"unified": {"../escape": "1"}},
        {"unified": {"memory.high": 1}},
        {"unified": ["memory.high"]},
    ],
)
def test_plan_v2_rejects(res):
    with pytest.raises(CgroupError):
        plan_v2(res, probe_of(V2_FILES))
