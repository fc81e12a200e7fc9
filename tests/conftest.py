"""Fixtures shared by the test tree.

The runtime fixtures run real containers under two OCI runtimes, `runc` (the Debian package,
the reference) and our `dockyard-runtime`, on bundles made from one busybox rootfs:

* `busybox_rootfs` (session): busybox-static plus /bin/probe, compiled from
  tests/integration/runtime/probe.c, for the system calls busybox cannot make.
* `bundle`: a factory of OCI bundles (a `cp -a` of that rootfs and a config.json from
  `default_spec`), each with a unique hostname and cgroupsPath under /dockyard-test/.
* `runtimes`: both runtimes, each with a --root of its own; at teardown every container left
  in either root is force-deleted and every cgroup the test's bundles named is removed, even
  when the test failed, so the suite can run next to anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.image.rootfs import make_busybox_rootfs
from dockyard.runtime.spec import default_spec

PROBE_SOURCE = Path(__file__).parent / "integration" / "runtime" / "probe.c"
DOCKYARD_RUNTIME = Path(sys.executable).parent / "dockyard-runtime"
CGROUP_PARENT = "/dockyard-test"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def bundles_root() -> Iterator[Path]:
    """A tmpfs for the session's rootfs and bundles, traversable by anyone (0711): a container
    in a user namespace runs as an unprivileged host uid and must reach its rootfs (pytest's
    tmp_path is 0700). tmpfs, because symlinks cost milliseconds each on some disks and every
    bundle copies a few hundred of them."""
    root = Path(tempfile.mkdtemp(prefix="dockyard-bundles-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "--lazy", "--recursive", str(root)], check=False)
        root.rmdir()


@pytest.fixture(scope="session")
def busybox_rootfs(bundles_root: Path) -> Path:
    rootfs = make_busybox_rootfs(bundles_root / "busybox")
    subprocess.run(
        ["gcc", "-static", "-O2", "-Wall", "-o", str(rootfs / "bin" / "probe"), str(PROBE_SOURCE)],
        check=True,
    )
    return rootfs


# -- cgroups ------------------------------------------------------------------------------


def _cgroup_dirs(path: str) -> list[Path]:
    """The directory of cgroup `path` (absolute) in every hierarchy mounted on this host."""
    dirs = []
    for mountpoint in CGROUP_ROOT.iterdir():
        if mountpoint.is_dir() and not mountpoint.is_symlink() and os.path.ismount(mountpoint):
            dirs.append(mountpoint / path.lstrip("/"))
    if os.path.ismount(CGROUP_ROOT) and (CGROUP_ROOT / "cgroup.procs").exists():
        dirs.append(CGROUP_ROOT / path.lstrip("/"))  # a pure v2 host
    return dirs


def _cgroup_leftovers(path: str) -> list[Path]:
    """Directories of cgroup `path` that still exist in any hierarchy."""
    return [d for d in _cgroup_dirs(path) if d.exists()]


class CgroupTracker:
    """The cgroupsPaths a test's bundles named, removed (processes killed first) at teardown."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def new(self) -> str:
        path = f"{CGROUP_PARENT}/{uuid.uuid4().hex}"
        self.paths.append(path)
        return path

    @staticmethod
    def leftovers(path: str) -> list[Path]:
        """Directories of cgroup `path` that still exist in any hierarchy."""
        return _cgroup_leftovers(path)

    def cleanup(self) -> None:
        for path in self.paths:
            for directory in _cgroup_leftovers(path):
                _remove_cgroup_tree(directory)
        for directory in _cgroup_dirs(CGROUP_PARENT):
            try:
                directory.rmdir()  # only once no other test uses it
            except OSError:
                pass


def _remove_cgroup_tree(top: Path) -> None:
    deadline = time.monotonic() + 5
    for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
        while True:
            procs = Path(directory, "cgroup.procs")
            pids = procs.read_text().split() if procs.exists() else []
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            freezer = Path(directory, "freezer.state")
            if freezer.exists():
                freezer.write_text("THAWED")  # a frozen process cannot die
            try:
                os.rmdir(directory)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


