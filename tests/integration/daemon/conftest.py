"""A real dockyard daemon per test module, driven by the docker CLI, docker-py and dockyard.

`daemon` (module scope) starts `dockyard daemon` with its own data root, exec root, socket,
bridge name and cgroup parent, with a busybox image already made (busybox:latest). At
teardown it stops the daemon and collects whatever is left even when tests failed: shims,
container processes, mounts under the data root, cgroups.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

from dockyard.image.bootstrap import bootstrap
from dockyard.image.store import ImageStore
from dockyard.storage.content import ContentStore
from dockyard.storage.layers import LayerStore
from dockyard.store import Database

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class Daemon:
    def __init__(self, root: Path, extra_args: list[str] | None = None):
        self.root = root
        self.data_root = root / "data"
        self.exec_root = root / "run"
        self.socket = root / "d.sock"
        self.host = f"unix://{self.socket}"
        self.suffix = uuid.uuid4().hex[:8]
        self.bridge = f"dy{self.suffix}"
        self.cgroup_parent = f"dockyard-test-{self.suffix}"
        self.log = root / "daemon.log"
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for the docker and dockyard CLIs pointed at this daemon."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.host
        env["DOCKYARD_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")
        return env

    def write_config(self) -> Path:
        path = self.root / "daemon.json"
        path.write_text(json.dumps({"cgroup-parent": self.cgroup_parent}))
        return path

    def start(self) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        command = [
            DOCKYARD,
            "daemon",
            "--data-root",
            str(self.data_root),
            "--exec-root",
            str(self.exec_root),
            "-H",
            self.host,
            "--bridge",
            self.bridge,
            "--config-file",
            str(self.write_config()),
            *self.extra_args,
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()[-3000:]}")
            if self.socket.exists() and self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not answer: {self.log.read_text()[-3000:]}")

    def ping(self) -> bool:
        import socket

        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                return b"200 OK" in sock.recv(1024)
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, version="1.41", timeout=60)

    def docker(
        self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess:
        """The real docker CLI against this daemon."""
        return subprocess.run(
            ["docker", *args],
            env=self.env,
            input=input,
            capture_output=True,
            timeout=timeout,
            check=check,
        )

    def dockyard(
        self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess:
        """The dockyard CLI against this daemon."""
        return subprocess.run(
            [DOCKYARD, *args],
            env=self.env,
            input=input,
            capture_output=True,
            timeout=timeout,
            check=check,
        )

    def cleanup(self) -> None:
        """Collect everything the daemon and its containers left, even after failures."""
        self.stop()
        for shim_json in self.data_root.glob("containers/*/shim.json"):
            _kill_shim_and_container(shim_json.parent)
        _unmount_under(self.root)
        for hierarchy in CGROUP_ROOT.iterdir():
            _remove_cgroup_tree(hierarchy / self.cgroup_parent)
        # A daemon killed with containers running leaves its bridge and nft table.
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)
        table = f"dockyard_{self.bridge}"
        subprocess.run(["nft", "delete", "table", "ip", table], check=False, capture_output=True)


def _kill_shim_and_container(directory: Path) -> None:
    for pid_file in ("init.pid",):
        try:
            pid = int((directory / pid_file).read_text())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
    result = subprocess.run(
        ["pgrep", "-f", f"dockyard-shim --dir {directory} "], capture_output=True, text=True
    )
    for pid in result.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def _unmount_under(root: Path) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(str(root))), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _remove_cgroup_tree(path: Path) -> None:
    if not path.is_dir():
        return
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir():
            _kill_cgroup(child)
            try:
                child.rmdir()
            except OSError:
                pass
    _kill_cgroup(path)
    for _ in range(50):
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.02)


def _kill_cgroup(path: Path) -> None:
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def make_busybox_image(data_root: Path) -> None:
    """busybox:latest in the data root, before the daemon opens it."""
    data_root.mkdir(parents=True, exist_ok=True)
    db = Database(data_root)
    try:
        content = ContentStore(data_root / "content")
        layers = LayerStore(data_root / "layers", content)
        scratch = data_root / "tmp"
        scratch.mkdir(exist_ok=True)
        bootstrap(ImageStore(db, content, layers), "busybox", scratch)
    finally:
        db.close()


def new_daemon(extra_args: list[str] | None = None) -> Daemon:
    root = Path(tempfile.mkdtemp(prefix="dy-"))  # short: socket paths hold 108 bytes
    os.chmod(root, 0o711)
    daemon = Daemon(root, extra_args)
    make_busybox_image(daemon.data_root)
    return daemon


@contextmanager
def running_daemon(extra_args: list[str] | None = None) -> Iterator[Daemon]:
    """A started daemon with `extra_args` on its command line, collected afterwards even when
    the test failed."""
    instance = new_daemon(extra_args)
    try:
        instance.start()
        yield instance
    finally:
        instance.cleanup()
        subprocess.run(["rm", "-rf", str(instance.root)], check=False)


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with running_daemon() as instance:
        yield instance


@pytest.fixture
def fresh_daemon() -> Iterator[Daemon]:
    """A daemon of the test's own, for tests that kill or restart it."""
    with running_daemon() as instance:
        yield instance
