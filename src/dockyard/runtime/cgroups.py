"""Control groups for containers: cgroup v1 (and hybrid) and pure cgroup v2.

The version is detected at run time from /proc/self/mountinfo: if any v1 hierarchy carries a
real controller the host is v1 (a cgroup2 mount next to it, usually /sys/fs/cgroup/unified,
makes it "hybrid"); otherwise the cgroup2 mount is the only hierarchy.

A `Cgroup` is one OCI `cgroupsPath`. An absolute path ("/dockyard/abc") is taken from the root
of every hierarchy; a relative one ("abc") from the calling process's own cgroup in each
hierarchy (/proc/self/cgroup), as runc does. On v1 the cgroup is a directory in every mounted
controller hierarchy plus name=systemd (and, on hybrid hosts, the unified v2 hierarchy, which
carries no controllers but keeps membership consistent for systemd and tools).

OCI `linux.resources` is turned into file writes by exactly two functions: `plan_v1` and
`plan_v2`. They are pure (the little state they need is read through a `probe` callable), so
the mapping is unit-tested without a kernel. Semantics follow runc 1.1:

* 0 / None / absent means "leave as is"; -1 means unlimited where the kernel has such a value.
* memory: v1 memory.limit_in_bytes / memory.memsw.limit_in_bytes (written in the order the
  kernel accepts) / soft_limit_in_bytes / swappiness / oom_control; v2 memory.max,
  memory.swap.max (= spec swap - limit; swap == limit writes "0"), memory.low. `kernel` and
  `kernelTCP` are ignored. Without swap accounting (no memory.memsw.* / memory.swap.max) the
  swap limit is skipped, with a warning on stderr unless it asked for nothing beyond the limit.
  A memory limit below current usage is a CgroupError (v1: the kernel's EBUSY; v2: checked
  against memory.current before writing, because v2 would OOM-kill instead).
  v2 has no swappiness or OOM-killer switch: they are ignored with a warning.
* cpu: v1 cpu.shares, cpu.cfs_period_us/cfs_quota_us (a period the kernel rejects before the
  new quota is in place is retried after it), cpu.rt_period_us/rt_runtime_us, cpu.idle;
  v2 cpu.weight = 1 + ((shares - 2) * 9999) // 262142, cpu.max "quota period" (quota <= 0 ->
  "max"; an unset half keeps the current value rather than resetting it), cpu.idle;
  realtime settings are an error on v2. cpus/mems -> cpuset.cpus/cpuset.mems.
* pids: pids.max; a limit <= 0 (when the `pids` section is given) means "max".
* blockIO: v1 blkio.weight (or blkio.bfq.weight when only BFQ is there), leaf weights,
  weight_device, blkio.throttle.*; v2 io.bfq.weight (or io.weight = 1 + (w - 10) * 9999 // 990),
  per-device weights only through io.bfq.weight, throttles as io.max "maj:min rbps=N" (0 ->
  "max": no limit, as 0 means on v1). Leaf weights do not exist on v2 and are ignored.
* hugepageLimits: hugetlb.<size>.limit_in_bytes (v1) / hugetlb.<size>.max (v2).
* devices: v1 only: devices.deny "a", then every rule in order to devices.allow/deny
  ("c 1:5 rwm"; -1 or absent major/minor -> "*"). The list is taken as given: runc's default
  allowed devices are the caller's business. On v2 the device list is IGNORED (it would need an
  eBPF program) with a one-line warning on stderr; this is a known gap.
* unified (v2 only): {file: value} written last, so it overrides the above.

Any failing write raises CgroupError naming the file, the value and the errno.
This module is stdlib only and imports nothing heavy (the shim imports it).
"""

from __future__ import annotations

import errno
import os
import sys
import time

__all__ = [
    "Cgroup",
    "CgroupError",
    "Mount",
    "blkio_weight_to_io_weight",
    "cpu_max",
    "device_rule",
    "host_cgroup_mounts",
    "memory_swap_v2",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "plan_v1",
    "plan_v2",
    "self_paths",
    "shares_to_weight",
    "version",
]

MAX_SHARES = 262144
MIN_SHARES = 2
DEFAULT_CFS_PERIOD = 100000
_V1_SUBSYSTEMS = frozenset(
    (
        "cpuset",
        "cpu",
        "cpuacct",
        "blkio",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "perf_event",
        "net_prio",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    )
)


class CgroupError(RuntimeError):
    """A cgroup operation failed; `errno` is set when the kernel said why."""

    def __init__(self, message: str, err: int | None = None):
        super().__init__(message)
        self.errno = err


def _warn(message: str) -> None:
    sys.stderr.write(f"dockyard: cgroups: {message}\n")


# ---------------------------------------------------------------------------- discovery


