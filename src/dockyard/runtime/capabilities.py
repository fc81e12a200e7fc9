"""Linux capabilities by name, and applying the spec's five sets to the calling process."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from dockyard.runtime import linux

# Numbering from <linux/capability.h>.
CAPABILITIES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_MKNOD",
            "CAP_LEASE",
            "CAP_AUDIT_WRITE",
            "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN",
            "CAP_SYSLOG",
            "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ",
            "CAP_PERFMON",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
        ]
    )
}

# What Docker grants a container by default, in Docker's order.
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def mask(names: Iterable[str]) -> int:
    """Bit mask of the named capabilities; names the kernel lacks are skipped, as runc does."""
    top = last_cap()
    bits = 0
    for name in names:
        number = CAPABILITIES.get(name.upper())
        if number is None:
            print(f"warning: unknown capability {name!r} ignored", file=sys.stderr)
        elif number <= top:
            bits |= 1 << number
    return bits


class CapabilitySets:
    """The spec's `process.capabilities`, resolved to masks once (before pivot_root)."""

    def __init__(self, spec_caps: dict | None):
        spec_caps = spec_caps or {}
        self.bounding = mask(spec_caps.get("bounding", []))
        self.effective = mask(spec_caps.get("effective", []))
        self.permitted = mask(spec_caps.get("permitted", []))
        self.inheritable = mask(spec_caps.get("inheritable", []))
        self.ambient = mask(spec_caps.get("ambient", []))
        self.top = last_cap()

    def drop_bounding(self) -> None:
        """Drop everything outside the bounding set (needs CAP_SETPCAP, so done first)."""
        for number in range(self.top + 1):
            if not self.bounding & (1 << number):
                linux.prctl(linux.PR_CAPBSET_DROP, number)

    def apply(self) -> None:
        """Set effective/permitted/inheritable, then raise the ambient set."""
        linux.capset(self.effective, self.permitted, self.inheritable)
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
        # The kernel refuses an ambient capability that is not both permitted and inheritable;
        # runc skips those silently (`exec --cap` asks for ambient ones), and so do we.
        ambient = self.ambient & self.permitted & self.inheritable
        for number in range(self.top + 1):
            if ambient & (1 << number):
                linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, number)
