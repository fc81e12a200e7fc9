"""The OCI runtime behind a container: dockyard's own in-process, or any runc-compatible binary.

dockyard-runtime is called in-process (no extra interpreter start per container); runc and
crun through their command line, as containerd's shim does.
"""

from __future__ import annotations

import os
import subprocess

IN_PROCESS = "dockyard-runtime"


class RuntimeFailure(Exception):
    pass


class InProcessRuntime:
    def __init__(self, root: str):
        self.name = IN_PROCESS
        self.root = root
        from dockyard.runtime.container import Runtime

        self._runtime = Runtime(root)

    def create(self, container_id, bundle, stdio, console_fd, console_path, pid_file) -> int:
        from dockyard.runtime.container import CreateOptions
        from dockyard.runtime.errors import OCIError

        # The container inherits our fds 0-2: point them at its stdio for the fork, then back.
        saved = [os.dup(fd) for fd in (0, 1, 2)]
        try:
            for fd, target in zip((0, 1, 2), stdio, strict=True):
                os.dup2(target, fd)
            options = CreateOptions(pid_file=pid_file, console_fd=console_fd)
            record = self._runtime.create(container_id, bundle, options)
        except OCIError as error:
            raise RuntimeFailure(str(error)) from None
        finally:
            for fd, original in zip((0, 1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)
        return record.pid

    def start(self, container_id: str) -> None:
        from dockyard.runtime.errors import OCIError

        try:
            self._runtime.start(container_id)
        except OCIError as error:
            raise RuntimeFailure(str(error)) from None

    def kill(self, container_id: str, signum: int, all_processes: bool = False) -> None:
        from dockyard.runtime.errors import OCIError

        try:
            self._runtime.kill(container_id, signum, all_processes)
        except OCIError as error:
            raise RuntimeFailure(str(error)) from None

    def delete(self, container_id: str, force: bool = False) -> None:
        from dockyard.runtime.errors import OCIError

        try:
            self._runtime.delete(container_id, force)
        except OCIError as error:
            raise RuntimeFailure(str(error)) from None


class CommandRuntime:
    """runc, crun, or dockyard-runtime as a separate program."""

    def __init__(self, name: str, root: str):
        self.name = name
        self.root = root

    def _run(self, *args: str, stdio: tuple[int, int, int] | None = None) -> None:
        command = [self.name, "--root", self.root, *args]
        if stdio is None:
            result = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL)
            error = result.stderr
        else:
            # The container inherits the runtime's stdio; errors come back through --log.
            log = os.path.join(self.root, f"create-{os.getpid()}.log")
            result = subprocess.run(
                [*command[:3], "--log", log, *command[3:]],
                stdin=stdio[0],
                stdout=stdio[1],
                stderr=stdio[2],
            )
            error = b""
            if os.path.exists(log):
                with open(log, "rb") as f:
                    error = f.read()
                os.unlink(log)
        if result.returncode != 0:
            raise RuntimeFailure(error.decode(errors="replace").strip() or f"{args[0]} failed")

    def create(self, container_id, bundle, stdio, console_fd, console_path, pid_file) -> int:
        args = ["create", "--bundle", bundle, "--pid-file", pid_file]
        if console_path:
            args += ["--console-socket", console_path]
        os.makedirs(self.root, exist_ok=True)
        self._run(*args, container_id, stdio=stdio)
        with open(pid_file) as f:
            return int(f.read())

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def kill(self, container_id: str, signum: int, all_processes: bool = False) -> None:
        self._run("kill", *(["--all"] if all_processes else []), container_id, str(signum))

    def delete(self, container_id: str, force: bool = False) -> None:
        self._run("delete", *(["--force"] if force else []), container_id)


OCIRuntime = InProcessRuntime | CommandRuntime


def runtime_for(name: str, root: str) -> OCIRuntime:
    if name == IN_PROCESS:
        return InProcessRuntime(root)
    return CommandRuntime(name, root)