class Mount:
    """One cgroup hierarchy as mounted: version 1 (with its controllers) or 2."""

    __slots__ = ("controllers", "mountpoint", "root", "version")

    def __init__(self, mountpoint: str, root: str, controllers: tuple[str, ...], version: int):
        self.mountpoint = mountpoint
        self.root = root
        self.controllers = controllers
        self.version = version

    @property
    def key(self) -> str:
        """The hierarchy's name: "cpu,cpuacct", "name=systemd", "" for cgroup2."""
        return ",".join(self.controllers)

    def __repr__(self) -> str:
        return (
            f"Mount({self.mountpoint!r}, root={self.root!r}, "
            f"controllers={self.controllers!r}, version={self.version})"
        )

    def _astuple(self) -> tuple:
        return (self.mountpoint, self.root, self.controllers, self.version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and self._astuple() == other._astuple()

    __hash__ = None  # type: ignore[assignment]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str, subsystems: frozenset[str] = _V1_SUBSYSTEMS) -> list[Mount]:
    """The cgroup mounts of a mountinfo text, first mount of each hierarchy only."""
    mounts: list[Mount] = []
    seen: set[tuple[int, tuple[str, ...]]] = set()
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, superopts = tail[0], tail[2]
        if fstype == "cgroup2":
            mount = Mount(_unescape(fields[4]), _unescape(fields[3]), (), 2)
        elif fstype == "cgroup":
            controllers = tuple(
                o for o in superopts.split(",") if o in subsystems or o.startswith("name=")
            )
            if not controllers:
                continue
            mount = Mount(_unescape(fields[4]), _unescape(fields[3]), controllers, 1)
        else:
            continue
        ident = (mount.version, tuple(sorted(mount.controllers)))
        if ident not in seen:
            seen.add(ident)
            mounts.append(mount)
    return mounts


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


_mounts_cache: list[Mount] | None = None
_version_cache: int | None = None


def host_cgroup_mounts() -> list[Mount]:
    """Cgroup hierarchies of this host, from /proc/self/mountinfo (cached)."""
    global _mounts_cache
    if _mounts_cache is None:
        subsystems = set(_V1_SUBSYSTEMS)
        for line in (_read("/proc/cgroups") or "").splitlines()[1:]:
            if line.split():
                subsystems.add(line.split()[0])
        _mounts_cache = parse_mountinfo(_read("/proc/self/mountinfo") or "", frozenset(subsystems))
    return _mounts_cache


def _version_of(mounts: list[Mount]) -> int:
    if any(m.version == 1 and any("=" not in c for c in m.controllers) for m in mounts):
        return 1
    if any(m.version == 2 for m in mounts):
        return 2
    raise CgroupError("no cgroup filesystem is mounted (see /proc/self/mountinfo)")


def version() -> int:
    """1 on v1 and hybrid hosts, 2 on pure cgroup v2 hosts (cached)."""
    global _version_cache
    if _version_cache is None:
        _version_cache = _version_of(host_cgroup_mounts())
    return _version_cache


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup text -> {controllers: path}; the key "" is the v2 hierarchy."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def self_paths() -> dict[str, str]:
    """The calling process's own cgroup in each hierarchy, from /proc/self/cgroup."""
    return parse_proc_cgroup(_read("/proc/self/cgroup") or "")


def _hierarchies() -> list[Mount]:
    """The hierarchies a container's cgroup lives in."""
    mounts = host_cgroup_mounts()
    if version() == 2:
        return [next(m for m in mounts if m.version == 2)]
    out = [
        m
        for m in mounts
        if m.version == 1
        and (any("=" not in c for c in m.controllers) or "name=systemd" in m.controllers)
    ]
    unified = [m for m in mounts if m.version == 2]
    return out + unified[:1]


# ------------------------------------------------------------------- pure conversions


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cgroup v2 cpu.weight (1..10000), as runc; 0 stays 0."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) -> io.weight (1..10000), as runc; 0 stays 0."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def memory_swap_v2(swap: int, limit: int) -> int:
    """OCI swap (memory+swap, v1 style) -> memory.swap.max value; -1 is "max", 0 "unset"."""
    if limit == -1 and swap == 0:
        return -1  # unlimited memory: unlimited swap too
    if swap in (-1, 0):
        return swap
    if limit in (0, -1):
        raise CgroupError("memory.swap needs memory.limit: cannot limit swap alone")
    if limit < 0:
        raise CgroupError(f"invalid memory.limit {limit}")
    if swap < limit:
        raise CgroupError(
            f"memory.swap ({swap}) must be >= memory.limit ({limit}): it is memory+swap"
        )
    return swap - limit


def cpu_max(quota: int, period: int, current: str | None = None) -> str:
    """The cgroup v2 cpu.max line; an unset (0) half keeps its value in `current`."""
    cur = (current or "").split()
    cur_quota = cur[0] if len(cur) == 2 else "max"
    cur_period = cur[1] if len(cur) == 2 else str(DEFAULT_CFS_PERIOD)
    q = str(quota) if quota > 0 else "max" if quota < 0 else cur_quota
    return f"{q} {period if period else cur_period}"


def _dev_num(value: object, what: str) -> str:
    if value is None or value == -1:
        return "*"
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CgroupError(f"device rule: invalid {what} {value!r}")
    return str(value)


def device_rule(rule: dict) -> tuple[str, str]:
    """An OCI device rule -> (file, line), e.g. ("devices.allow", "c 1:5 rwm")."""
    if not isinstance(rule, dict):
        raise CgroupError(f"device rule must be an object, got {rule!r}")
    allow = rule.get("allow")
    if not isinstance(allow, bool):
        raise CgroupError(f"device rule {rule!r}: 'allow' must be true or false")
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise CgroupError(f"device rule {rule!r}: type must be a, b or c")
    access = rule.get("access") or "rwm"
    if not isinstance(access, str) or not set(access) <= set("rwm"):
        raise CgroupError(f"device rule {rule!r}: access must be letters of 'rwm'")
    line = f"{kind} {_dev_num(rule.get('major'), 'major')}:{_dev_num(rule.get('minor'), 'minor')}"
    return ("devices.allow" if allow else "devices.deny"), f"{line} {access}"


def _num(value: int) -> str:
    """v2 number: -1 (or any negative) is "max"."""
    return "max" if value < 0 else str(value)


# --------------------------------------------------------------- spec field access


def _section(res: dict, name: str) -> dict:
    sec = res.get(name)
    if sec is None:
        return {}
    if not isinstance(sec, dict):
        raise CgroupError(f"linux.resources.{name} must be an object, got {sec!r}")
    return sec


def _int(sec: dict, name: str, where: str, minimum: int | None = None) -> int:
    value = sec.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"linux.resources.{where}.{name}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise CgroupError(f"linux.resources.{where}.{name}: {value} is below {minimum}")
    return value


def _str(sec: dict, name: str, where: str) -> str:
    value = sec.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CgroupError(f"linux.resources.{where}.{name}: expected a string, got {value!r}")
    return value.strip()


def _list(res: dict, name: str) -> list:
    value = res.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CgroupError(f"linux.resources.{name} must be a list, got {value!r}")
    return value


def _major_minor(entry: dict, where: str) -> str:
    if not isinstance(entry, dict):
        raise CgroupError(f"linux.resources.blockIO.{where}: expected objects, got {entry!r}")
    major = _int(entry, "major", f"blockIO.{where}", 0)
    minor = _int(entry, "minor", f"blockIO.{where}", 0)
    return f"{major}:{minor}"


def _shares(cpu: dict) -> int:
    shares = _int(cpu, "shares", "cpu")
    if shares and not MIN_SHARES <= shares <= MAX_SHARES:
        raise CgroupError(
            f"linux.resources.cpu.shares: {shares} is outside {MIN_SHARES}..{MAX_SHARES}"
        )
    return shares


def _hugepages(res: dict) -> list[tuple[str, int]]:
    out = []
    for entry in _list(res, "hugepageLimits"):
        if not isinstance(entry, dict):
            raise CgroupError(f"linux.resources.hugepageLimits: expected objects, got {entry!r}")
        size = entry.get("pageSize")
        if not isinstance(size, str) or not size or "/" in size or "." in size:
            raise CgroupError(f"linux.resources.hugepageLimits: invalid pageSize {size!r}")
        out.append((size, _int(entry, "limit", "hugepageLimits")))
    return out


_THROTTLES = (
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
)

# A planned write: (controller, file name, value, ignore EINVAL). The last flag marks a write
# that is repeated later in the plan, so that a kernel refusal now is not fatal.
Write = tuple[str, str, str, bool]


# -------------------------------------------------------------------------- v1 plan


def plan_v1(res: dict, probe) -> list[Write]:
    """OCI linux.resources -> cgroup v1 writes. probe(controller, file) -> content or None."""
    if res.get("unified"):
        raise CgroupError("linux.resources.unified needs cgroup v2; this host runs cgroup v1")
    w: list[Write] = []
    cpu = _section(res, "cpu")

    for key in ("cpus", "mems"):
        value = _str(cpu, key, "cpu")
        if value:
            w.append(("cpuset", f"cpuset.{key}", value, False))

    devices = res.get("devices")
    if devices is not None:
        if not isinstance(devices, list):
            raise CgroupError(f"linux.resources.devices must be a list, got {devices!r}")
        w.append(("devices", "devices.deny", "a", False))
        w.extend(("devices", *device_rule(rule), False) for rule in devices)

    w.extend(_plan_v1_memory(_section(res, "memory"), probe))

    shares = _shares(cpu)
    if shares:
        w.append(("cpu", "cpu.shares", str(shares), False))
    quota, period = _int(cpu, "quota", "cpu"), _int(cpu, "period", "cpu", 0)
    if period:
        # lowering the period can be refused until the quota fits: then it is retried below
        w.append(("cpu", "cpu.cfs_period_us", str(period), bool(quota)))
    if quota:
        w.append(("cpu", "cpu.cfs_quota_us", str(quota), False))
        if period:
            w.append(("cpu", "cpu.cfs_period_us", str(period), False))
    rt_period, rt_runtime = (
        _int(cpu, "realtimePeriod", "cpu", 0),
        _int(cpu, "realtimeRuntime", "cpu"),
    )
    if rt_period:
        w.append(("cpu", "cpu.rt_period_us", str(rt_period), False))
    if rt_runtime:
        w.append(("cpu", "cpu.rt_runtime_us", str(rt_runtime), False))
    if cpu.get("idle") is not None:
        idle = _int(cpu, "idle", "cpu")
        if idle or probe("cpu", "cpu.idle") is not None:
            w.append(("cpu", "cpu.idle", str(idle), False))

    if res.get("pids") is not None:
        limit = _int(_section(res, "pids"), "limit", "pids")
        w.append(("pids", "pids.max", str(limit) if limit > 0 else "max", False))

    w.extend(_plan_v1_blkio(_section(res, "blockIO"), probe))

    for size, limit in _hugepages(res):
        w.append(("hugetlb", f"hugetlb.{size}.limit_in_bytes", str(limit), False))
    return w


def _plan_v1_memory(mem: dict, probe) -> list[Write]:
    limit = _int(mem, "limit", "memory", -1)
    swap = _int(mem, "swap", "memory", -1)
    reservation = _int(mem, "reservation", "memory", -1)
    have_memsw = probe("memory", "memory.memsw.limit_in_bytes") is not None
    if limit == -1 and swap == 0 and have_memsw:
        swap = -1  # unlimited memory: unlimited swap too
    if swap > 0 and limit > 0 and swap < limit:
        raise CgroupError(
            f"memory.swap ({swap}) must be >= memory.limit ({limit}): it is memory+swap"
        )
    if swap and not have_memsw:
        if swap not in (-1, limit):
            _warn("no swap accounting on this host (memory.memsw.*): swap limit ignored")
        swap = 0

    w: list[Write] = []
    set_limit = [("memory", "memory.limit_in_bytes", str(limit), False)] if limit else []
    set_swap = [("memory", "memory.memsw.limit_in_bytes", str(swap), False)] if swap else []
    swap_first = False
    if limit and swap:
        # memory+swap must stay >= memory at every step: raise swap first when it grows
        current = (probe("memory", "memory.limit_in_bytes") or "").strip()
        swap_first = swap == -1 or (current.isdigit() and int(current) < swap)
    w.extend(set_swap + set_limit if swap_first else set_limit + set_swap)

    if reservation:
        w.append(("memory", "memory.soft_limit_in_bytes", str(reservation), False))
    oom = mem.get("disableOOMKiller")
    if oom is not None and not isinstance(oom, bool):
        raise CgroupError(f"linux.resources.memory.disableOOMKiller must be a boolean: {oom!r}")
    if oom:
        w.append(("memory", "memory.oom_control", "1", False))
    swappiness = mem.get("swappiness")
    if swappiness is not None:
        swappiness = _int(mem, "swappiness", "memory")
        if swappiness != -1:
            if not 0 <= swappiness <= 100:
                raise CgroupError(
                    f"linux.resources.memory.swappiness: {swappiness} is outside 0..100"
                )
            w.append(("memory", "memory.swappiness", str(swappiness), False))
    return w


def _plan_v1_blkio(bio: dict, probe) -> list[Write]:
    # CFQ-era kernels have blkio.weight; with only BFQ the files are blkio.bfq.*
    bfq = probe("blkio", "blkio.weight") is None and probe("blkio", "blkio.bfq.weight") is not None
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    w: list[Write] = []
    weight = _int(bio, "weight", "blockIO", 0)
    if weight:
        w.append(("blkio", weight_file, str(weight), False))
    leaf = _int(bio, "leafWeight", "blockIO", 0)
    if leaf:
        w.append(("blkio", "blkio.leaf_weight", str(leaf), False))
    for dev in _list(bio, "weightDevice"):
        where = _major_minor(dev, "weightDevice")
        dev_weight = _int(dev, "weight", "blockIO.weightDevice", 0)
        if dev_weight:
            w.append(("blkio", f"{weight_file}_device", f"{where} {dev_weight}", False))
        dev_leaf = _int(dev, "leafWeight", "blockIO.weightDevice", 0)
        if dev_leaf:
            w.append(("blkio", "blkio.leaf_weight_device", f"{where} {dev_leaf}", False))
    for key, file, _ in _THROTTLES:
        for dev in _list(bio, key):
            rate = _int(dev, "rate", f"blockIO.{key}", 0)
            w.append(("blkio", file, f"{_major_minor(dev, key)} {rate}", False))
    return w


# -------------------------------------------------------------------------- v2 plan


def plan_v2(res: dict, probe) -> list[Write]:
    """OCI linux.resources -> cgroup v2 writes. probe(controller, file) -> content or None."""
    w: list[Write] = []

    if res.get("pids") is not None:
        limit = _int(_section(res, "pids"), "limit", "pids")
        w.append(("pids", "pids.max", str(limit) if limit > 0 else "max", False))

    w.extend(_plan_v2_memory(_section(res, "memory"), probe))
    w.extend(_plan_v2_io(_section(res, "blockIO"), probe))

    cpu = _section(res, "cpu")
    if _int(cpu, "realtimeRuntime", "cpu") or _int(cpu, "realtimePeriod", "cpu"):
        raise CgroupError("realtime cpu settings (realtimeRuntime/Period) need cgroup v1")
    shares = _shares(cpu)
    if shares:
        w.append(("cpu", "cpu.weight", str(shares_to_weight(shares)), False))
    quota, period = _int(cpu, "quota", "cpu"), _int(cpu, "period", "cpu", 0)
    if quota or period:
        w.append(("cpu", "cpu.max", cpu_max(quota, period, probe("cpu", "cpu.max")), False))
    if cpu.get("idle") is not None:
        idle = _int(cpu, "idle", "cpu")
        if idle or probe("cpu", "cpu.idle") is not None:
            w.append(("cpu", "cpu.idle", str(idle), False))
    for key in ("cpus", "mems"):
        value = _str(cpu, key, "cpu")
        if value:
            w.append(("cpuset", f"cpuset.{key}", value, False))

    for size, limit in _hugepages(res):
        w.append(("hugetlb", f"hugetlb.{size}.max", _num(limit), False))

    if _list(res, "devices"):
        _warn("cgroup v2: the device list is not enforced (needs eBPF, not implemented)")

    unified = _section(res, "unified")
    for name, value in unified.items():
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise CgroupError(f"linux.resources.unified: invalid file name {name!r}")
        if not isinstance(value, str):
            raise CgroupError(f"linux.resources.unified.{name}: value must be a string")
        w.append((name.split(".", 1)[0], name, value, False))
    return w


def _plan_v2_memory(mem: dict, probe) -> list[Write]:
    limit = _int(mem, "limit", "memory", -1)
    swap = _int(mem, "swap", "memory", -1)
    reservation = _int(mem, "reservation", "memory", -1)
    w: list[Write] = []
    swap_v2 = memory_swap_v2(swap, limit)
    swap_str = "0" if swap_v2 == 0 and swap > 0 else _num(swap_v2) if swap_v2 else ""
    if swap_str:
        if probe("memory", "memory.swap.max") is None:
            if swap_str not in ("max", "0"):
                _warn("no swap accounting on this host (memory.swap.max): swap limit ignored")
        else:
            w.append(("memory", "memory.swap.max", swap_str, False))
    if limit:
        current = (probe("memory", "memory.current") or "").strip()
        if limit > 0 and current.isdigit() and int(current) > limit:
            raise CgroupError(f"memory limit {limit} is below the cgroup's current usage {current}")
        w.append(("memory", "memory.max", _num(limit), False))
    if reservation:
        w.append(("memory", "memory.low", _num(reservation), False))
    swappiness = mem.get("swappiness")
    if swappiness is not None and swappiness != -1:
        _warn("cgroup v2 has no memory swappiness: ignored")
    if mem.get("disableOOMKiller"):
        _warn("cgroup v2 cannot disable the OOM killer: ignored")
    return w


def _plan_v2_io(bio: dict, probe) -> list[Write]:
    bfq = probe("io", "io.bfq.weight") is not None
    w: list[Write] = []
    weight = _int(bio, "weight", "blockIO", 0)
    if weight:
        if bfq:
            w.append(("io", "io.bfq.weight", str(weight), False))
        else:
            w.append(("io", "io.weight", str(blkio_weight_to_io_weight(weight)), False))
    for dev in _list(bio, "weightDevice"):
        where = _major_minor(dev, "weightDevice")
        dev_weight = _int(dev, "weight", "blockIO.weightDevice", 0)
        if dev_weight and bfq:
            w.append(("io", "io.bfq.weight", f"{where} {dev_weight}", False))
        elif dev_weight:
            _warn(f"per-device io weight for {where} needs the BFQ scheduler: ignored")
    for key, _, name in _THROTTLES:
        for dev in _list(bio, key):
            rate = _int(dev, "rate", f"blockIO.{key}", 0)
            w.append(("io", "io.max", f"{_major_minor(dev, key)} {name}={rate or 'max'}", False))
    return w


# --------------------------------------------------------------------------- file I/O


def write_file(path: str, value: str) -> None:
    """One open/write/close; any failure is a CgroupError naming file and value."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise _write_error(path, value, e) from None


def _write_error(path: str, value: str, e: OSError) -> CgroupError:
    code = e.errno or 0
    name = errno.errorcode.get(code, str(code))
    msg = f"cannot write {value!r} to {path}: {os.strerror(code)} ({name})"
    base = os.path.basename(path)
    if code == errno.ENOENT:
        msg += (
            "; the file is missing: controller not enabled for this cgroup or not supported"
            " by this kernel"
        )
    elif code == errno.EBUSY and base in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
        d = os.path.dirname(path)
        usage = (_read(os.path.join(d, "memory.usage_in_bytes")) or "?").strip()
        peak = (_read(os.path.join(d, "memory.max_usage_in_bytes")) or "?").strip()
        msg += f"; memory limit is below current usage {usage} (peak {peak})"
    elif code == errno.ENOSPC and base in ("cgroup.procs", "tasks"):
        msg += "; the cgroup has no cpus/mems (cpuset) or no enabled controller allows it"
    elif code == errno.EINVAL and base == "memory.memsw.limit_in_bytes":
        msg += "; memory+swap must be >= the memory limit"
    elif code == errno.EINVAL and base == "memory.limit_in_bytes":
        msg += "; the memory limit must be <= the memory+swap limit (raise memory.swap too)"
    return CgroupError(msg, code)


def _ints(text: str | None) -> list[int]:
    return [int(x) for x in (text or "").split()]


def _kv(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _one_int(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.lstrip("-").isdigit() else None


# ------------------------------------------------------------------------------ Cgroup


class Cgroup:
    """One container's cgroup, in every hierarchy of the host."""

    def __init__(self, path: str):
        if not isinstance(path, str) or not path.strip("/"):
            raise CgroupError(f"invalid cgroups path {path!r}")
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts) or "\0" in path:
            raise CgroupError(f"invalid cgroups path {path!r}: no '.' or '..' components")
        if not path.startswith("/") and path.count(":") == 2:
            raise CgroupError(f"systemd cgroups paths are not supported: {path!r}")
        self.path = path
        self.version = version()
        own = None if path.startswith("/") else self_paths()
        self._mounts: dict[str, Mount] = {}
        self._paths: dict[str, str] = {}
        for mount in _hierarchies():
            base = "/"
            if own is not None:
                base = _own_path(own, mount)
                root = mount.root.rstrip("/")
                if root and (base == root or base.startswith(root + "/")):
                    base = base[len(root) :] or "/"
            self._mounts[mount.key] = mount
            self._paths[mount.key] = os.path.normpath(
                os.path.join(mount.mountpoint, base.lstrip("/"), *parts)
            )
        self._by_controller: dict[str, str] = {}
        for key, p in self._paths.items():
            for controller in key.split(","):
                if controller and "=" not in controller:
                    self._by_controller[controller] = p

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r})"

    # -- where things are

    def paths(self) -> dict[str, str]:
        """Hierarchy name ("memory", "cpu,cpuacct", "name=systemd", "" for v2) -> directory."""
        return dict(self._paths)

    def procs_file(self) -> list[str]:
        """The cgroup.procs file of every hierarchy (write "0" to join from a child)."""
        return [os.path.join(p, "cgroup.procs") for p in self._paths.values()]

    def _dir(self, controller: str) -> str | None:
        if self.version == 2:
            return self._paths[""]
        return self._by_controller.get(controller)

    def _file(self, controller: str, name: str) -> str | None:
        d = self._dir(controller)
        return os.path.join(d, name) if d else None

    def _probe(self, controller: str, name: str) -> str | None:
        f = self._file(controller, name)
        return _read(f) if f else None

    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self._paths.values())

    # -- lifecycle

    def create(self, resources: dict | None = None) -> None:
        """Make the directories in every hierarchy, then apply `resources`."""
        existed = self.exists()
        try:
            for key, path in self._paths.items():
                self._make(self._mounts[key], path)
            if resources:
                self._apply(resources)
        except BaseException:
            if not existed:
                _quietly(self.destroy)
            raise

    def _make(self, mount: Mount, path: str) -> None:
        top = mount.mountpoint.rstrip("/") or "/"
        rel = os.path.relpath(path, top)
        current = top
        cpuset = mount.version == 1 and "cpuset" in mount.controllers
        enable = mount.version == 2 and self.version == 2
        for part in rel.split("/"):
            if enable:
                _enable_controllers(current)
            parent, current = current, os.path.join(current, part)
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                pass
            except OSError as e:
                raise CgroupError(
                    f"cannot create cgroup {current}: {e.strerror}", e.errno
                ) from None
            if cpuset:
                # a new v1 cpuset is empty, and nothing can join an empty cpuset
                for name in ("cpuset.cpus", "cpuset.mems"):
                    mine = os.path.join(current, name)
                    inherited = (_read(os.path.join(parent, name)) or "").strip()
                    if inherited and not (_read(mine) or "").strip():
                        write_file(mine, inherited)

    def update(self, resources: dict) -> None:
        """Apply resources to an existing cgroup (a running container)."""
        if not self.exists():
            raise CgroupError(f"cgroup {self.path} does not exist", errno.ENOENT)
        self._apply(resources or {})

    def _apply(self, resources: dict) -> None:
        if not isinstance(resources, dict):
            raise CgroupError(f"linux.resources must be an object, got {resources!r}")
        plan = (plan_v1 if self.version == 1 else plan_v2)(resources, self._probe)
        for controller, name, value, retried_later in plan:
            d = self._dir(controller)
            if d is None:
                raise CgroupError(
                    f"cgroup controller {controller!r} is not mounted on this host: cannot set"
                    f" {name} to {value!r}"
                )
            try:
                write_file(os.path.join(d, name), value)
            except CgroupError as e:
                if not (retried_later and e.errno == errno.EINVAL):
                    raise

    def add_process(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the cgroup in every hierarchy."""
        for f in self.procs_file():
            write_file(f, str(pid))

    def pids(self) -> list[int]:
        """Every process in the cgroup or below it, in any hierarchy, sorted."""
        found: set[int] = set()
        for top in self._paths.values():
            for d, _dirs, _files in os.walk(top):
                text = _read(os.path.join(d, "cgroup.procs"))
                if text is None:  # threaded v2 cgroup: list threads, map to processes
                    for tid in _ints(_read(os.path.join(d, "cgroup.threads"))):
                        tgid = _kv(_read(f"/proc/{tid}/status")).get("Tgid:")
                        found.add(tgid or tid)
                else:
                    found.update(_ints(text))
        return sorted(found)

    def destroy(self, timeout: float = 1.0) -> None:
        """Remove the cgroup (and anything below it) from every hierarchy, deepest first.

        rmdir is retried on EBUSY for up to `timeout` seconds in all (exited tasks leave a
        cgroup asynchronously); a cgroup that still has processes is a CgroupError.
        """
        deadline = time.monotonic() + timeout
        failed: list[tuple[str, int]] = []
        for top in self._paths.values():
            for d in [d for d, _, _ in os.walk(top, topdown=False)]:
                err = _rmdir(d, deadline)
                if err:
                    failed.append((d, err))
        if failed:
            detail = "; ".join(f"{d}: {os.strerror(err)}" for d, err in failed)
            raise CgroupError(
                f"cannot remove cgroup (processes left in it?): {detail}", failed[0][1]
            )

    # -- freezer

    def freeze(self, timeout: float = 5.0) -> None:
        """Freeze every process in the cgroup; returns once the kernel reports it frozen."""
        if self.version == 2:
            self._freeze_v2("1", timeout)
            return
        state = self._require("freezer", "freezer.state")
        deadline = time.monotonic() + timeout
        delay, rounds = 0.0001, 0
        while True:
            write_file(state, "FROZEN")
            now = (_read(state) or "").strip()
            if now == "FROZEN":
                return
            if time.monotonic() > deadline:
                write_file(state, "THAWED")
                raise CgroupError(f"cannot freeze {self.path}: still {now} after {timeout}s")
            rounds += 1
            if rounds % 50 == 0:
                # processes forking during the freeze can keep it FREEZING: thaw and retry
                write_file(state, "THAWED")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def thaw(self, timeout: float = 5.0) -> None:
        """Let the processes run again; returns once the kernel reports it thawed."""
        if self.version == 2:
            self._freeze_v2("0", timeout)
            return
        state = self._require("freezer", "freezer.state")
        deadline = time.monotonic() + timeout
        delay = 0.0001
        while True:
            write_file(state, "THAWED")
            now = (_read(state) or "").strip()
            if now == "THAWED":
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"cannot thaw {self.path}: still {now} after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def _freeze_v2(self, want: str, timeout: float) -> None:
        write_file(self._require("", "cgroup.freeze"), want)
        events = os.path.join(self._paths[""], "cgroup.events")
        deadline = time.monotonic() + timeout
        delay = 0.0001
        while _kv(_read(events)).get("frozen") != int(want):
            if time.monotonic() > deadline:
                raise CgroupError(f"{self.path}: cgroup.events did not reach frozen {want}")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def is_frozen(self) -> bool:
        """True once frozen (v1: also while FREEZING)."""
        if self.version == 2:
            return (self._probe("", "cgroup.freeze") or "").strip() == "1"
        return (self._probe("freezer", "freezer.state") or "THAWED").strip() != "THAWED"

    def _require(self, controller: str, name: str) -> str:
        f = self._file(controller, name)
        if f is None or not os.path.exists(f):
            raise CgroupError(f"{name} is not available for cgroup {self.path}", errno.ENOENT)
        return f

    # -- accounting

    def oom_kill_count(self) -> int:
        """How many processes the OOM killer killed in this cgroup (0 if unknown)."""
        if self.version == 2:
            return _kv(self._probe("memory", "memory.events")).get("oom_kill", 0)
        return _kv(self._probe("memory", "memory.oom_control")).get("oom_kill", 0)

    def stats(self) -> dict:
        """Usage figures for `docker stats`; whatever the host does not expose is left out."""
        if self.version == 2:
            return {
                "cpu": self._cpu_stats_v2(),
                "memory": self._memory_stats_v2(),
                "pids": self._pids_stats(),
                "blkio": self._io_stats_v2(),
            }
        return {
            "cpu": self._cpu_stats_v1(),
            "memory": self._memory_stats_v1(),
            "pids": self._pids_stats(),
            "blkio": self._blkio_stats_v1(),
        }

    def _cpu_stats_v1(self) -> dict:
        p = self._probe
        out: dict = {}
        total = _one_int(p("cpuacct", "cpuacct.usage"))
        if total is not None:
            out["usage_total_ns"] = total
        user, system = (
            _one_int(p("cpuacct", "cpuacct.usage_user")),
            _one_int(p("cpuacct", "cpuacct.usage_sys")),
        )
        if user is None or system is None:  # older kernels: USER_HZ ticks only
            ticks = _kv(p("cpuacct", "cpuacct.stat"))
            hz = os.sysconf("SC_CLK_TCK")
            if "user" in ticks:
                user = ticks["user"] * 1_000_000_000 // hz
            if "system" in ticks:
                system = ticks["system"] * 1_000_000_000 // hz
        if user is not None:
            out["usage_user_ns"] = user
        if system is not None:
            out["usage_system_ns"] = system
        percpu = p("cpuacct", "cpuacct.usage_percpu")
        if percpu is not None:
            out["percpu_ns"] = _ints(percpu)
        stat = _kv(p("cpu", "cpu.stat"))
        if "nr_throttled" in stat:
            out["throttled_periods"] = stat["nr_throttled"]
        if "throttled_time" in stat:
            out["throttled_time_ns"] = stat["throttled_time"]
        return out

    def _cpu_stats_v2(self) -> dict:
        stat = _kv(self._probe("cpu", "cpu.stat"))
        out = {}
        for src, dst, scale in (
            ("usage_usec", "usage_total_ns", 1000),
            ("user_usec", "usage_user_ns", 1000),
            ("system_usec", "usage_system_ns", 1000),
            ("nr_throttled", "throttled_periods", 1),
            ("throttled_usec", "throttled_time_ns", 1000),
        ):
            if src in stat:
                out[dst] = stat[src] * scale
        return out

    def _memory_stats_v1(self) -> dict:
        p = self._probe
        raw = _kv(p("memory", "memory.stat"))
        out: dict = {}
        for key, name in (
            ("usage", "memory.usage_in_bytes"),
            ("max_usage", "memory.max_usage_in_bytes"),
            ("limit", "memory.limit_in_bytes"),
        ):
            value = _one_int(p("memory", name))
            if value is not None:
                out[key] = value
        if out.get("limit", 0) >= 1 << 62:  # the kernel's "unlimited"
            del out["limit"]
        for key, names in (
            ("cache", ("total_cache", "cache")),
            ("rss", ("total_rss", "rss")),
            ("swap", ("total_swap", "swap")),
        ):
            for name in names:
                if name in raw:
                    out[key] = raw[name]
                    break
        if raw:
            out["stats"] = raw
        return out

    def _memory_stats_v2(self) -> dict:
        p = self._probe
        raw = _kv(p("memory", "memory.stat"))
        out: dict = {}
        for key, name in (
            ("usage", "memory.current"),
            ("max_usage", "memory.peak"),
            ("limit", "memory.max"),
            ("swap", "memory.swap.current"),
        ):
            value = _one_int(p("memory", name))
            if value is not None:
                out[key] = value
        for key, name in (("cache", "file"), ("rss", "anon")):
            if name in raw:
                out[key] = raw[name]
        if raw:
            out["stats"] = raw
        return out

    def _pids_stats(self) -> dict:
        out = {}
        current = _one_int(self._probe("pids", "pids.current"))
        if current is not None:
            out["current"] = current
        limit = _one_int(self._probe("pids", "pids.max"))  # "max" -> left out
        if limit is not None:
            out["limit"] = limit
        return out

    def _blkio_stats_v1(self) -> dict:
        # as runc: the first of BFQ, CFQ, blk-throttle (recursive) figures that has any
        out = {}
        for key, suffix in (
            ("io_service_bytes", "io_service_bytes_recursive"),
            ("io_serviced", "io_serviced_recursive"),
        ):
            found = None
            for prefix in ("blkio.bfq.", "blkio.", "blkio.throttle."):
                text = self._probe("blkio", prefix + suffix)
                if text is not None:
                    found = _blkio_entries(text)
                    if found:
                        break
            if found is not None:
                out[key] = found
        return out

    def _io_stats_v2(self) -> dict:
        text = self._probe("io", "io.stat")
        if text is None:
            return {}
        service_bytes, serviced = [], []
        for line in text.splitlines():
            dev, *fields = line.split()
            if ":" not in dev:
                continue
            major, minor = (int(x) for x in dev.split(":", 1))
            kv = dict(f.split("=", 1) for f in fields if "=" in f)
            for src, op, dst in (
                ("rbytes", "Read", service_bytes),
                ("wbytes", "Write", service_bytes),
                ("rios", "Read", serviced),
                ("wios", "Write", serviced),
            ):
                if src in kv:
                    dst.append({"major": major, "minor": minor, "op": op, "value": int(kv[src])})
        return {"io_service_bytes": service_bytes, "io_serviced": serviced}


def _blkio_entries(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0] and parts[2].isdigit():
            major, minor = (int(x) for x in parts[0].split(":", 1))
            out.append({"major": major, "minor": minor, "op": parts[1], "value": int(parts[2])})
    return out


def _own_path(own: dict[str, str], mount: Mount) -> str:
    if mount.version == 2:
        return own.get("", "/")
    want = set(mount.controllers)
    for key, path in own.items():
        if key and set(key.split(",")) == want:
            return path
    return "/"


def _enable_controllers(directory: str) -> None:
    """Enable in `directory` every controller it has, for its children (v2); best effort."""
    available = (_read(os.path.join(directory, "cgroup.controllers")) or "").split()
    enabled = set((_read(os.path.join(directory, "cgroup.subtree_control")) or "").split())
    missing = [c for c in available if c not in enabled]
    if not missing:
        return
    target = os.path.join(directory, "cgroup.subtree_control")
    if not _quietly(write_file, target, " ".join("+" + c for c in missing)):
        for c in missing:  # some may be refused (e.g. processes in the cgroup): keep the rest
            _quietly(write_file, target, "+" + c)


def _quietly(fn, *args) -> bool:
    """Best effort: run fn, report whether it worked instead of raising CgroupError."""
    try:
        fn(*args)
    except CgroupError:
        return False
    return True


def _rmdir(path: str, deadline: float) -> int:
    """rmdir, retrying on EBUSY until `deadline` (monotonic); 0 or the errno."""
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return 0
        except FileNotFoundError:
            return 0
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                return e.errno or errno.EIO
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
