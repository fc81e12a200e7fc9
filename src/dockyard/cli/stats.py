"""`stats`: one table of CPU, memory, network, block I/O and PIDs per container."""

from __future__ import annotations

import sys
import time
from typing import Any

from dockyard.cli import tables
from dockyard.cli.commands import Cli
from dockyard.cli.common import short_id
from dockyard.cli.flags import VALUE, flag, parse
from dockyard.cli.units import bytes_size, human_size
from dockyard.client import APIError

STATS_TABLE = (
    "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t"
    "{{.PIDs}}"
)
STATS_HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def _cpu_percent(stats: dict[str, Any]) -> float:
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * (online or 1) * 100
    return 0.0


def _memory(stats: dict[str, Any]) -> tuple[float, float]:
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage") or 0
    details = memory.get("stats") or {}
    # what Docker subtracts: page cache that can be reclaimed (v1 and v2 names)
    for key in ("total_inactive_file", "inactive_file"):
        if key in details and details[key] < usage:
            usage -= details[key]
            break
    return usage, memory.get("limit") or 0


def _io(stats: dict[str, Any]) -> tuple[str, str]:
    networks = stats.get("networks") or {}
    rx = sum(n.get("rx_bytes", 0) for n in networks.values())
    tx = sum(n.get("tx_bytes", 0) for n in networks.values())
    read = write = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = entry.get("op", "").lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            write += entry.get("value", 0)
    return (
        f"{human_size(rx, 3)} / {human_size(tx, 3)}",
        f"{human_size(read, 3)} / {human_size(write, 3)}",
    )


def stats_row(name: str, stats: dict[str, Any]) -> dict[str, Any]:
    usage, limit = _memory(stats)
    net, block = _io(stats)
    return {
        "Container": name,
        "ID": short_id(stats.get("id", "")),
        "Name": (stats.get("name") or "").lstrip("/") or "--",
        "CPUPerc": f"{_cpu_percent(stats):.2f}%",
        "MemUsage": f"{bytes_size(usage)} / {bytes_size(limit)}",
        "MemPerc": f"{(usage / limit * 100) if limit else 0:.2f}%",
        "NetIO": net,
        "BlockIO": block,
        "PIDs": str((stats.get("pids_stats") or {}).get("current", 0)),
    }


def stats(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-a", "--all"),
            flag("--no-stream"),
            flag("--no-trunc"),
            flag("--format", kind=VALUE, default=""),
        ],
        argv,
    )
    while True:
        names = opts.args or [
            c["Id"] for c in cli.client.get("/containers/json", params={"all": opts.all or None})
        ]
        rows, failed = [], False
        for name in names:
            try:
                data = cli.client.get(
                    f"/containers/{cli.client.ref(name)}/stats", params={"stream": False}
                )
            except APIError as error:
                print(error, file=sys.stderr)
                failed = True
                continue
            row = stats_row(name, data)
            if opts.no_trunc:
                row["ID"] = data.get("id", "")
            rows.append(row)
        text = tables.render(rows, opts.format, STATS_HEADERS, STATS_TABLE)
        if opts.no_stream:
            cli.out(text)
            return 1 if failed else 0
        cli.out("\033[2J\033[H" + text)
        time.sleep(1)
