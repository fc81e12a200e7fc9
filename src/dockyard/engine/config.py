"""The daemon's configuration: dockerd's flags and daemon.json keys where they mean the same."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.engine.errors import InvalidArgument

DEFAULT_DATA_ROOT = Path("/var/lib/dockyard")
DEFAULT_EXEC_ROOT = Path("/run/dockyard")
DEFAULT_SOCKET = "unix:///run/dockyard/dockyard.sock"
DEFAULT_CONFIG_FILE = Path("/etc/dockyard/daemon.json")


@dataclass
class DaemonConfig:
    data_root: Path = DEFAULT_DATA_ROOT
    exec_root: Path = DEFAULT_EXEC_ROOT
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    pidfile: Path | None = None
    log_level: str = "info"
    debug: bool = False
    bridge: str = "dockyard0"
    bip: str | None = None
    default_address_pools: list[dict] = field(default_factory=list)
    live_restore: bool = False
    storage_driver: str | None = None
    default_runtime: str = "dockyard-runtime"
    runtimes: dict[str, str] = field(
        default_factory=lambda: {"dockyard-runtime": "dockyard-runtime", "runc": "runc"}
    )
    tls_verify: bool = False
    tls_cacert: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    default_ulimits: dict[str, dict] = field(default_factory=dict)
    cgroup_parent: str = "dockyard"
    default_ipc_mode: str = "private"
    shutdown_timeout: int = 15

    @property
    def runtime_root(self) -> Path:
        """Where each OCI runtime keeps its state: <exec root>/runtime/<name>."""
        return self.exec_root / "runtime"

    def runtime_path(self, name: str | None) -> str:
        name = name or self.default_runtime
        if name not in self.runtimes:
            raise InvalidArgument(f"Unknown runtime specified {name}")
        return self.runtimes[name]


# daemon.json key -> attribute, for the keys that mean the same as dockerd's.
_FILE_KEYS = {
    "data-root": "data_root",
    "exec-root": "exec_root",
    "hosts": "hosts",
    "pidfile": "pidfile",
    "log-level": "log_level",
    "debug": "debug",
    "bridge": "bridge",
    "bip": "bip",
    "default-address-pools": "default_address_pools",
    "live-restore": "live_restore",
    "storage-driver": "storage_driver",
    "default-runtime": "default_runtime",
    "tlsverify": "tls_verify",
    "tlscacert": "tls_cacert",
    "tlscert": "tls_cert",
    "tlskey": "tls_key",
    "default-ulimits": "default_ulimits",
    "cgroup-parent": "cgroup_parent",
    "default-ipc-mode": "default_ipc_mode",
    "shutdown-timeout": "shutdown_timeout",
}


def load_file(config: DaemonConfig, path: Path) -> DaemonConfig:
    """Apply daemon.json to `config` (flags given on the command line win: apply them after)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return config
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"invalid daemon configuration file {path}: {error}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"invalid daemon configuration file {path}: not a JSON object")
    unknown = sorted(set(data) - set(_FILE_KEYS) - {"runtimes"})
    if unknown:
        raise InvalidArgument(
            f"the following directives don't match any configuration option: {', '.join(unknown)}"
        )
    for key, attribute in _FILE_KEYS.items():
        if key in data:
            value = data[key]
            if attribute in ("data_root", "exec_root", "pidfile"):
                value = Path(value)
            setattr(config, attribute, value)
    for name, runtime in (data.get("runtimes") or {}).items():
        config.runtimes[name] = runtime.get("path", name) if isinstance(runtime, dict) else name
    return config


def resolve_runtime_binary(path: str) -> str:
    """dockyard-runtime runs in-process in the shim; others by absolute path."""
    if path == "dockyard-runtime" or os.path.isabs(path):
        return path
    from shutil import which

    found = which(path)
    if found is None:
        raise InvalidArgument(f"runtime {path} not found in PATH")
    return found
