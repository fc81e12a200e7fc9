"""Seccomp filters loaded for real, each in a forked child (a filter cannot be unloaded).

The child runs one check function and reports through its exit code, with the traceback on a
pipe; it always leaves through os._exit so no pytest machinery runs twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable

import pytest

from dockyard.runtime.capabilities import DEFAULT_CAPABILITIES
from dockyard.runtime.seccomp import (
    SeccompFilter,
    compile_filter,
    default_spec,
    spec_from_profile,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading without NNP needs root")

DEFAULT_CAPS = DEFAULT_CAPABILITIES

# Syscall numbers the tests call raw (no glibc wrapper, or a wrapper that would hide the call).
_NR = {
    "x86_64": {
        "personality": 135,
        "keyctl": 250,
        "ptrace": 101,
        "clone": 56,
        "clone3": 435,
        "getppid": 110,
    },
    "aarch64": {
        "personality": 92,
        "keyctl": 219,
        "ptrace": 117,
        "clone": 220,
        "clone3": 435,
        "getppid": 173,
    },
}.get(os.uname().machine)
if _NR is None:
    pytest.skip("syscall numbers only written down for x86_64 and aarch64", allow_module_level=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_SESSION_KEYRING = -3
PTRACE_PEEKDATA = 2

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def sys_call(name: str, *args: int) -> tuple[int, int]:
    """Raw syscall: (return value, errno or 0)."""
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(_NR[name]), *(ctypes.c_ulong(a & (2**64 - 1)) for a in args))
    return ret, (ctypes.get_errno() if ret == -1 else 0)


def errno_of(ret: int) -> int:
    return ctypes.get_errno() if ret == -1 else 0


def in_child(check: Callable[[], None], expect_signal: int | None = None) -> None:
    """Run `check` in a forked child; fail with the child's traceback unless it exits 0."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(r)
            check()
            code = 0
        except BaseException:
            with contextlib.suppress(BaseException):
                os.write(w, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        report = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if expect_signal is not None:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == expect_signal, (status, report)
    else:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report or f"status {status}"


@pytest.fixture(scope="module")
def default_filter() -> SeccompFilter:
    # Compiled once in the parent (as the runtime does before pivot_root); each child loads
    # its own copy of the context.
    f = compile_filter(default_spec(DEFAULT_CAPS))
    yield f
    f.release()


def private_mount_ns() -> None:
    # So a mount that wrongly succeeds stays in the child's namespace.
    assert libc.unshare(CLONE_NEWNS) == 0, os.strerror(ctypes.get_errno())
    assert libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0


def status_field(name: str) -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/self/status")


def test_default_denies_unshare_and_mount(default_filter):
    def check():
        private_mount_ns()  # also shows unshare works before the filter
        default_filter.load()
        assert errno_of(libc.unshare(CLONE_NEWNS)) == errno.EPERM
        with tempfile.TemporaryDirectory() as d:
            ret = libc.mount(b"tmpfs", d.encode(), b"tmpfs", 0, None)
            assert errno_of(ret) == errno.EPERM
        assert errno_of(libc.umount2(b"/proc", 2)) == errno.EPERM

    in_child(check)


def test_default_clone_argument_filter(default_filter):
    def check():
        default_filter.load()
        ret, err = sys_call("clone", CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0)
        if ret == 0:  # filter failed and we are a new child: leave at once
            os._exit(0)
        if ret > 0:
            os.waitpid(ret, 0)
        assert (ret, err) == (-1, errno.EPERM)
        # clone3 cannot be argument-filtered: ENOSYS so libc falls back to clone
        assert sys_call("clone3", 0, 0) == (-1, errno.ENOSYS)
        pid = os.fork()  # a plain fork is allowed
        if pid == 0:
            os._exit(7)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7

    in_child(check)


def test_default_personality_values(default_filter):
    def check():
        default_filter.load()
        ret, err = sys_call("personality", 0xFFFFFFFF)  # query: in the allowed list
        assert ret >= 0 and err == 0, err
        assert sys_call("personality", 0x0040000) == (-1, errno.EPERM)  # ADDR_LIMIT_3GB: not
        assert sys_call("personality", 0)[1] == 0

    in_child(check)


def test_default_denies_keyctl(default_filter):
    def check():
        assert sys_call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1)[1] == 0
        default_filter.load()
        assert sys_call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1) == (
            -1,
            errno.EPERM,
        )

    in_child(check)


@pytest.mark.parametrize(("kernel", "expected"), [(None, errno.ESRCH), ((4, 7), errno.EPERM)])
def test_ptrace_depends_on_min_kernel(kernel, expected):
    # PEEKDATA on a process we do not trace: ESRCH from the kernel when ptrace is allowed,
    # EPERM from the filter when the 4.8 rule was dropped.
    f = compile_filter(default_spec(DEFAULT_CAPS, kernel_version=kernel))
    parent = os.getpid()

    def check():
        f.load()
        assert sys_call("ptrace", PTRACE_PEEKDATA, parent, 0, 0) == (-1, expected)

    try:
        in_child(check)
    finally:
        f.release()


