"""`docker stats`: the container's cgroup figures in Docker's JSON, one sample or a stream."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from dockyard.engine.containers import ZERO_TIME, now_rfc3339
from dockyard.engine.operations import cgroup_of

_INTERVAL = 1.0  # Docker samples once a second
_NET_FIELDS = ("bytes", "packets", "errs", "drop")
_DOCKER_NET = {"bytes": "bytes", "packets": "packets", "errs": "errors", "drop": "dropped"}


def system_cpu_usage() -> int:
    """Host CPU time in nanoseconds (the first line of /proc/stat), as Docker reports it."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]  # user nice system idle iowait irq softirq
    return sum(int(v) for v in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _networks(pid: int) -> dict:
    """Per-interface counters of the container's network namespace (loopback left out)."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, counters = line.partition(":")
        name = name.strip()
        values = [int(v) for v in counters.split()]
        if name == "lo" or len(values) < 16:
            continue
        entry = {}
        for index, key in enumerate(_NET_FIELDS):
            entry[f"rx_{_DOCKER_NET[key]}"] = values[index]
            entry[f"tx_{_DOCKER_NET[key]}"] = values[8 + index]
        out[name] = entry
    return out


def _cpu(raw: dict, running: bool) -> dict:
    if not running:
        return {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }
    percpu = raw.get("percpu_ns")
    usage = {
        "total_usage": raw.get("usage_total_ns", 0),
        "usage_in_kernelmode": raw.get("usage_system_ns", 0),
        "usage_in_usermode": raw.get("usage_user_ns", 0),
    }
    if percpu:
        usage["percpu_usage"] = percpu
    return {
        "cpu_usage": usage,
        "system_cpu_usage": system_cpu_usage(),
        "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN"),
        "throttling_data": {
            "periods": 0,  # nr_periods: not among the cgroup figures we read
            "throttled_periods": raw.get("throttled_periods", 0),
            "throttled_time": raw.get("throttled_time_ns", 0),
        },
    }


def _memory(raw: dict) -> dict:
    if not raw:
        return {}
    out = {key: raw[key] for key in ("usage", "max_usage") if key in raw}
    if "stats" in raw:
        out["stats"] = raw["stats"]
    # Docker reports the host's memory when the cgroup has no limit.
    out["limit"] = raw.get("limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return out


def _blkio(raw: dict) -> dict:
    out = {
        f"{key}_recursive": raw.get(key)
        for key in (
            "io_service_bytes",
            "io_serviced",
            "io_queue",
            "io_service_time",
            "io_wait_time",
            "io_merged",
            "io_time",
        )
    }
    out["sectors_recursive"] = None
    return out


def sample(engine, record: dict) -> dict:
    """One reading of the container's cgroup (zeros for a stopped container, as Docker)."""
    running = record["State"]["Running"]
    group = cgroup_of(engine, record)
    raw = group.stats() if running and group.exists() else {}
    data = {
        "read": now_rfc3339() if running else ZERO_TIME,
        "preread": ZERO_TIME,
        "pids_stats": raw.get("pids", {}),
        "blkio_stats": _blkio(raw.get("blkio", {})),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(raw.get("cpu", {}), running),
        "precpu_stats": _cpu({}, False),
        "memory_stats": _memory(raw.get("memory", {})),
        "name": record["Name"],
        "id": record["Id"],
    }
    networks = _networks(record["State"]["Pid"]) if running else {}
    if networks:
        data["networks"] = networks
    return data


async def stream(engine, ref: str, *, follow: bool, one_shot: bool) -> AsyncIterator[dict]:
    """Samples once a second; each carries the previous one's cpu as precpu_stats. A single
    answer (stream=0) waits for a second sample so CPU percentages mean something, unless
    one-shot asks for the first at once."""
    container_id = engine.containers.get(ref)["Id"]
    previous = None
    while True:
        record = engine.containers.get(container_id)
        current = await asyncio.to_thread(sample, engine, record)
        if previous is not None:
            current["preread"] = previous["read"]
            current["precpu_stats"] = previous["cpu_stats"]
        if follow or one_shot or previous is not None or not record["State"]["Running"]:
            yield current
            if not follow:
                return
        previous = current
        await asyncio.sleep(_INTERVAL)
