"""The container state machine: create, start, stop, kill, wait, restart, remove, attach.

Each container that is running has a shim (dockyard.shim) and, in the daemon, a monitor task
waiting on the shim for the exit. The exit is recorded (state, events, waiters), then the
restart policy or AutoRemove is applied. Because the shim records the exit on disk, a daemon
that was killed learns of exits that happened while it was down (`reconcile`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal as signals
import sys
import time
from pathlib import Path

from dockyard.engine import containers as records
from dockyard.engine import ipc, shimclient
from dockyard.engine.errors import (
    Conflict,
    EngineError,
    InvalidArgument,
    NotFound,
    NotModified,
)
from dockyard.engine.health import Health
from dockyard.engine.logs import parse_size
from dockyard.engine.ocispec import DEFAULT_SHM_SIZE, SpecContext, build_spec
from dockyard.engine.timefmt import parse_rfc3339
from dockyard.engine.users import resolve as resolve_user
from dockyard.runtime.cgroups import Cgroup, CgroupError

log = logging.getLogger("dockyard.engine")
DEFAULT_STOP_TIMEOUT = 10
_RESTART_BACKOFF_START = 0.1
_RESTART_BACKOFF_MAX = 60.0


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    if value is None or value == "":
        return default
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            number = int(signals.Signals[name])
        except KeyError:
            raise InvalidArgument(f"Invalid signal: {value}") from None
    if not 0 < number < 65:
        raise InvalidArgument(f"Invalid signal: {value}")
    return number


class Live:
    """What the daemon knows of a container beyond its record: tasks, waiters, locks."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.running = asyncio.Event()  # set while a shim runs it (attach waits on this)
        self.exits: list[asyncio.Future] = []  # next-exit waiters
        self.removed = asyncio.Event()
        self.monitor: asyncio.Task | None = None
        self.attaching = 0  # attach requests waiting for the next shim
        self.attached = asyncio.Event()
        self.manually_stopped = False
        self.restart_task: asyncio.Task | None = None
        self.backoff = _RESTART_BACKOFF_START
        self.removed_code = 0  # the exit code `wait?condition=removed` reports


