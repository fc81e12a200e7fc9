"""The last steps before the user's program: rlimits, identity, capabilities, seccomp, exec.

Shared by a container's init and by `exec`. Everything that touches the host's files (the
seccomp library, capability numbers) is resolved in `ProcessSetup.__init__`, before
pivot_root; `finalize` then only makes system calls.
"""

from __future__ import annotations

import os
import resource
import stat

from dockyard.runtime import linux
from dockyard.runtime.capabilities import CapabilitySets
from dockyard.runtime.errors import OCIError

# Numbering from <asm-generic/resource.h>; Python's resource module lacks a few of them.
RLIMITS = {
    name: number
    for number, name in enumerate(
        [
            "RLIMIT_CPU",
            "RLIMIT_FSIZE",
            "RLIMIT_DATA",
            "RLIMIT_STACK",
            "RLIMIT_CORE",
            "RLIMIT_RSS",
            "RLIMIT_NPROC",
            "RLIMIT_NOFILE",
            "RLIMIT_MEMLOCK",
            "RLIMIT_AS",
            "RLIMIT_LOCKS",
            "RLIMIT_SIGPENDING",
            "RLIMIT_MSGQUEUE",
            "RLIMIT_NICE",
            "RLIMIT_RTPRIO",
            "RLIMIT_RTTIME",
        ]
    )
}


class ProcessSetup:
    def __init__(self, process: dict, seccomp: dict | None, seccomp_cache: str | None = None):
        self.args: list[str] = process.get("args") or []
        if not self.args:
            raise OCIError("args must not be empty")
        self.env: list[str] = process.get("env") or []
        self.cwd: str = process.get("cwd") or "/"
        if not self.cwd.startswith("/"):
            raise OCIError(f"cwd {self.cwd!r} is not an absolute path")
        user = process.get("user") or {}
        self.uid: int = user.get("uid", 0)
        self.gid: int = user.get("gid", 0)
        self.groups: list[int] = user.get("additionalGids") or []
        self.umask: int | None = user.get("umask")
        self.no_new_privileges: bool = bool(process.get("noNewPrivileges"))
        self.rlimits = [_rlimit(entry) for entry in process.get("rlimits") or []]
        self.caps = CapabilitySets(process.get("capabilities"))
        self.seccomp = None
        if seccomp:
            from dockyard.runtime import seccomp as seccomp_module

            self.seccomp = seccomp_module.compile_filter(seccomp, seccomp_cache)

    def env_dict(self) -> dict[str, str]:
        env = {}
        for entry in self.env:
            key, _, value = entry.partition("=")
            env[key] = value
        return env

    def default_home(self) -> None:
        """Set HOME from the container's /etc/passwd when the spec leaves it out, as runc does
        ("/" when the user has no entry). Call it inside the container's root."""
        if any(entry.startswith("HOME=") for entry in self.env):
            return
        home = "/"
        text = _read_regular_file("/etc/passwd")
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) >= 6 and fields[2] == str(self.uid):
                home = fields[5]
                break
        self.env = [*self.env, f"HOME={home}"]

    def resolve_executable(self) -> str:
        """The program to exec, looked up in the spec's PATH as runc does before start."""
        name = self.args[0]
        if "/" in name:
            path = name if name.startswith("/") else os.path.join(self.cwd, name)
            if not os.path.exists(path):
                raise OCIError(f'exec: "{name}": stat {name}: no such file or directory')
            if os.path.isdir(path) or not os.access(path, os.X_OK):
                raise OCIError(f'exec: "{name}": permission denied')  # as runc, before start
            return path
        for directory in self.env_dict().get("PATH", "").split(":"):
            candidate = os.path.join(directory or ".", name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        raise OCIError(f'exec: "{name}": executable file not found in $PATH')

    def set_rlimits(self) -> None:
        for name, number, soft, hard in self.rlimits:
            try:
                resource.setrlimit(number, (soft, hard))
            except (ValueError, PermissionError, OSError) as error:
                current = resource.getrlimit(number)[1]
                raise OCIError(
                    f"error setting rlimit {name} to soft={soft} hard={hard}: {error}; "
                    f"the hard limit here is {current} and raising it needs "
                    "CAP_SYS_RESOURCE, which this host does not grant"
                ) from None

    def finalize(self) -> None:
        """Become the configured user with the configured privileges (in this order).
        The rlimits are already set (`set_rlimits`, before the process reports ready)."""
        if self.seccomp is not None and not self.no_new_privileges:
            # Without no_new_privs the filter needs CAP_SYS_ADMIN: load it while we have it.
            self.seccomp.load()
        self.caps.drop_bounding()
        linux.prctl(linux.PR_SET_KEEPCAPS, 1)
        os.setgroups(self.groups)
        os.setresgid(self.gid, self.gid, self.gid)
        os.setresuid(self.uid, self.uid, self.uid)
        linux.prctl(linux.PR_SET_KEEPCAPS, 0)
        self.caps.apply()
        if self.umask is not None:
            os.umask(self.umask)
        try:
            os.chdir(self.cwd)
        except OSError as error:
            raise OCIError(
                f"chdir to cwd ({self.cwd!r}) set in config.json failed: {error}"
            ) from None
        if self.no_new_privileges:
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        if self.seccomp is not None and self.no_new_privileges:
            self.seccomp.load()

    def exec(self, path: str) -> None:
        os.execve(path, self.args, self.env_dict())


def _read_regular_file(path: str, limit: int = 1 << 20) -> str:
    """The text of `path` if it is a regular file, else "": the image owns it, and a FIFO or
    a device there must not block or feed the runtime."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, limit).decode(errors="replace")
    finally:
        os.close(fd)


def _rlimit(entry: dict) -> tuple[str, int, int, int]:
    name = entry.get("type", "")
    number = RLIMITS.get(name)
    if number is None:
        raise OCIError(f"unknown rlimit type {name!r}")
    return name, number, _limit(entry.get("soft")), _limit(entry.get("hard"))


def _limit(value: int | None) -> int:
    # The spec writes "unlimited" as 2^64-1; Python spells it RLIM_INFINITY.
    if value is None or value >= 2**63 - 1 or value < 0:
        return resource.RLIM_INFINITY
    return value
