"""Docker's time formats: RFC 3339 with nanoseconds, and the human durations of `docker ps`."""

from __future__ import annotations

import calendar
import re
import time

_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def parse_rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 timestamp (0.0 for Docker's zero time or garbage)."""
    match = _RFC3339.match(text or "")
    if not match or text.startswith("0001-"):
        return 0.0
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = calendar.timegm(
        (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


def parse_timestamp(text: str) -> float:
    """A `since`/`until` value: unix seconds (with fraction), RFC 3339, or a Go duration ago."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    duration = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if duration:
        factor = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[duration[2]]
        return time.time() - float(duration[1]) * factor
    value = parse_rfc3339(text)
    if value == 0.0:
        raise ValueError(f"invalid timestamp {text!r}")
    return value


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 2:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    if hours < 24 * 7 * 2:
        return f"{int(hours / 24)} days"
    if hours < 24 * 30 * 2:
        return f"{int(hours / 24 / 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{int(hours / 24 / 30)} months"
    return f"{int(hours / 24 / 365)} years"