def test_default_keeps_ordinary_calls_and_status(default_filter):
    def check():
        assert status_field("Seccomp") == "0"
        default_filter.load()
        assert status_field("Seccomp") == "2"
        assert status_field("NoNewPrivs") == "0"  # CTL_NNP=0: left to the caller
        assert os.getpid() > 1
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "f")
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            assert os.write(fd, b"hello") == 5
            os.close(fd)
            with open(path, "rb") as fh:
                assert fh.read() == b"hello"

    in_child(check)


def test_custom_errno_ret():
    # Docker form without archMap: native arch only.
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},  # errnoRet defaults to EPERM
        ],
    }
    f = compile_filter(spec_from_profile(profile, DEFAULT_CAPS))

    def check():
        f.load()
        with pytest.raises(OSError) as e:
            os.getcwd()
        assert e.value.errno == errno.ENOSYS
        assert sys_call("getppid") == (-1, errno.EPERM)  # glibc's getppid() sets no errno
        assert os.getpid() > 1

    try:
        in_child(check)
    finally:
        f.release()


def test_same_index_comparisons_are_ored_different_indexes_anded():
    spec = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 38,
                "args": [
                    {"index": 0, "value": 0x0040000, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 0x0080000, "op": "SCMP_CMP_EQ"},
                ],
            },
            {
                "names": ["getpriority"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 38,
                "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},  # PRIO_PROCESS
                    {"index": 1, "value": 12345, "op": "SCMP_CMP_EQ"},
                ],
            },
        ],
    }
    f = compile_filter(spec)

    def check():
        f.load()
        assert sys_call("personality", 0x0040000) == (-1, errno.ENOSYS)
        assert sys_call("personality", 0x0080000) == (-1, errno.ENOSYS)
        assert sys_call("personality", 0xFFFFFFFF)[1] == 0
        with pytest.raises(OSError) as e:
            os.getpriority(os.PRIO_PROCESS, 12345)
        assert e.value.errno == errno.ENOSYS
        os.getpriority(os.PRIO_PROCESS, 0)  # only one of the two comparisons holds
        os.getpriority(os.PRIO_PGRP, 0)

    try:
        in_child(check)
    finally:
        f.release()


@pytest.mark.parametrize(
    ("action", "sig"), [("SCMP_ACT_KILL_PROCESS", signal.SIGSYS), ("SCMP_ACT_TRAP", signal.SIGSYS)]
)
def test_kill_and_trap_actions(action, sig):
    f = compile_filter(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": action}]}
    )

    def check():
        signal.signal(signal.SIGSYS, signal.SIG_DFL)
        f.load()
        libc.getppid()
        raise AssertionError("getppid returned")

    try:
        in_child(check, expect_signal=sig)
    finally:
        f.release()


def test_log_action_and_flags_allow_the_call():
    f = compile_filter(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}],
        }
    )
    parent = os.getpid()

    def check():
        f.load()
        assert os.getppid() == parent
        assert status_field("Seccomp") == "2"

    try:
        in_child(check)
    finally:
        f.release()


def test_load_after_chroot_needs_no_files(default_filter, tmp_path):
    # The runtime compiles before pivot_root and loads after it: simulate with a chroot into
    # an empty directory, with imports made impossible.
    empty = tmp_path / "root"
    empty.mkdir()

    def check():
        os.chroot(empty)
        os.chdir("/")
        sys.path[:] = []
        sys.meta_path[:] = []
        default_filter.load()
        assert sys_call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1) == (
            -1,
            errno.EPERM,
        )

    in_child(check)


def test_cached_program_is_the_same_filter(tmp_path):
    """With a cache directory the program is compiled once, kept as BPF, and the cached copy
    enforces exactly what libseccomp's own load does."""
    spec = default_spec(DEFAULT_CAPS)
    first = compile_filter(spec, str(tmp_path))
    cached = list(tmp_path.glob("*.bpf"))
    assert len(cached) == 1
    fresh = compile_filter(spec)
    try:
        assert fresh.export() == cached[0].read_bytes()
    finally:
        fresh.release()
    second = compile_filter(spec, str(tmp_path))
    assert type(second).__name__ == "BpfFilter"

    def check():
        private_mount_ns()
        second.load()
        assert status_field("Seccomp") == "2"
        assert errno_of(libc.unshare(CLONE_NEWNS)) == errno.EPERM
        assert errno_of(libc.umount2(b"/proc", 2)) == errno.EPERM
        assert os.getpid() > 0  # ordinary calls still work

    in_child(check)
    first.release()
    other = dict(spec, defaultErrnoRet=38)  # a different spec gets a program of its own
    compile_filter(other, str(tmp_path)).release()
    assert len(list(tmp_path.glob("*.bpf"))) == 2