class Lifecycle:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.store: records.ContainerStore = engine.containers
        self.live: dict[str, Live] = {}
        self.health = Health(engine, self._publish)

    def _live(self, container_id: str) -> Live:
        if container_id not in self.live:
            self.live[container_id] = Live()
        return self.live[container_id]

    def directory(self, container_id: str) -> Path:
        return records.container_dir(self.engine.config.data_root, container_id)

    def _publish(self, record: dict, action: str, **extra: str) -> None:
        attributes = {
            "image": record["Config"].get("Image") or record["Image"],
            "name": record["Name"].lstrip("/"),
            **(record["Config"].get("Labels") or {}),
            **extra,
        }
        self.engine.events.publish("container", action, record["Id"], attributes)

    # -- create ---------------------------------------------------------------------------

    async def create(self, name: str | None, body: dict) -> tuple[str, list[str]]:
        if not isinstance(body, dict):
            raise InvalidArgument("config cannot be empty in order to create a container")
        image_name = body.get("Image")
        if not image_name:
            raise InvalidArgument("config cannot be empty in order to create a container")
        image = self.engine.images.get(image_name)
        name = records.check_name(self.store, name)
        container_id = records.new_id()
        directory = self.directory(container_id)
        record = records.new_record(
            container_id,
            name,
            body,
            image.id,
            image.config.container_config,
            directory,
            self.engine.snapshots_driver,
        )
        self.engine.check_host_config(record)
        # As dockerd: the daemon's defaults are written into the record, so that a later
        # change of default does not move an existing container.
        host_config = record["HostConfig"]
        host_config["Runtime"] = host_config.get("Runtime") or self.engine.config.default_runtime
        host_config["IpcMode"] = host_config.get("IpcMode") or self.engine.config.default_ipc_mode
        if (host_config.get("NetworkMode") or "").startswith("container:") and body.get("Hostname"):
            raise InvalidArgument("conflicting options: hostname and the network mode")
        self.engine.network_attach(record, body.get("NetworkingConfig"))
        directory.mkdir(parents=True, mode=0o710)
        try:
            await asyncio.to_thread(self.engine.snapshots.prepare, container_id, image.top_layer)
            if image.top_layer:
                self.engine.images.hold(f"container:{container_id}", image.top_layer)
            await self.engine.mounts.create(record)
            self.store.save(record)
        except BaseException:
            await self._discard(container_id)
            raise
        self._live(container_id)
        self._publish(record, "create")
        return container_id, []

    async def _discard(self, container_id: str) -> None:
        try:
            await asyncio.to_thread(self.engine.snapshots.remove, container_id)
        except Exception:
            pass
        self.engine.images.release(f"container:{container_id}")
        records.remove_dir(self.directory(container_id))

    # -- start ------------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        record = self.store.get(ref)
        live = self._live(record["Id"])
        try:
            async with live.lock:
                record = self.store.get(record["Id"])
                state = record["State"]
                if state["Paused"]:
                    raise Conflict("cannot start a paused container, try unpause instead")
                if state["Running"]:
                    raise NotModified("container already started")
                if state["Status"] == "removing":
                    raise Conflict("container is marked for removal and cannot be started")
                # A start by the user begins a new restart history, as Docker's.
                self._mark_stopped(record["Id"], live, False)
                record["RestartCount"] = 0
                live.backoff = _RESTART_BACKOFF_START
                await self._start_locked(record, live)
        except EngineError as error:
            if isinstance(error, NotModified) or not record["HostConfig"].get("AutoRemove"):
                raise
            # As dockerd: a --rm container that cannot start is removed (its waiters return).
            await self.remove(record["Id"], force=True)
            raise

    async def _start_locked(self, record: dict, live: Live) -> None:
        container_id = record["Id"]
        directory = self.directory(container_id)
        for stale in ("exit.json", "init.pid"):
            (directory / stale).unlink(missing_ok=True)
        try:
            pid = await self._launch(record, directory)
        except Exception as error:
            if not isinstance(error, EngineError):  # a bug: logged, and the start still fails
                log.exception("starting %s", container_id[:12])
                error = EngineError(f"failed to start container: {error}")
            # As in Docker, the container keeps its status ("created" or "exited").
            record["State"]["Error"] = str(error)
            record["State"]["ExitCode"] = _start_failure_code(str(error))
            self.store.save(record)
            await self._unmount(record)
            self.engine.network_teardown(record)
            raise error from None
        live.running.set()
        await self._let_attachers_in(live)
        try:
            await self.engine.runtime_call(record, "start")
        except EngineError as error:
            await self._delete_in_runtime(record)  # the init waits for a start: it goes
            raise EngineError(f"failed to start container: {error}") from None
        state = record["State"]
        state.update(
            Status="running",
            Running=True,
            Paused=False,
            Restarting=False,
            OOMKilled=False,
            Dead=False,
            Pid=pid,
            ExitCode=0,
            Error="",
            StartedAt=records.now_rfc3339(),
            FinishedAt=records.ZERO_TIME,
        )
        self.health.reset(record)
        self.store.save(record)
        self._publish(record, "start")
        live.monitor = asyncio.create_task(self._monitor(container_id, str(directory)))
        self.health.watch(container_id)

    async def _let_attachers_in(self, live: Live) -> None:
        """Attach requests made before start get their stream before the program runs."""
        deadline = time.monotonic() + 5
        while live.attaching and time.monotonic() < deadline:
            live.attached.clear()
            try:
                await asyncio.wait_for(live.attached.wait(), deadline - time.monotonic())
            except TimeoutError:
                break

    async def _launch(self, record: dict, directory: Path) -> int:
        config, host_config = record["Config"], record["HostConfig"]
        rootfs = directory / "rootfs"
        rootfs.mkdir(exist_ok=True)
        if not os.path.ismount(rootfs):
            await asyncio.to_thread(self.engine.snapshots.mount, record["Id"], rootfs)
        try:
            uid, gid, groups = resolve_user(
                str(rootfs), config.get("User") or "", list(host_config.get("GroupAdd") or [])
            )
            mounts = await self.engine.mounts.prepare(record, str(rootfs))
            namespaces, host_namespaces, shm = self._namespaces(record)
            network = await self.engine.network_setup(record, namespaces)
            self._write_etc_files(record, directory, network)
            spec = build_spec(
                SpecContext(
                    container_id=record["Id"],
                    config=config,
                    host_config=host_config,
                    rootfs=str(rootfs),
                    args=[record["Path"], *record["Args"]],
                    uid=uid,
                    gid=gid,
                    additional_gids=groups,
                    hostname_path=record["HostnamePath"],
                    hosts_path=record["HostsPath"],
                    resolv_path=record["ResolvConfPath"],
                    mounts=mounts,
                    namespace_paths=namespaces,
                    host_namespaces=host_namespaces,
                    cgroups_path=self._cgroup_path(record),
                    init_binary=self.engine.init_binary() if host_config.get("Init") else None,
                    shm_source=shm,
                )
            )
        except EngineError:
            raise
        except (OSError, ValueError) as error:
            raise EngineError(f"failed to prepare container: {error}") from None
        (directory / "config.json").write_text(json.dumps(spec))
        log_config = host_config.get("LogConfig") or {}
        options = log_config.get("Config") or {}
        log = {"driver": "none"}
        if log_config.get("Type", "json-file") == "json-file":
            try:
                log = {
                    "driver": "json-file",
                    "path": record["LogPath"],
                    "max_size": parse_size(options["max-size"]) if options.get("max-size") else 0,
                    "max_file": int(options.get("max-file") or 1),
                }
            except ValueError as error:
                raise InvalidArgument(f"invalid log option: {error}") from None
        runtime = self.engine.runtime_driver(record)
        shim_config = {
            "id": record["Id"],
            "bundle": str(directory),
            "runtime": runtime.name,
            "runtime_root": runtime.root,
            "tty": bool(config.get("Tty")),
            "stdin": bool(config.get("OpenStdin")),
            "stdin_once": bool(config.get("StdinOnce")),
            "log": log,
            "console_size": host_config.get("ConsoleSize") or [0, 0],
        }
        return await self.engine.shims.launch(str(directory), shim_config)

    def _cgroup_path(self, record: dict) -> str:
        return f"/{self.engine.config.cgroup_parent}/{record['Id']}"

    def _namespaces(self, record: dict) -> tuple[dict[str, str], set[str], str | None]:
        """(namespaces to join by path, namespaces shared with the host, /dev/shm to bind)."""
        host_config = record["HostConfig"]
        join: dict[str, str] = {}
        host: set[str] = set()
        shm = None
        for kind, key, proc_name in (
            ("network", "NetworkMode", "net"),
            ("pid", "PidMode", "pid"),
            ("ipc", "IpcMode", "ipc"),
            ("uts", "UTSMode", "uts"),
        ):
            mode = host_config.get(key) or ""
            if mode == "host":
                host.add(kind)
            elif mode.startswith("container:"):
                other = self._running_container(mode.split(":", 1)[1], kind)
                join[kind] = f"/proc/{other['State']['Pid']}/ns/{proc_name}"
                if kind == "ipc":
                    shm = ipc.donor_shm(self.directory(other["Id"]), other["Id"])
            elif mode == "shareable" and kind == "ipc":
                size = host_config.get("ShmSize") or DEFAULT_SHM_SIZE
                shm = ipc.mount_shareable(self.directory(record["Id"]), size)
        if "ipc" in host:
            shm = "/dev/shm"
        return join, host, shm

    def _running_container(self, ref: str, kind: str) -> dict:
        other = self.store.get(ref)
        if not other["State"]["Running"]:
            what = {"network": "network", "pid": "PID namespace", "ipc": "IPC namespace"}
            raise Conflict(f"cannot join {what.get(kind, kind)} of a non running container: {ref}")
        return other

    def _write_etc_files(self, record: dict, directory: Path, network: dict) -> None:
        from dockyard.engine import etcfiles

        config, host_config = record["Config"], record["HostConfig"]
        network_mode = host_config.get("NetworkMode") or ""
        if network_mode.startswith("container:"):
            # As dockerd: the name and the files of the container whose network it shares.
            donor = self.store.get(network_mode.split(":", 1)[1])
            config["Hostname"] = donor["Config"]["Hostname"]
            config["Domainname"] = donor["Config"].get("Domainname") or ""
            donor_dir = self.directory(donor["Id"])
            for name in ("hostname", "hosts", "resolv.conf"):
                (directory / name).write_bytes((donor_dir / name).read_bytes())
            return
        host_network = network_mode == "host"
        hostname = os.uname().nodename if host_network else config["Hostname"]
        (directory / "hostname").write_text(hostname + "\n")
        (directory / "hosts").write_text(etcfiles.hosts(record, network, host_network))
        (directory / "resolv.conf").write_text(etcfiles.resolv_conf(host_config, network))

    # -- exit ------------------------------------------------------------------------------

    async def _monitor(self, container_id: str, directory: str) -> None:
        try:
            exit_info = await shimclient.wait_exit(directory)
        except shimclient.ShimGone:
            exit_info = _read_exit(Path(directory)) or {"exit_code": 255}
        except asyncio.CancelledError:
            return
        try:
            await self._on_exit(container_id, exit_info)
        except Exception:
            log.exception("recording the exit of %s", container_id[:12])

    async def _on_exit(self, container_id: str, exit_info: dict) -> None:
        try:
            record = self.store.get(container_id)
        except NotFound:
            return
        live = self._live(container_id)
        live.running.clear()
        state = record["State"]
        code = int(exit_info.get("exit_code", 255))
        oom_killed = await self._collect_runtime_leftovers(record)
        state.update(
            Status="exited",
            Running=False,
            Paused=False,
            Pid=0,
            ExitCode=code,
            OOMKilled=oom_killed,
            FinishedAt=exit_info.get("finished_at") or records.now_rfc3339(),
        )
        self.health.stop(record)
        await self._unmount(record)
        self.engine.network_teardown(record)
        restart = self._should_restart(record, live)
        if restart:
            state["Restarting"] = True
            state["Status"] = "restarting"
        self.store.save(record)
        if state["OOMKilled"]:
            self._publish(record, "oom")
        self._publish(record, "die", exitCode=str(code))
        for future in live.exits:
            if not future.done():
                future.set_result(code)
        live.exits.clear()
        if restart:
            live.restart_task = asyncio.create_task(self._restart_later(record["Id"], live))
        elif record["HostConfig"].get("AutoRemove"):
            try:
                await self.remove(container_id, force=True, volumes=True)
            except NotFound:
                pass

    async def _collect_runtime_leftovers(self, record: dict) -> bool:
        """After an exit: whether the OOM killer struck (read from the cgroup before it goes),
        then the runtime's container deleted (leftover processes, cgroup, state)."""
        try:
            oom_killed = Cgroup(self._cgroup_path(record)).oom_kill_count() > 0
        except (CgroupError, OSError):
            oom_killed = False
        await self._delete_in_runtime(record)
        return oom_killed

    async def _delete_in_runtime(self, record: dict) -> None:
        try:
            await self.engine.runtime_call(record, "delete", True)
        except EngineError as error:
            log.warning("deleting %s in its runtime: %s", record["Id"][:12], error)

    def _mark_stopped(self, container_id: str, live: Live, stopped: bool) -> None:
        """`docker stop` suppresses restarts, also across daemon restarts: kept on disk."""
        live.manually_stopped = stopped
        marker = self.directory(container_id) / "stopped-by-user"
        if stopped:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def _should_restart(self, record: dict, live: Live, daemon_start: bool = False) -> bool:
        """Docker's policies. At daemon start, "always" also restarts what the user stopped."""
        if record["State"]["Status"] == "removing":
            return False
        policy = record["HostConfig"].get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if daemon_start and name == "always":
            return True
        if live.manually_stopped:
            return False
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and record["State"]["ExitCode"] != 0:
            limit = policy.get("MaximumRetryCount") or 0
            return limit == 0 or record["RestartCount"] < limit
        return False

    async def _restart_later(self, container_id: str, live: Live) -> None:
        """Docker's backoff: 100 ms doubling up to a minute, reset after 10 s of running."""
        record = self.store.get(container_id)
        started = parse_rfc3339(record["State"]["StartedAt"])
        finished = parse_rfc3339(record["State"]["FinishedAt"])
        if finished - started >= 10:
            live.backoff = _RESTART_BACKOFF_START
        delay = live.backoff
        live.backoff = min(live.backoff * 2, _RESTART_BACKOFF_MAX)
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        async with live.lock:
            try:
                record = self.store.get(container_id)
            except NotFound:
                return
            if not record["State"]["Restarting"] or live.manually_stopped:
                return
            record["RestartCount"] += 1
            try:
                await self._start_locked(record, live)
            except EngineError as error:
                print(f"restart of {container_id[:12]} failed: {error}", file=sys.stderr)
                record["State"].update(Restarting=False, Status="exited")
                self.store.save(record)
                return
            self._publish(record, "restart")

    async def _unmount(self, record: dict) -> None:
        try:
            ipc.unmount_shareable(self.directory(record["Id"]))
        except OSError as error:
            log.warning("unmounting the shm of %s: %s", record["Id"][:12], error)
        rootfs = self.directory(record["Id"]) / "rootfs"
        if os.path.ismount(rootfs):
            try:
                await asyncio.to_thread(self.engine.snapshots.unmount, rootfs)
            except OSError as error:
                print(f"unmount {rootfs}: {error}", file=sys.stderr)
        await self.engine.mounts.release(record)

    # -- stop, kill, wait ---------------------------------------------------------------------

    async def kill(self, ref: str, signal: str | int | None = None) -> None:
        record = self.store.get(ref)
        signum = parse_signal(signal)
        if not record["State"]["Running"]:
            raise Conflict(f"Cannot kill container: {ref}: Container {record['Id']} is not running")
        await self._signal(record, signum)
        self._publish(record, "kill", signal=str(signum))

    async def _signal(self, record: dict, signum: int, all_processes: bool = False) -> None:
        if record["State"]["Paused"] and signum == signals.SIGKILL:
            await self.engine.runtime_command(record, "resume")
            record["State"].update(Paused=False, Status="running")
            self.store.save(record)
        try:
            await self.engine.runtime_call(record, "kill", signum, all_processes)
        except EngineError:
            pass  # it exited meanwhile: the monitor records it

    async def stop(self, ref: str, timeout: int | None = None) -> None:
        record = self.store.get(ref)
        live = self._live(record["Id"])
        if live.restart_task and not live.restart_task.done():
            self._mark_stopped(record["Id"], live, True)
            live.restart_task.cancel()
            record["State"].update(Restarting=False, Status="exited")
            self.store.save(record)
            return
        if not record["State"]["Running"]:
            raise NotModified("container already stopped")
        self._mark_stopped(record["Id"], live, True)
        if timeout is None:
            timeout = record["Config"].get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        exited = self._next_exit(live)
        stop_signal = parse_signal(record["Config"].get("StopSignal"), signals.SIGTERM)
        if timeout != 0:
            await self._signal(record, stop_signal)
            self._publish(record, "kill", signal=str(stop_signal))
        try:
            if timeout < 0:
                await asyncio.shield(exited)
            else:
                await asyncio.wait_for(asyncio.shield(exited), timeout if timeout else 0.001)
        except TimeoutError:
            await self._signal(record, signals.SIGKILL, all_processes=True)
            self._publish(record, "kill", signal=str(int(signals.SIGKILL)))
            await exited
        self._publish(self.store.get(record["Id"]), "stop")

    def _next_exit(self, live: Live) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        live.exits.append(future)
        return future

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        record = self.store.get(ref)
        try:
            await self.stop(record["Id"], timeout)
        except NotModified:
            pass
        await self.start(record["Id"])
        self._publish(self.store.get(record["Id"]), "restart")

    async def wait(self, ref: str, condition: str = "not-running") -> dict:
        record = self.store.get(ref)
        live = self._live(record["Id"])
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        if condition == "removed":
            await live.removed.wait()
            return {"StatusCode": live.removed_code, "Error": None}
        if (
            condition != "next-exit"
            and not record["State"]["Running"]
            and not record["State"]["Restarting"]
        ):
            return {"StatusCode": record["State"]["ExitCode"], "Error": None}
        code = await self._next_exit(live)
        return {"StatusCode": code, "Error": None}

    def wait_prepare(self, ref: str, condition: str) -> asyncio.Future | None:
        """Register a next-exit or removed waiter now (before the HTTP headers go out), so an
        exit between the headers and the start cannot be missed."""
        record = self.store.get(ref)
        live = self._live(record["Id"])
        if condition == "next-exit" or (
            condition in ("", "not-running") and record["State"]["Running"]
        ):
            return self._next_exit(live)
        return None

    # -- remove -------------------------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        record = self.store.get(ref)
        container_id = record["Id"]
        live = self._live(container_id)
        if record["State"]["Running"] and not force:
            if record["State"]["Paused"]:
                raise Conflict(
                    f"You cannot remove a paused container {container_id}. Unpause and then "
                    "stop the container before attempting removal or force remove"
                )
            raise Conflict(
                f"You cannot remove a running container {container_id}. Stop the container "
                "before attempting removal or force remove"
            )
        if record["State"]["Status"] == "removing" and not force:
            raise Conflict(f"removal of container {ref} is already in progress")
        live.manually_stopped = True
        if live.restart_task and not live.restart_task.done():
            live.restart_task.cancel()
        if record["State"]["Running"]:
            exited = self._next_exit(live)
            await self._signal(record, signals.SIGKILL, all_processes=True)
            try:
                await asyncio.wait_for(exited, 30)
            except TimeoutError:
                raise EngineError(f"could not kill running container {container_id}") from None
            record = self.store.get(container_id)
        record["State"]["Status"] = "removing"
        async with live.lock:
            await self._unmount(record)
            await self.engine.network_remove(record)
            try:
                await asyncio.to_thread(self.engine.snapshots.remove, container_id)
            except Exception as error:
                print(f"removing snapshot of {container_id[:12]}: {error}", file=sys.stderr)
            self.engine.images.release(f"container:{container_id}")
            await self.engine.mounts.remove(record, volumes)
            self.store.delete(container_id)
            records.remove_dir(self.directory(container_id))
        live.removed_code = record["State"]["ExitCode"]
        live.removed.set()
        for future in live.exits:
            if not future.done():
                future.set_result(record["State"]["ExitCode"])
        self.live.pop(container_id, None)
        self._publish(record, "destroy")

    # -- attach and resize --------------------------------------------------------------------

    async def attach(self, ref: str, stdin: bool, stdout: bool, stderr: bool):
        """The shim streams of the container's current or next run."""
        record = self.store.get(ref)
        live = self._live(record["Id"])
        live.attaching += 1
        try:
            running = asyncio.create_task(live.running.wait())
            removed = asyncio.create_task(live.removed.wait())
            await asyncio.wait({running, removed}, return_when=asyncio.FIRST_COMPLETED)
            running.cancel()
            removed.cancel()
            if live.removed.is_set():
                raise NotFound(f"No such container: {ref}")
            streams = await shimclient.attach(
                str(self.directory(record["Id"])), stdin, stdout, stderr
            )
        finally:
            live.attaching -= 1
            live.attached.set()
        self._publish(record, "attach")
        return streams

    def detached(self, ref: str) -> None:
        """An attached client left with the detach keys (the container keeps running)."""
        self._publish(self.store.get(ref), "detach")

    async def resize(self, ref: str, height: int, width: int) -> None:
        record = self.store.get(ref)
        if not record["State"]["Running"]:
            raise Conflict(f"Container {record['Id']} is not running")
        await shimclient.request(str(self.directory(record["Id"])), "resize", height, width)

    # -- daemon start and stop ------------------------------------------------------------

    async def reconcile(self) -> None:
        """Match the records with what runs: reconnect to live shims, record exits that
        happened while the daemon was down, restart what the policies say."""
        restarts = []
        for record in self.store.all():
            live = self._live(record["Id"])
            directory = self.directory(record["Id"])
            live.manually_stopped = (directory / "stopped-by-user").exists()
            state = record["State"]
            if state["Status"] == "removing":
                await self.remove(record["Id"], force=True)
                continue
            if not (state["Running"] or state["Restarting"]):
                if state["StartedAt"] != records.ZERO_TIME and self._should_restart(
                    record, live, daemon_start=True
                ):
                    restarts.append(self._start_at_daemon_start(record, live))
                continue
            try:
                answer = await shimclient.request(str(directory), "state")
            except (shimclient.ShimGone, EngineError):
                answer = None
            if answer and answer.get("status") == "running":
                live.running.set()
                live.monitor = asyncio.create_task(self._monitor(record["Id"], str(directory)))
                self.health.watch(record["Id"])
                continue
            exit_info = (answer or {}).get("exit") or _read_exit(directory) or {"exit_code": 255}
            if state["Restarting"]:
                state["Running"] = False
            await self._on_exit(record["Id"], exit_info)
        await asyncio.gather(*restarts)

    async def _start_at_daemon_start(self, record: dict, live: Live) -> None:
        async with live.lock:
            try:
                await self._start_locked(record, live)
            except EngineError as error:
                log.error("restarting %s: %s", record["Id"][:12], error)

    async def shutdown(self, live_restore: bool) -> None:
        """Daemon stop: leave containers running (live restore) or stop them as dockerd does."""
        self.health.cancel_all()
        for task in [live.monitor for live in self.live.values() if live.monitor]:
            task.cancel()
        for live in self.live.values():
            if live.restart_task:
                live.restart_task.cancel()
        if live_restore:
            return
        running = [r for r in self.store.all() if r["State"]["Running"]]
        await asyncio.gather(*(self._stop_for_shutdown(r) for r in running), return_exceptions=True)

    async def _stop_for_shutdown(self, record: dict) -> None:
        directory = str(self.directory(record["Id"]))
        stop_signal = parse_signal(record["Config"].get("StopSignal"), signals.SIGTERM)
        timeout = record["Config"].get("StopTimeout")
        if timeout is None:
            timeout = self.engine.config.shutdown_timeout
        try:
            exited = asyncio.ensure_future(shimclient.wait_exit(directory))
            await self._signal(record, stop_signal)
            try:
                exit_info = await asyncio.wait_for(asyncio.shield(exited), max(timeout, 0.001))
            except TimeoutError:
                await self._signal(record, signals.SIGKILL, all_processes=True)
                exit_info = await exited
        except shimclient.ShimGone:
            # It exited meanwhile and its shim with it: the exit is on disk.
            exit_info = _read_exit(Path(directory)) or {"exit_code": 255}
        except EngineError as error:
            log.error("stopping %s at shutdown: %s", record["Id"][:12], error)
            return
        # Recorded now, so that the next daemon start sees a container stopped by shutdown
        # (policies "always" and "unless-stopped" restart it then).
        oom_killed = await self._collect_runtime_leftovers(record)
        record["State"].update(
            Status="exited",
            Running=False,
            Pid=0,
            OOMKilled=oom_killed,
            ExitCode=int(exit_info.get("exit_code", 255)),
            FinishedAt=exit_info.get("finished_at") or records.now_rfc3339(),
        )
        self.health.stop(record)
        self.store.save(record)
        await self._unmount(record)
        self.engine.network_teardown(record)


def _read_exit(directory: Path) -> dict | None:
    try:
        return json.loads((directory / "exit.json").read_text())
    except (OSError, ValueError):
        return None


def _start_failure_code(message: str) -> int:
    """The exit code Docker records when the program cannot run at all."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message.lower():
        return 126
    return 128