@pytest.fixture
def cgroups() -> Iterator[CgroupTracker]:
    tracker = CgroupTracker()
    try:
        yield tracker
    finally:
        tracker.cleanup()


# -- bundles ------------------------------------------------------------------------------


class Bundle:
    """An OCI bundle directory: rootfs/ and config.json written from `spec` by `save`."""

    def __init__(self, path: Path, spec: dict, cgroups: CgroupTracker):
        self.path = path
        self.spec = spec
        self._cgroups = cgroups

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def cgroup(self) -> str:
        return self.spec["linux"]["cgroupsPath"]

    def fresh_cgroup(self) -> str:
        """Point the spec at a new cgroup (so two runs of the bundle never share one)."""
        self.spec["linux"]["cgroupsPath"] = self._cgroups.new()
        self.save()
        return self.cgroup

    def save(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.spec, indent=1))


def _mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory` in our mount namespace, deepest first."""
    prefix = str(directory)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


BundleFactory = Callable[..., Bundle]


@pytest.fixture
def bundle(
    busybox_rootfs: Path, bundles_root: Path, cgroups: CgroupTracker
) -> Iterator[BundleFactory]:
    """`bundle(args, terminal=False, edit=None)`: a new bundle running `args` (a list)."""
    parent = Path(tempfile.mkdtemp(prefix="test-", dir=bundles_root))
    parent.chmod(0o711)
    made: list[Bundle] = []

    def make(
        args: list[str] | None = None,
        terminal: bool = False,
        edit: Callable[[dict], None] | None = None,
    ) -> Bundle:
        path = parent / f"bundle{len(made)}"
        path.mkdir()
        subprocess.run(["cp", "-a", str(busybox_rootfs), str(path / "rootfs")], check=True)
        spec = default_spec(args or ["sh"], terminal=terminal)
        spec["hostname"] = unique("dy-")
        made_bundle = Bundle(path, spec, cgroups)
        made_bundle.fresh_cgroup()
        if edit is not None:
            edit(spec)
        made_bundle.save()
        made.append(made_bundle)
        return made_bundle

    try:
        yield make
    finally:
        # Leaked mounts (a runtime bug the tests report on their own) must not make the
        # removal fail or, worse, let it recurse into a bind-mounted host directory.
        for point in _mounts_under(parent):
            subprocess.run(["umount", "-l", point], check=False)
        if not _mounts_under(parent):
            shutil.rmtree(parent, ignore_errors=True)


# -- runtimes -----------------------------------------------------------------------------


class OrphanReaper:
    """While a runtime test runs, this process is the subreaper of the containers it starts,
    and a thread reaps the containers' processes as soon as they die.

    Why: a container process outlives the runtime command that made it (create, run -d,
    exec -d) and goes to the nearest subreaper, else to pid 1. Some hosts' pid 1 reaps
    lazily (seconds), and a pid namespace's init cannot finish dying, nor `delete` return,
    before the namespace's other processes are reaped. Only containers' processes are reaped
    here (see `_of_a_container`): the subprocess module reaps its own children.
    """

    _PR_SET_CHILD_SUBREAPER = 36

    def __init__(self) -> None:
        import ctypes

        self._prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OrphanReaper:
        self._prctl(self._PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="orphan-reaper", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._prctl(self._PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._reap()  # what died while we stopped

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self._reap()

    def _reap(self) -> None:
        try:
            # Cheap: is any child a zombie? (WNOWAIT leaves it for whoever owns it.)
            if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
                return
        except ChildProcessError:
            return
        for pid in _zombie_children(str(os.getpid())):
            if _of_a_container(pid):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass


def _zombie_children(parent: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and fields[1] == parent:
            found.append(int(name))
    return found


def _of_a_container(pid: int) -> bool:
    """In a pid namespace below ours (more than one NSpid) or in a test cgroup: a container's
    process, never one the subprocess module started."""
    try:
        with open(f"/proc/{pid}/status") as f:
            nspid = next((line for line in f if line.startswith("NSpid:")), "")
        with open(f"/proc/{pid}/cgroup") as f:
            in_test_cgroup = f"{CGROUP_PARENT}/" in f.read()
    except OSError:
        return False
    return len(nspid.split()) > 2 or in_test_cgroup


class RuntimeCLI:
    """One runtime's command line with its own --root."""

    def __init__(self, name: str, binary: str, root: Path):
        self.name = name
        self.binary = binary
        self.root = root

    def __repr__(self) -> str:
        return f"RuntimeCLI({self.name})"

    def command(self, *args: object) -> list[str]:
        return [self.binary, "--root", str(self.root), *(str(a) for a in args)]

    def __call__(
        self, *args: object, input: str | None = None, timeout: float = 30, **kwargs
    ) -> subprocess.CompletedProcess:
        """Run a command; the result has text stdout and stderr, whatever the exit status.

        Output goes through files, not pipes: a detached container keeps the runtime's stdio,
        and reading a pipe until EOF would wait for the container to exit.
        """
        if input is None:
            kwargs.setdefault("stdin", subprocess.DEVNULL)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            result = subprocess.run(
                self.command(*args),
                input=None if input is None else input.encode(),
                stdout=out,
                stderr=err,
                timeout=timeout,
                **kwargs,
            )
            out.seek(0)
            err.seek(0)
            result.stdout = out.read().decode(errors="replace")
            result.stderr = err.read().decode(errors="replace")
        return result

    def ok(self, *args: object, **kwargs) -> str:
        """Run a command that must succeed; its stdout."""
        result = self(*args, **kwargs)
        assert result.returncode == 0, (
            f"{self.name} {' '.join(map(str, args))}: exit {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result.stdout

    def state(self, container_id: str) -> dict:
        return json.loads(self.ok("state", container_id))

    def status(self, container_id: str) -> str:
        return self.state(container_id)["status"]

    def wait_status(self, container_id: str, wanted: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.status(container_id)) != wanted:
            assert time.monotonic() < deadline, f"{self.name}: {container_id} still {status}"
            time.sleep(0.01)

    def container_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def delete_all(self) -> None:
        for container_id in self.container_ids():
            self("delete", "--force", container_id)


class Runtimes:
    """runc and dockyard-runtime side by side."""

    def __init__(self, runc: RuntimeCLI, dockyard: RuntimeCLI):
        self.runc = runc
        self.dockyard = dockyard
        self.all = [runc, dockyard]

    def by_name(self, name: str) -> RuntimeCLI:
        return {"runc": self.runc, "dockyard": self.dockyard}[name]

    def run_both(self, bundle: Bundle, *flags: object, **kwargs) -> dict[str, Run]:
        """`run` the bundle under each runtime in turn, each in a cgroup of its own."""
        results = {}
        for runtime in self.all:
            container_id = unique(f"{runtime.name}-")
            cgroup = bundle.fresh_cgroup()
            result = runtime("run", "--bundle", bundle.path, *flags, container_id, **kwargs)
            results[runtime.name] = Run(result, container_id, cgroup)
        return results


class Run:
    """One `run` of a bundle: its completed process and what differs between runs."""

    def __init__(self, result: subprocess.CompletedProcess, container_id: str, cgroup: str):
        self.returncode = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.id = container_id
        self.cgroup = cgroup

    def __repr__(self) -> str:
        return f"Run(exit {self.returncode}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def _runc_binary() -> str:
    runc = shutil.which("runc")
    if runc is None:
        pytest.fail("runc is not installed: the runtime tests compare against it (make install)")
    return runc


@pytest.fixture
def runtimes(tmp_path: Path, cgroups: CgroupTracker, bundle: BundleFactory) -> Iterator[Runtimes]:
    # Asking for `bundle` orders the teardowns: containers are deleted before their bundles.
    both = Runtimes(
        RuntimeCLI("runc", _runc_binary(), tmp_path / "runc-root"),
        RuntimeCLI("dockyard", str(DOCKYARD_RUNTIME), tmp_path / "dockyard-root"),
    )
    with OrphanReaper():
        try:
            yield both
        finally:
            for runtime in both.all:
                runtime.delete_all()


@pytest.fixture(params=["runc", "dockyard"])
def runtime(request: pytest.FixtureRequest, runtimes: Runtimes) -> RuntimeCLI:
    """Each runtime in turn: the same assertions hold for runc and for us."""
    return runtimes.by_name(request.param)
