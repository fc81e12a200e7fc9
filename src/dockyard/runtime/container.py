"""The lifecycle with runc's semantics: create, start, state, kill, delete, exec, pause, resume.

`create` forks twice: the first child enters the namespaces, the second is the container's
init (pid 1 of a new pid namespace). The init builds the rootfs, pivots, and then blocks
opening exec.fifo for writing; `start` opens it for reading, which lets the init exec the
user's program. The runtime process never enters the container's namespaces itself.
"""

from __future__ import annotations

import os
import signal
import time

from dockyard.runtime import cgroups, hooks, linux, rootfs, state
from dockyard.runtime.channel import Channel
from dockyard.runtime.errors import OCIError
from dockyard.runtime.namespaces import NamespacePlan, write_id_maps
from dockyard.runtime.process import ProcessSetup
from dockyard.runtime.spec import load_bundle
from dockyard.runtime.state import ContainerState, StateDir


class CreateOptions:
    def __init__(
        self,
        console_socket: str | None = None,
        pid_file: str | None = None,
        preserve_fds: int = 0,
        console_fd: int | None = None,
    ):
        self.console_socket = console_socket
        self.pid_file = pid_file
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd  # an already connected console socket (run's own)


def _open_console(options: CreateOptions, terminal: bool) -> int | None:
    """The connected console socket, when the process gets a terminal.

    Importing `console` here, before any fork, also puts it in sys.modules for the container's
    init, which uses it after pivot_root when the host's files are out of reach.
    """
    if not terminal:
        if options.console_socket:
            raise OCIError("cannot use console socket if process.terminal is false")
        return None
    import socket

    from dockyard.runtime import console  # noqa: F401 - preloaded for the init, see above

    if options.console_fd is not None:
        return os.dup(options.console_fd)
    console_socket = options.console_socket
    if not console_socket:
        raise OCIError("cannot allocate tty if runtime is not given a --console-socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(console_socket)
    except OSError as error:
        sock.close()
        raise OCIError(f"connecting to console socket {console_socket}: {error}") from None
    return sock.detach()


def _cgroup_mounts(group: cgroups.Cgroup) -> list[rootfs.CgroupMount]:
    if cgroups.version() == 2:
        return [rootfs.CgroupMount("", group.paths()[""], "cgroup2", None)]
    mounts = []
    # In the host's mount order (paths() keeps it), which is the order runc shows them in.
    for controller, directory in group.paths().items():
        if controller == "":
            continue  # the empty v2 hierarchy of a hybrid host is not shown, as in runc
        name = os.path.relpath(directory, "/sys/fs/cgroup").split("/")[0]
        data = f"none,{controller}" if controller.startswith("name=") else controller
        mounts.append(rootfs.CgroupMount(name, directory, "cgroup", data))
    return mounts


# Appended to the spec's device rules, as runc does: mknod of any node (access still needs a
# rule), the nodes every container has, ptys and tun.
_ALWAYS_ALLOWED_DEVICES = [
    ("c", -1, -1, "m"),
    ("b", -1, -1, "m"),
    ("c", 1, 3, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 136, -1, "rwm"),
    ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),
]


def _with_default_devices(linux_spec: dict) -> dict:
    resources = dict(linux_spec.get("resources") or {})
    rules = list(resources.get("devices") or [])
    if not rules:
        return resources
    rules += [
        {
            "allow": True,
            "type": device.get("type", "c"),
            "major": device.get("major"),
            "minor": device.get("minor"),
            "access": "rwm",
        }
        for device in linux_spec.get("devices") or []
    ]
    rules += [
        {"allow": True, "type": kind, "major": major, "minor": minor, "access": access}
        for kind, major, minor, access in _ALWAYS_ALLOWED_DEVICES
    ]
    resources["devices"] = rules
    return resources


def _write_pid_file(path: str | None, pid: int) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


