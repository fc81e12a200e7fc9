"""Docker's human units (go-units): "2 minutes ago", "4.26MB", "512m", "1.5" CPUs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def since(timestamp: float, now: float | None = None) -> str:
    now = datetime.now(UTC).timestamp() if now is None else now
    return human_duration(now - timestamp) + " ago"


def parse_time(value: str) -> float:
    """An RFC 3339 timestamp with nanoseconds (the API's) as a POSIX time."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", value)
    if not match:
        return 0.0
    base = datetime.fromisoformat(match.group(1) + (match.group(3) or "Z").replace("Z", "+00:00"))
    fraction = float("0." + match.group(2)) if match.group(2) else 0.0
    return base.timestamp() + fraction


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units, %.<precision>g."""
    i = 0
    while size >= 1000 and i < len(_DECIMAL) - 1:
        size /= 1000
        i += 1
    return f"{size:.{precision}g}{_DECIMAL[i]}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units with two decimals (stats, memory)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{size:.4g}{units[i]}"


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes: "512m", "1g", "100k", "1024" (binary multiples)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?", value.strip())
    if not match:
        raise ValueError(f"invalid size: '{value}'")
    return int(float(match.group(1)) * _BINARY[match.group(2).lower()])


def nano_cpus(value: str) -> int:
    try:
        cpus = float(value)
    except ValueError:
        raise ValueError(f"failed to parse {value} as a rational number") from None
    return round(cpus * 1e9)
