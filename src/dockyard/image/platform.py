"""Platforms (os/architecture/variant): normalisation, the host's platform, and matching.

The rules are containerd's, which Docker uses to pick a manifest from an index: names are
normalised (aarch64 -> arm64, armhf -> arm/v7, arm64/v8 -> arm64), and a host also runs the
platforms it is compatible with, in order of preference (arm64 runs arm/v8..v5; amd64 runs 386).
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def normalize(p: Platform) -> Platform:
    os_name, arch, variant = p.os.lower(), p.architecture.lower(), p.variant.lower()
    if os_name == "macos":
        os_name = "darwin"
    if arch in ("i386", "i686"):
        arch, variant = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        if variant == "v1":
            variant = ""
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        variant = {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}.get(
            variant, variant
        )
    elif arch == "armhf":
        arch, variant = "arm", "v7"
    elif arch == "armel":
        arch, variant = "arm", "v6"
    elif arch == "arm":
        variant = {"": "v7", "7": "v7", "5": "v5", "6": "v6", "8": "v8"}.get(variant, variant)
    return Platform(os_name, arch, variant)


def parse_platform(text: str) -> Platform:
    """`linux/arm64/v8`, `linux/amd64` or `arm64` (os defaults to linux), normalised."""
    parts = text.strip().split("/")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
    if len(parts) == 1:
        parts = ["linux", *parts]
    return normalize(Platform(*parts))


def host_platform() -> Platform:
    """The platform of this machine, as an image built for it would declare it."""
    machine = _platform.machine().lower()
    if machine.startswith("armv") and machine[4:5].isdigit():
        return normalize(Platform("linux", "arm", "v" + machine[4]))
    return normalize(Platform("linux", machine))


def compatible(host: Platform) -> list[Platform]:
    """Platforms `host` can run, best first (containerd's platformVector)."""
    host = normalize(host)
    vector = [host]
    number = host.variant[1:] if host.variant.startswith("v") else ""
    if host.architecture == "amd64":
        level = int(number) if number.isdigit() else 1
        vector += [
            Platform(host.os, "amd64", f"v{v}" if v > 1 else "") for v in range(level - 1, 0, -1)
        ]
        vector.append(Platform(host.os, "386"))
    elif host.architecture == "arm" and number.isdigit():
        vector += [Platform(host.os, "arm", f"v{v}") for v in range(int(number) - 1, 4, -1)]
    elif host.architecture == "arm64":
        vector += compatible(Platform(host.os, "arm", host.variant or "v8"))
    return vector


def rank(candidate: Platform, host: Platform) -> int | None:
    """Position of `candidate` in the host's preference order, None if it cannot run here."""
    try:
        return compatible(host).index(normalize(candidate))
    except ValueError:
        return None