class Runtime:
    def __init__(self, root: str = state.DEFAULT_ROOT):
        self.root = root
        # Compiled seccomp programs by the spec's digest, root-only like the state.
        self.seccomp_cache = os.path.join(root, "@seccomp")  # "@" is never in a container id

    # -- create ---------------------------------------------------------------------------

    def create(self, container_id: str, bundle: str, options: CreateOptions) -> ContainerState:
        directory = StateDir(self.root, container_id)
        if os.path.exists(directory.path):
            raise OCIError(f"container with id exists: {container_id}")
        bundle = os.path.abspath(bundle)
        spec = load_bundle(bundle)
        linux_spec = spec.get("linux") or {}
        root_path = spec["root"]["path"]
        rootfs_path = os.path.realpath(os.path.join(bundle, root_path))
        if not os.path.isdir(rootfs_path):
            raise OCIError(f"rootfs ({rootfs_path}) does not exist")
        process = spec["process"]
        setup = ProcessSetup(process, linux_spec.get("seccomp"), self.seccomp_cache)
        plan = NamespacePlan.from_spec(linux_spec.get("namespaces") or [])
        if "uts" not in plan.new and spec.get("hostname"):
            raise OCIError("unable to set hostname without a private UTS namespace")
        group = cgroups.Cgroup(linux_spec.get("cgroupsPath") or container_id)
        console_fd = _open_console(options, bool(process.get("terminal")))
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.mkdir(directory.path, 0o711)
        os.mkfifo(directory.fifo)
        os.chmod(directory.fifo, 0o622)  # not through mkfifo: the umask would drop the w bits
        # Opened here and inherited: the init may run as an unprivileged host uid (user
        # namespace) that cannot reach the state directory; reopening the O_PATH fd through
        # /proc/self/fd only checks the fifo's own mode, as in runc.
        fifo_fd = os.open(directory.fifo, os.O_PATH | os.O_CLOEXEC)
        state_record = ContainerState(
            id=container_id,
            bundle=bundle,
            rootfs=rootfs_path,
            pid=0,
            start_time=0,
            created=state.now_rfc3339(),
            cgroup_path=linux_spec.get("cgroupsPath") or container_id,
            spec=spec,
            owner="",
            annotations=spec.get("annotations") or {},
        )
        init_pid = 0
        try:
            group.create(_with_default_devices(linux_spec))
            init = _Init(spec, bundle, rootfs_path, setup, plan, group, fifo_fd, console_fd)
            init_pid = init.launch(state_record, options.preserve_fds)
            state_record.pid = init_pid
            state_record.start_time = state.process_start_time(init_pid) or 0
            directory.save(state_record)
            _write_pid_file(options.pid_file, init_pid)
        except BaseException:
            if init_pid:
                _kill_and_wait(init_pid)
            group.destroy()
            _remove_dir(directory.path)
            # As runc, whose destroy runs them: undo what prestart/createRuntime hooks set up.
            hooks.run_hooks(spec, "poststop", state.hook_state(state_record, "stopped"))
            raise
        finally:
            plan.close()
            os.close(fifo_fd)
            if console_fd is not None:
                os.close(console_fd)
        return state_record

    # -- the rest of the lifecycle ---------------------------------------------------------

    def load(self, container_id: str) -> tuple[StateDir, ContainerState, str]:
        directory = StateDir(self.root, container_id)
        record = directory.load()
        group = cgroups.Cgroup(record.cgroup_path)
        frozen = group.exists() and group.is_frozen()
        return directory, record, directory.status(record, frozen)

    def state(self, container_id: str) -> dict:
        _, record, status = self.load(container_id)
        return state.report(record, status)

    def start(self, container_id: str) -> ContainerState:
        directory, record, status = self.load(container_id)
        if status == "stopped":
            raise OCIError("cannot start a container that has stopped")
        if status != "created":
            raise OCIError("cannot start an already running container")
        fd = os.open(directory.fifo, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 1)
            os.unlink(directory.fifo)
            if not data:
                raise OCIError("cannot start a container that has stopped")
            # The init holds its end open (close-on-exec) until it execs the program: EOF
            # means the program runs (or the init died), after the startContainer hooks.
            while os.read(fd, 1):
                pass
        finally:
            os.close(fd)
        # After the program started, as the runtime spec says (runc 1.1 runs them in create).
        hooks.run_hooks(record.spec, "poststart", state.hook_state(record, "running"))
        return record

    def kill(self, container_id: str, signum: int, all_processes: bool = False) -> None:
        _, record, status = self.load(container_id)
        if status == "stopped":
            raise OCIError("container not running")
        if all_processes:
            for pid in cgroups.Cgroup(record.cgroup_path).pids():
                _signal(pid, signum)
        else:
            _signal(record.pid, signum)
        if status == "paused" and signum == signal.SIGKILL:
            # A frozen process dies only once thawed (cgroup v1); runc thaws for SIGKILL too.
            cgroups.Cgroup(record.cgroup_path).thaw()

    def delete(self, container_id: str, force: bool = False) -> None:
        directory = StateDir(self.root, container_id)
        try:
            _, record, status = self.load(container_id)
        except OCIError:
            if force:
                return
            raise
        group = cgroups.Cgroup(record.cgroup_path)
        if status in ("running", "paused") and not force:
            raise OCIError(f"cannot delete container {container_id} that is not stopped: {status}")
        # Everything in the cgroup dies with the container, even once the init has stopped:
        # without a pid namespace its children outlive it (runc kills them too).
        if group.exists():
            for pid in group.pids():
                _signal(pid, signal.SIGKILL)
            if group.is_frozen():
                group.thaw()
        elif status != "stopped":  # never signal a stopped container's pid: it may be reused
            _signal(record.pid, signal.SIGKILL)
        if status != "stopped":
            _kill_and_wait(record.pid)
        _wait_empty(group)
        group.destroy()
        hooks.run_hooks(record.spec, "poststop", state.hook_state(record, "stopped"))
        _remove_dir(directory.path)

    def pause(self, container_id: str) -> None:
        _, record, status = self.load(container_id)
        if status not in ("running", "created"):  # runc pauses a created container too
            raise OCIError("container not running")
        cgroups.Cgroup(record.cgroup_path).freeze()

    def resume(self, container_id: str) -> None:
        _, record, status = self.load(container_id)
        if status != "paused":
            raise OCIError("container not paused")
        cgroups.Cgroup(record.cgroup_path).thaw()

    def pids(self, container_id: str) -> list[int]:
        _, record, _ = self.load(container_id)
        group = cgroups.Cgroup(record.cgroup_path)
        return sorted(group.pids()) if group.exists() else []

    def update(self, container_id: str, resources: dict) -> None:
        _, record, status = self.load(container_id)
        if status == "stopped":
            raise OCIError("container not running")
        cgroups.Cgroup(record.cgroup_path).update(resources)

    def list(self) -> list[dict]:
        out = []
        for container_id in state.list_ids(self.root):
            try:
                out.append(self.state(container_id))
            except OCIError:
                continue
        return out

    # -- exec -----------------------------------------------------------------------------

    def exec(
        self,
        container_id: str,
        process: dict,
        options: CreateOptions,
        detach: bool,
    ) -> int:
        """Run `process` in the container; returns its pid when detached, else its status."""
        _, record, status = self.load(container_id)
        if status == "stopped":
            raise OCIError("cannot exec in a stopped container")
        if status == "paused":
            raise OCIError("cannot exec in a paused state")
        linux_spec = record.spec.get("linux") or {}
        setup = ProcessSetup(process, linux_spec.get("seccomp"), self.seccomp_cache)
        kinds = [entry["type"] for entry in linux_spec.get("namespaces") or []]
        plan = NamespacePlan.of_process(record.pid, kinds)
        group = cgroups.Cgroup(record.cgroup_path)
        console_fd = _open_console(options, bool(process.get("terminal")))
        try:
            pid = _Exec(setup, plan, group, console_fd).launch(options.preserve_fds)
        finally:
            plan.close()
            if console_fd is not None:
                os.close(console_fd)
        _write_pid_file(options.pid_file, pid)
        if detach:
            return pid
        return wait_for(pid)


