"""The engine: one object holding the stores and the state machines the api layer calls."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time

from dockyard.engine import health, ipc
from dockyard.engine.config import DaemonConfig
from dockyard.engine.containers import ContainerStore
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.errors import EngineError, InvalidArgument
from dockyard.engine.events import EventBus
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.mounts import Mounts
from dockyard.engine.networks import NetworkStore
from dockyard.engine.ocispec import capabilities_for, resources, security_options
from dockyard.engine.shimclient import ShimLauncher
from dockyard.engine.volumes import VolumeService
from dockyard.image.store import ImageStore
from dockyard.runtime.drivers import IN_PROCESS, OCIRuntime, RuntimeFailure, runtime_for
from dockyard.shim.locate import monitor_binary
from dockyard.storage.content import ContentStore
from dockyard.storage.layers import LayerStore
from dockyard.storage.snapshot import choose_snapshotter
from dockyard.store import Database

VERSION = "0.1.0"
API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
# The init process for --init: Debian's tini, as Docker bundles its own as docker-init.
INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/tini")


class Engine:
    def __init__(self, config: DaemonConfig):
        self.config = config
        self.started = time.time()
        root = config.data_root
        root.mkdir(parents=True, exist_ok=True, mode=0o711)
        (root / "containers").mkdir(exist_ok=True, mode=0o710)
        config.exec_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(root)
        self.content = ContentStore(root / "content")
        self.layers = LayerStore(root / "layers", self.content)
        self.snapshots = choose_snapshotter(root / "snapshots", self.layers, config.storage_driver)
        self.images = ImageStore(self.db, self.content, self.layers)
        self.containers = ContainerStore(self.db)
        self.events = EventBus()
        self.volumes = VolumeService(self.db, root / "volumes", self.events, self.containers)
        self.mounts = Mounts(self.volumes)
        self.networks = NetworkStore(self)
        self.endpoints = Endpoints(self, self.networks)
        self.lifecycle = Lifecycle(self)
        try:
            monitor = monitor_binary()
        except FileNotFoundError as error:
            raise EngineError(str(error)) from None
        self.shims = ShimLauncher(
            str(config.exec_root / "shim-zygote.sock"),
            str(config.exec_root / "shim-zygote.log"),
            monitor,
        )
        self._drivers: dict[str, OCIRuntime] = {}
        self.execs: dict = {}  # exec ID -> session (dockyard.engine.execs)

    @property
    def snapshots_driver(self) -> str:
        return self.snapshots.name

    async def start(self) -> None:
        await asyncio.to_thread(self.networks.start)
        await self.lifecycle.reconcile()
        await self.endpoints.reconcile()

    async def stop(self) -> None:
        await self.lifecycle.shutdown(self.config.live_restore)
        self.endpoints.dns.stop_all()
        self.networks.stop(any(r["State"]["Running"] for r in self.containers.all()))
        self.shims.stop()
        self.db.close()

    # -- checks and helpers used by the state machines --------------------------------------

    def check_host_config(self, record: dict) -> None:
        """Refuse at create what would only fail at start (Docker checks these early too)."""
        host_config = record["HostConfig"]
        resources(host_config, [])
        capabilities_for(host_config)
        security_options(host_config)
        self.config.runtime_path(host_config.get("Runtime"))
        ipc.validate(host_config.get("IpcMode") or "private")
        self.mounts.requested(record)
        health.validate(record["Config"])
        for key in ("NetworkMode", "PidMode", "IpcMode", "UTSMode"):
            mode = host_config.get(key) or ""
            if mode.startswith("container:"):
                target = mode.split(":", 1)[1]
                if target in (record["Id"], record["Name"].lstrip("/")):
                    raise InvalidArgument(f"cannot join own {key[:-4].lower()} namespace")
                self.containers.get(target)

    def init_binary(self) -> str:
        for candidate in INIT_CANDIDATES:
            if os.path.exists(candidate):
                return candidate
        raise EngineError("no init binary: install Debian's tini (make install does)")

    def runtime_argv(self, record: dict, *args: str) -> list[str]:
        """The container's runtime command line (runc's contract) with its state root."""
        driver = self.runtime_driver(record)
        command = (
            [sys.executable, "-m", "dockyard.runtime.cli"]
            if driver.name == IN_PROCESS
            else [driver.name]
        )
        return [*command, "--root", driver.root, *args]

    def runtime_driver(self, record: dict) -> OCIRuntime:
        """The container's OCI runtime (its program and state root) for start, kill and delete:
        dockyard-runtime in-process (called in a thread), others through their command line."""
        runtime = self.config.runtime_path(record["HostConfig"].get("Runtime"))
        if runtime not in self._drivers:
            root = str(self.config.runtime_root / os.path.basename(runtime))
            self._drivers[runtime] = runtime_for(runtime, root)
        return self._drivers[runtime]

    async def runtime_call(self, record: dict, verb: str, *args) -> None:
        """start, kill or delete of the container through its runtime, off the event loop."""
        driver = self.runtime_driver(record)
        try:
            await asyncio.to_thread(getattr(driver, verb), record["Id"], *args)
        except RuntimeFailure as error:
            raise EngineError(str(error)) from None

    async def runtime_command(self, record: dict, verb: str, *args: str) -> None:
        """pause, resume, update: through the runtime's command line."""
        process = await asyncio.create_subprocess_exec(
            *self.runtime_argv(record, verb, *args, record["Id"]),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        if process.returncode != 0:
            raise EngineError(stderr.decode(errors="replace").strip() or f"{verb} failed")

    # -- networking (dockyard.engine.networks and .endpoints) ------------------------------

    def network_attach(self, record: dict, networking: dict | None) -> None:
        """At create: the networks the container asks for, as NetworkSettings.Networks."""
        self.endpoints.attach_at_create(record, networking)

    async def network_setup(self, record: dict, namespaces: dict[str, str]) -> dict:
        """At start: the container's namespace (set as namespaces["network"]), addresses,
        published ports and DNS; returns what /etc/hosts and resolv.conf need."""
        return await self.endpoints.setup(record, namespaces)

    def network_teardown(self, record: dict) -> None:
        self.endpoints.teardown(record)

    async def network_remove(self, record: dict) -> None:
        self.endpoints.teardown(record)

    def exec_ids(self, container_id: str) -> list[str]:
        return [e.id for e in self.execs.values() if e.container_id == container_id]

    def container_sizes(self, record: dict) -> tuple[int, int]:
        """(SizeRw, SizeRootFs): the container's own changes, and those plus its image."""
        try:
            upper = self.snapshots.upper(record["Id"])
        except Exception:
            return 0, 0
        rw = _tree_size(upper)
        try:
            image_size = self.images.get(record["Image"]).size
        except Exception:
            image_size = 0
        return rw, rw + image_size

    # -- system -------------------------------------------------------------------------------

    def info(self) -> dict:
        states = [r["State"] for r in self.containers.all()]
        running = sum(1 for s in states if s["Running"] and not s["Paused"])
        paused = sum(1 for s in states if s["Paused"])
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        from dockyard.runtime.cgroups import version as cgroup_version

        return {
            "ID": _daemon_id(self.config.data_root),
            "Containers": len(states),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": len(states) - running - paused,
            "Images": len(self.images.list(all=True)),
            "Driver": self.snapshots_driver,
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "ipvlan", "macvlan", "null"],
                "Authorization": None,
                "Log": ["json-file", "none"],
            },
            "MemoryLimit": True,
            "SwapLimit": True,
            "KernelMemory": False,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "IPv4Forwarding": True,
            "BridgeNfIptables": False,
            "BridgeNfIp6tables": False,
            "Debug": self.config.debug,
            "NFd": len(os.listdir("/proc/self/fd")),
            "OomKillDisable": True,
            "NGoroutines": len(asyncio.all_tasks()),
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": str(cgroup_version()),
            "NEventsListener": 0,
            "KernelVersion": platform.release(),
            "OperatingSystem": _os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": platform.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "IndexConfigs": {},
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "Mirrors": [],
            },
            "NCPU": os.cpu_count() or 1,
            "MemTotal": memory,
            "DockerRootDir": str(self.config.data_root),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": platform.node(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": VERSION,
            "Runtimes": {name: {"path": path} for name, path in self.config.runtimes.items()},
            "DefaultRuntime": self.config.default_runtime,
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },
            "LiveRestoreEnabled": self.config.live_restore,
            "Isolation": "",
            "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": ["name=seccomp,profile=default"],
            "Warnings": [],
        }

    def version(self) -> dict:
        return {
            "Platform": {"Name": "dockyard"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": VERSION,
                    "Details": {
                        "ApiVersion": API_VERSION,
                        "MinAPIVersion": MIN_API_VERSION,
                        "Os": "linux",
                        "Arch": _go_arch(),
                        "KernelVersion": platform.release(),
                    },
                }
            ],
            "Version": VERSION,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": _go_arch(),
            "KernelVersion": platform.release(),
            "BuildTime": "",
        }


def _tree_size(root) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return total


def _go_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _daemon_id(root) -> str:
    path = root / "engine-id"
    if not path.exists():
        import uuid

        path.write_text(str(uuid.uuid4()).upper())
    return path.read_text().strip()
