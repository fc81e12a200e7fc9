"""OCI runtime specs: reading a bundle's config.json and writing Docker's defaults.

`default_spec()` is what `dockyard-runtime spec` writes: runc's layout (terminal, `sh`)
with what dockerd hands runc for a plain `docker run`: the 14 default capabilities, the
default seccomp profile, Docker's mounts, devices cgroup rules, masked and read-only paths.
"""

from __future__ import annotations

import json
import os

from dockyard.runtime.capabilities import DEFAULT_CAPABILITIES
from dockyard.runtime.errors import OCIError

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_mounts() -> list[dict]:
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["ro", "nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        },
    ]


def default_device_rules() -> list[dict]:
    """Docker's devices cgroup: deny all, then the nodes every container gets."""
    allowed = [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)]
    return (
        [{"allow": False, "access": "rwm"}]
        + [
            {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
            for major, minor in allowed
        ]
        + [{"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]
    )


def default_spec(args: list[str] | None = None, terminal: bool = True) -> dict:
    from dockyard.runtime import seccomp

    caps = list(DEFAULT_CAPABILITIES)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "dockyard",
        "mounts": default_mounts(),
        "linux": {
            "resources": {"devices": default_device_rules()},
            "namespaces": [{"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount")],
            "seccomp": seccomp.default_spec(caps),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def load_bundle(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise OCIError(f"JSON specification file {path} not found") from None
    except json.JSONDecodeError as error:
        raise OCIError(f"malformed spec file {path}: {error}") from None
    validate(spec)
    return spec


def validate(spec: dict) -> None:
    if not isinstance(spec, dict):
        raise OCIError("malformed spec: not a JSON object")
    process = spec.get("process")
    if not isinstance(process, dict):
        raise OCIError("process property must not be empty")
    if not isinstance(process.get("args"), list) or not process["args"]:
        raise OCIError("args must not be empty")
    root = spec.get("root")
    if not isinstance(root, dict) or not root.get("path"):
        raise OCIError("root path must be set")
    for entry in spec.get("mounts") or []:
        if not isinstance(entry, dict) or not entry.get("destination"):
            raise OCIError(f"malformed mount entry: {entry!r}")
    linux = spec.get("linux")
    if linux is not None and not isinstance(linux, dict):
        raise OCIError("linux property must be an object")