def wait_for(pid: int, forward_signals: bool = True) -> int:
    """Wait for our child `pid` (reaping orphans we inherit as subreaper); shell-style status."""
    if forward_signals:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, lambda s, _f: _signal(pid, s))
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _kill_and_wait(pid: int, timeout: float = 10.0) -> None:
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
            if reaped == pid:
                return
        except ChildProcessError:
            pass  # not our child: watch /proc instead
        if state.process_start_time(pid) is None:
            return
        time.sleep(0.005)


def _wait_empty(group: cgroups.Cgroup, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while group.exists() and time.monotonic() < deadline:
        alive = [p for p in group.pids() if state.process_start_time(p) is not None]
        if not alive:
            return
        time.sleep(0.005)


def _remove_dir(path: str) -> None:
    if not os.path.exists(path):
        return
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)


class _Init:
    """Launches a new container's init and walks it to the point where it waits for start."""

    def __init__(
        self,
        spec: dict,
        bundle: str,
        rootfs_path: str,
        setup: ProcessSetup,
        plan: NamespacePlan,
        group: cgroups.Cgroup,
        fifo_fd: int,
        console_fd: int | None,
    ):
        self.spec = spec
        self.linux = spec.get("linux") or {}
        self.bundle = bundle
        self.rootfs_path = rootfs_path
        self.setup = setup
        self.plan = plan
        self.group = group
        self.fifo_fd = fifo_fd
        self.console_fd = console_fd

    def launch(self, record: ContainerState, preserve_fds: int) -> int:
        keep = _needed_fds(preserve_fds, self.plan, self.console_fd, self.fifo_fd)
        channel, middle = _fork_middle(lambda ch: self._child(ch, preserve_fds), keep)
        try:
            return self._parent(channel, middle, record)
        except BaseException:
            if record.pid:
                _kill_and_wait(record.pid)
            _reap(middle)
            raise
        finally:
            channel.close()

    def _parent(self, channel: Channel, middle: int, record: ContainerState) -> int:
        self.group.add_process(middle)
        oom_score_adj = (self.spec.get("process") or {}).get("oomScoreAdj")
        if oom_score_adj is not None:
            _write(f"/proc/{middle}/oom_score_adj", str(oom_score_adj))
        channel.send("go")
        message = channel.recv()
        if message["type"] == "map-ids":
            write_id_maps(
                middle, self.linux.get("uidMappings") or [], self.linux.get("gidMappings") or []
            )
            channel.send("mapped")
            message = channel.recv()
        if message["type"] == "error":
            raise OCIError(message["message"])
        init_pid = message["pid"]
        record.pid = init_pid
        _reap(middle)
        channel.send("init")
        channel.expect("hooks")
        creating = state.hook_state(record, "creating")
        hooks.run_hooks(self.spec, "prestart", creating)
        hooks.run_hooks(self.spec, "createRuntime", creating)
        channel.send("hooks-done", state=creating)
        channel.expect("ready")
        return init_pid

    def _child(self, channel: Channel, preserve_fds: int) -> None:
        channel.expect("go")

        def map_ids() -> None:
            channel.send("map-ids")
            channel.expect("mapped")

        self.plan.enter(map_ids)
        _fork_into_namespaces(channel, lambda: self._init(channel, preserve_fds))

    def _init(self, channel: Channel, preserve_fds: int) -> None:
        """The container's pid 1 until it execs the user's program."""
        channel.expect("init")  # the middle child has reported our pid: our turn to talk
        os.setsid()
        builder = rootfs.RootfsBuilder(
            self.rootfs_path,
            self.bundle,
            _cgroup_mounts(self.group),
            cgroupns="cgroup" in self.plan.new or "cgroup" in self.plan.join,
            userns="user" in self.plan.new or "user" in self.plan.join,
        )
        mounts = self.spec.get("mounts") or []
        builder.prepare(self.linux.get("rootfsPropagation"))
        builder.mount_all(mounts)
        if not any(m.get("destination") == "/dev" and m.get("type") == "bind" for m in mounts):
            builder.populate_dev(self.linux.get("devices") or [])
        builder.make_cwd(self.setup.cwd)
        channel.send("hooks")
        creating = channel.expect("hooks-done")["state"]
        creating["pid"] = os.getpid()  # hooks run in the container see its pid there, as in runc
        hooks.run_hooks(self.spec, "createContainer", creating)
        hooks.preload(self.spec)
        builder.pivot()
        if self.console_fd is not None:
            from dockyard.runtime import console  # already in sys.modules: see _open_console

            master, slave_path = console.open_pty_in_container()
            rootfs.mount_console(slave_path)
            console.send_master(self.console_fd, master, slave_path)
            os.close(master)
            console.become_console(slave_path)
        if self.spec.get("hostname"):
            linux.sethostname(self.spec["hostname"])
        if self.spec.get("domainname"):
            linux.setdomainname(self.spec["domainname"])
        for key, value in (self.linux.get("sysctl") or {}).items():
            _write("/proc/sys/" + key.replace(".", "/"), value)
        rootfs.readonly_paths(self.linux.get("readonlyPaths") or [])
        rootfs.mask_paths(self.linux.get("maskedPaths") or [])
        if (self.spec.get("root") or {}).get("readonly"):
            rootfs.readonly_root()
        self.setup.default_home()
        executable = self.setup.resolve_executable()
        # Before "ready", so a limit the host refuses fails create (as in runc), not start.
        self.setup.set_rlimits()
        channel.send("ready")
        channel.close()
        # Blocks until `start` opens the fifo for reading.
        writer = os.open(f"/proc/self/fd/{self.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(writer, b"0")
        os.close(self.fifo_fd)
        creating["status"] = "created"  # what runc says: the user's program is not running yet
        hooks.run_hooks(self.spec, "startContainer", creating)
        _exec(self.setup, executable, preserve_fds, keep=writer)  # execve closes the writer


class _Exec:
    """Launches an extra process inside a running container."""

    def __init__(
        self,
        setup: ProcessSetup,
        plan: NamespacePlan,
        group: cgroups.Cgroup,
        console_fd: int | None,
    ):
        self.setup = setup
        self.plan = plan
        self.group = group
        self.console_fd = console_fd

    def launch(self, preserve_fds: int) -> int:
        keep = _needed_fds(preserve_fds, self.plan, self.console_fd)
        channel, middle = _fork_middle(lambda ch: self._child(ch, preserve_fds), keep)
        try:
            self.group.add_process(middle)
            channel.send("go")
            pid = channel.expect("pid")["pid"]
            _reap(middle)
            channel.send("init")
            channel.expect("ready")
            return pid
        except BaseException:
            _reap(middle)
            raise
        finally:
            channel.close()

    def _child(self, channel: Channel, preserve_fds: int) -> None:
        channel.expect("go")
        self.plan.enter(lambda: None)
        _fork_into_namespaces(channel, lambda: self._process(channel, preserve_fds))

    def _process(self, channel: Channel, preserve_fds: int) -> None:
        channel.expect("init")
        if self.console_fd is not None:
            from dockyard.runtime import console  # already in sys.modules: see _open_console

            os.setsid()
            master, slave_path = console.open_pty_in_container()
            console.send_master(self.console_fd, master, slave_path)
            os.close(master)
            console.become_console(slave_path)
        os.chdir(self.setup.cwd)
        self.setup.default_home()
        executable = self.setup.resolve_executable()
        # Before "ready", so a limit the host refuses fails create (as in runc), not start.
        self.setup.set_rlimits()
        channel.send("ready")
        channel.close()
        _exec(self.setup, executable, preserve_fds)


def _fork_middle(body, keep_fds: set[int]) -> tuple[Channel, int]:
    """Fork the child that enters the namespaces; returns our end of its channel."""
    parent_end, child_end = Channel.pair()
    # The container's process is a grandchild: as subreaper we inherit it when the middle
    # child exits, so `run` and `exec` can wait for it.
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    middle = os.fork()
    if middle == 0:
        parent_end.close()
        _close_fds_except({0, 1, 2, child_end.read_fd, child_end.write_fd, *keep_fds})
        _run_child(lambda: body(child_end), child_end)
    child_end.close()
    return parent_end, middle


def _needed_fds(preserve_fds: int, plan: NamespacePlan, *fds: int | None) -> set[int]:
    """The fds the container's processes use: preserved ones (from 3 up), namespaces, ours."""
    keep = set(range(3, 3 + preserve_fds)) | set(plan.join.values())
    return keep | {fd for fd in fds if fd is not None}


def _close_fds_except(keep: set[int]) -> None:
    """Hold only what the container needs: whatever else our caller had open (a launcher's
    pipe, a listening socket) must not stay open in the container while it waits for start."""
    low = 0
    for fd in sorted(keep):
        if low < fd:  # closerange(n, n) would close everything (the kernel's range is inclusive)
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _fork_into_namespaces(channel: Channel, body) -> None:
    """Fork once more (a new pid namespace only takes effect for children); report the pid."""
    pid = os.fork()
    if pid:
        channel.send("pid", pid=pid)
        os._exit(0)
    _run_child(body, channel)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _exec(setup: ProcessSetup, executable: str, preserve_fds: int, keep: int = -1) -> None:
    """Become the user's program; `keep` (close-on-exec) stays open until the execve."""
    setup.finalize()
    low = 3 + preserve_fds
    if keep >= low:
        os.closerange(low, keep)
        low = keep + 1
    os.closerange(low, 1 << 16)
    setup.exec(executable)


def _run_child(body, channel: Channel) -> None:
    """Run a forked child's work; report a failure to the parent; never return."""
    code = 0
    try:
        body()
    except BaseException as error:
        code = 1
        message = str(error) if isinstance(error, OCIError) else f"{type(error).__name__}: {error}"
        try:
            channel.fail(message)
        except OSError:
            os.write(2, f"dockyard-runtime: {message}\n".encode())
    finally:
        os._exit(code)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
