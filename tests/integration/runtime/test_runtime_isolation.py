"""What a default container must not be able to do, under both runtimes alike.

Each probe prints "<call>: ok" or "<call>: <ERRNO>"; the same script runs under runc and
dockyard-runtime, the outputs must be equal and every call must fail with the errno below.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

pytestmark = pytest.mark.runc

# label -> (command in the container, what it must print)
DENIED = {
    "mount": ("probe mount /tmp", "mount: EPERM"),
    "umount-proc": ("probe umount /proc", "umount: EPERM"),
    "unshare-user": ("probe unshare user", "unshare: EPERM"),
    "unshare-mnt": ("probe unshare mnt", "unshare: EPERM"),
    "unshare-net": ("probe unshare net", "unshare: EPERM"),
    "pivot_root": ("probe pivot_root", "pivot_root: EPERM"),
    "init_module": ("probe init_module", "init_module: EPERM\nfinit_module: EPERM"),
    "sethostname": ("probe sethostname evil-host", "sethostname: EPERM"),
    "proc-sys-write": (
        "probe write /proc/sys/kernel/hostname evil-host",
        "open: EROFS",
    ),
}


def _script(checks: dict[str, tuple[str, str]]) -> str:
    return "; ".join(f"echo '== {label}'; {command}" for label, (command, _) in checks.items())


def _outcomes(stdout: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    label = None
    for line in stdout.splitlines():
        if line.startswith("== "):
            label = line[3:]
            out[label] = []
        elif label is not None:
            out[label].append(line)
    return {label: "\n".join(lines) for label, lines in out.items()}


def test_default_container_cannot_escape(runtimes, bundle):
    hostname = socket.gethostname()
    host_process = subprocess.Popen(["sleep", "60"])
    try:
        checks = dict(DENIED)
        # A host pid means nothing in the container's pid namespace, and no CAP_SYS_PTRACE.
        checks["ptrace-host"] = (f"probe ptrace {host_process.pid}", "ptrace: ESRCH")
        checks["kcore"] = ("probe read /proc/kcore", "")  # checked below: absent or empty
        checks["sysrq"] = ("probe write /proc/sysrq-trigger b", "")  # absent or read-only
        runs = runtimes.run_both(bundle(["sh", "-c", _script(checks)]))
        with open(f"/proc/{host_process.pid}/status") as f:
            assert "TracerPid:\t0\n" in f.read()
    finally:
        host_process.kill()
        host_process.wait()
    assert socket.gethostname() == hostname
    outcomes = {name: _outcomes(run.stdout) for name, run in runs.items()}
    assert outcomes["dockyard"] == outcomes["runc"]
    ours = outcomes["dockyard"]
    assert ours.pop("kcore") in ("open: ENOENT", "read: 0 bytes")
    assert ours.pop("sysrq") in ("open: ENOENT", "open: EROFS")
    assert ours == {label: expected for label, (_, expected) in checks.items() if expected}


@pytest.mark.parametrize(
    ("drop", "expected"), [(False, "rawsocket: ok"), (True, "rawsocket: EPERM")]
)
def test_raw_sockets_need_net_raw(runtimes, bundle, drop, expected):
    def without_net_raw(spec):
        if drop:
            for key, names in spec["process"]["capabilities"].items():
                spec["process"]["capabilities"][key] = [n for n in names if n != "CAP_NET_RAW"]

    runs = runtimes.run_both(bundle(["probe", "rawsocket"], edit=without_net_raw))
    assert runs["dockyard"].stdout == runs["runc"].stdout == f"{expected}\n"
    assert runs["dockyard"].returncode == runs["runc"].returncode


def test_capabilities_alone_deny_without_seccomp(runtimes, bundle):
    """With no seccomp filter the missing capabilities still stop the same calls."""

    def no_seccomp(spec):
        del spec["linux"]["seccomp"]

    checks = {k: DENIED[k] for k in ("mount", "umount-proc", "unshare-mnt", "sethostname")}
    runs = runtimes.run_both(bundle(["sh", "-c", _script(checks)], edit=no_seccomp))
    outcomes = {name: _outcomes(run.stdout) for name, run in runs.items()}
    assert outcomes["dockyard"] == outcomes["runc"]
    assert outcomes["dockyard"] == {label: expected for label, (_, expected) in checks.items()}


def test_namespaces_are_private(runtimes, bundle):
    """Every namespace of the default spec differs from the host's; user and cgroup do not."""
    script = "for ns in pid net ipc uts mnt user cgroup; do readlink /proc/1/ns/$ns; done"
    runs = runtimes.run_both(bundle(["sh", "-c", script]))
    kinds = ("pid", "net", "ipc", "uts", "mnt", "user", "cgroup")
    host = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in kinds}
    for name, run in runs.items():
        seen = dict(zip(host, run.stdout.split(), strict=True))
        for kind in ("pid", "net", "ipc", "uts", "mnt"):
            assert seen[kind] != host[kind], (name, kind)
        for kind in ("user", "cgroup"):
            assert seen[kind] == host[kind], (name, kind)
