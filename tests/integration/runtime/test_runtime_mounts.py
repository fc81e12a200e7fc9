"""Mount variants of the spec: what /proc/self/mountinfo shows must be runc's, line for line."""

from __future__ import annotations

import pytest
from runtime_helpers import normalize_mountinfo

pytestmark = pytest.mark.runc

SCRIPT = "cat /proc/self/mountinfo; echo ---; " + "; ".join(
    f"touch {path}/w 2>/dev/null && echo {path}: writable || echo {path}: read-only"
    for path in ("/", "/data", "/ro-bind", "/tmp")
)


def _mountinfo(run) -> list[str]:
    lines = run.stdout.split("---")[0].splitlines()
    return normalize_mountinfo(lines, {run.cgroup: "<cgroup>", run.id: "<id>"})


def _without_cgroupfs_line(lines: list[str]) -> list[str]:
    """Drop the /sys/fs/cgroup tmpfs line: known difference (read-only in ours, see
    test_vs_runc._accept_readonly_cgroup_tmpfs); every other line must be equal."""
    return [line for line in lines if " /sys/fs/cgroup " not in line]


def _compare(runs) -> list[str]:
    assert runs["dockyard"].returncode == runs["runc"].returncode == 0, runs
    ours, theirs = (_without_cgroupfs_line(_mountinfo(runs[n])) for n in ("dockyard", "runc"))
    assert ours == theirs
    assert runs["dockyard"].stdout.split("---")[1] == runs["runc"].stdout.split("---")[1]
    return ours


def _mounts(*entries):
    def edit(spec):
        spec["mounts"].extend(entries)

    return edit


def _bind(destination: str, source, options: list[str]) -> dict:
    return {"destination": destination, "type": "bind", "source": str(source), "options": options}


def test_tmpfs_and_bind_options(runtimes, bundle, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "file").write_text("x")
    edit = _mounts(
        {
            "destination": "/data",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=2m", "mode=1770", "uid=5", "gid=6"],
        },
        _bind("/ro-bind", source, ["rbind", "ro"]),
        _bind("/etc/file", source / "file", ["bind"]),
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "noexec"]},
    )
    runs = runtimes.run_both(bundle(["sh", "-c", SCRIPT], edit=edit))
    lines = _compare(runs)
    assert any(" /ro-bind ro," in line for line in lines)
    assert any(" /etc/file " in line for line in lines)
    assert "/ro-bind: read-only" in runs["dockyard"].stdout
    assert "/data: writable" in runs["dockyard"].stdout


@pytest.mark.parametrize("propagation", ["private", "rprivate", "slave", "rslave", "shared"])
def test_rootfs_propagation(runtimes, bundle, propagation):
    def edit(spec):
        spec["linux"]["rootfsPropagation"] = propagation

    runs = runtimes.run_both(bundle(["sh", "-c", SCRIPT], edit=edit))
    _compare(runs)


def test_cgroup_namespace(runtimes, bundle):
    def edit(spec):
        spec["linux"]["namespaces"].append({"type": "cgroup"})

    script = "cat /proc/self/cgroup; echo ---; cat /proc/self/mountinfo"
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=edit))
    cgroup_lines = {n: r.stdout.split("---")[0].splitlines() for n, r in runs.items()}
    assert cgroup_lines["dockyard"] == cgroup_lines["runc"]
    assert all(line.endswith(":/") for line in cgroup_lines["dockyard"])
    mountinfo = {
        n: _without_cgroupfs_line(
            normalize_mountinfo(r.stdout.split("---")[1].splitlines()[1:], {r.cgroup: "<cgroup>"})
        )
        for n, r in runs.items()
    }
    assert mountinfo["dockyard"] == mountinfo["runc"]


def test_no_dev_mount_binds_the_hosts_devices(runtimes, bundle):
    """Without a /dev mount runc still creates the default nodes in the rootfs's /dev."""

    def edit(spec):
        spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/dev")]

    script = "cd /dev && stat -c '%n %F %a %t %T %N' * | sort"
    runs = runtimes.run_both(bundle(["sh", "-c", script], edit=edit))
    assert runs["dockyard"].stdout == runs["runc"].stdout
    assert "null character special file 666 1 3" in runs["dockyard"].stdout


def test_domainname(runtimes, bundle):
    """Known difference: runc 1.1 ignores the spec's domainname (runc 1.2 sets it); we set
    it. The hostname and the UTS namespace are runc's."""

    def edit(spec):
        spec["domainname"] = "example.test"

    made = bundle(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"], edit=edit)
    runs = runtimes.run_both(made)
    assert runs["runc"].stdout == f"{made.spec['hostname']}\n(none)\n"
    assert runs["dockyard"].stdout == f"{made.spec['hostname']}\nexample.test\n"
