"""Building the container's root filesystem inside its new mount namespace.

Runs in the container's init before pivot_root: the spec's mounts in order, /dev with its
default devices and links, then pivot_root (never chroot). After pivot_root: masked and
read-only paths, a read-only root, the console.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import namedtuple

from dockyard.runtime import linux

# Mount options that are flags (set or cleared); anything else goes to the filesystem as data.
_SET_FLAGS = {
    "ro": linux.MS_RDONLY,
    "nosuid": linux.MS_NOSUID,
    "nodev": linux.MS_NODEV,
    "noexec": linux.MS_NOEXEC,
    "sync": linux.MS_SYNCHRONOUS,
    "remount": linux.MS_REMOUNT,
    "mand": linux.MS_MANDLOCK,
    "dirsync": linux.MS_DIRSYNC,
    "noatime": linux.MS_NOATIME,
    "nodiratime": linux.MS_NODIRATIME,
    "bind": linux.MS_BIND,
    "rbind": linux.MS_BIND | linux.MS_REC,
    "relatime": linux.MS_RELATIME,
    "strictatime": linux.MS_STRICTATIME,
    "nosymfollow": linux.MS_NOSYMFOLLOW,
    "lazytime": linux.MS_LAZYTIME,
}
_CLEAR_FLAGS = {
    "rw": linux.MS_RDONLY,
    "suid": linux.MS_NOSUID,
    "dev": linux.MS_NODEV,
    "exec": linux.MS_NOEXEC,
    "async": linux.MS_SYNCHRONOUS,
    "nomand": linux.MS_MANDLOCK,
    "atime": linux.MS_NOATIME,
    "diratime": linux.MS_NODIRATIME,
    "norelatime": linux.MS_RELATIME,
    "nostrictatime": linux.MS_STRICTATIME,
    "symfollow": linux.MS_NOSYMFOLLOW,
}
_PROPAGATION = {
    "private": linux.MS_PRIVATE,
    "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "shared": linux.MS_SHARED,
    "rshared": linux.MS_SHARED | linux.MS_REC,
    "slave": linux.MS_SLAVE,
    "rslave": linux.MS_SLAVE | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE,
    "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}

# (name, type, major, minor): what every container's /dev holds, in runc's order (visible in
# mountinfo when a user namespace makes them bind mounts).
DEFAULT_DEVICES = [
    ("/dev/null", "c", 1, 3),
    ("/dev/random", "c", 1, 8),
    ("/dev/full", "c", 1, 7),
    ("/dev/tty", "c", 5, 0),
    ("/dev/zero", "c", 1, 5),
    ("/dev/urandom", "c", 1, 9),
]
_DEV_LINKS = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
]
_MAX_SYMLINKS = 255


# Parsed `options` of a spec mount: flags for mount(2), propagation changes, filesystem data.
MountOptions = namedtuple("MountOptions", "flags propagation data")


def parse_options(options: list[str]) -> MountOptions:
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for option in options:
        if option in _SET_FLAGS:
            flags |= _SET_FLAGS[option]
        elif option in _CLEAR_FLAGS:
            flags &= ~_CLEAR_FLAGS[option]
        elif option in _PROPAGATION:
            propagation.append(_PROPAGATION[option])
        elif option != "defaults":
            data.append(option)
    return MountOptions(flags, propagation, ",".join(data))


def secure_join(root: str, unsafe: str) -> str:
    """`unsafe` resolved inside `root`: symlinks are followed as if `root` were `/`.

    Whatever the rootfs holds (absolute links, `..` chains), the result stays under `root`,
    so a hostile image cannot make the runtime mount over a host path.
    """
    parts = [p for p in unsafe.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, f"too many symlinks resolving {unsafe} in {root}")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p] + parts
    return os.path.join(root, *resolved)


def _secure_target(root: str, unsafe: str) -> str:
    """Like secure_join, but the last component is not followed: a node or link is created
    (or replaced) there, even when the rootfs already holds a symlink by that name."""
    parent, name = os.path.split(unsafe.rstrip("/"))
    return os.path.join(secure_join(root, parent), name)


def _ensure(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))


def _propagate(target: str, propagation: list[int]) -> None:
    for flag in propagation:
        linux.mount(None, target, None, flag, None)


# One cgroup hierarchy as the container sees it under /sys/fs/cgroup:
#   name      directory under /sys/fs/cgroup ("memory", "cpu,cpuacct", "" for a v2 root)
#   host_dir  the container's cgroup directory on the host, bound when there is no cgroupns
#   fstype    "cgroup" or "cgroup2"
#   data      controllers to mount in a cgroupns ("memory", "none,name=systemd")
CgroupMount = namedtuple("CgroupMount", "name host_dir fstype data")


class RootfsBuilder:
    """Runs in the container's mount namespace, before pivot_root."""

    def __init__(
        self,
        rootfs: str,
        bundle: str,
        cgroups: list[CgroupMount],
        cgroupns: bool,
        userns: bool,
    ):
        self.rootfs = rootfs
        self.bundle = bundle
        self.cgroups = cgroups
        self.cgroupns = cgroupns
        self.userns = userns

    def prepare(self, propagation: str | None) -> None:
        """Stop our mounts leaking to the host, then make the rootfs a mount point.

        As runc: "/" gets the spec's rootfsPropagation (rslave by default), and the mount
        holding the rootfs is made private if it is shared, so the bind below does not
        propagate anywhere and pivot_root accepts it (it refuses a shared parent).
        """
        linux.mount(None, "/", None, _root_propagation(propagation), None)
        parent = _mount_point_of(self.rootfs)
        if parent is not None and parent[1]:
            linux.mount(None, parent[0], None, linux.MS_PRIVATE, None)
        linux.mount(self.rootfs, self.rootfs, None, linux.MS_BIND | linux.MS_REC, None)

    def mount_all(self, mounts: list[dict]) -> None:
        for entry in mounts:
            self.mount_one(entry)

    def make_cwd(self, cwd: str) -> None:
        """Create the process's cwd when the image lacks it, as runc does (mode 0755)."""
        os.makedirs(secure_join(self.rootfs, cwd), 0o755, exist_ok=True)

    def mount_one(self, entry: dict) -> None:
        destination = entry.get("destination", "")
        if not destination.startswith("/"):
            destination = "/" + destination
        target = secure_join(self.rootfs, destination)
        kind = entry.get("type") or ("bind" if "bind" in entry.get("options", []) else "")
        options = parse_options(entry.get("options") or [])
        source = entry.get("source") or kind
        if options.flags & linux.MS_BIND:
            self._bind(source, target, options)
        elif kind == "cgroup":
            self._cgroup(target, options)
        else:
            _ensure(target, True)
            self._mount_fs(source, target, kind, options, destination)
        _propagate(target, options.propagation)

    def _bind(self, source: str, target: str, options: MountOptions) -> None:
        if not source.startswith("/"):
            source = os.path.join(self.bundle, source)
        _ensure(target, os.path.isdir(source))
        linux.mount(source, target, None, options.flags & (linux.MS_BIND | linux.MS_REC), None)
        # Flags beyond bind/rec only take effect on a remount of the bind.
        extra = options.flags & ~(linux.MS_BIND | linux.MS_REC | linux.MS_REMOUNT)
        if extra:
            flags = linux.MS_BIND | linux.MS_REMOUNT | extra | _locked_flags(target)
            linux.mount(None, target, None, flags, None)

    def _mount_fs(
        self, source: str, target: str, kind: str, options: MountOptions, destination: str
    ) -> None:
        # A read-only tmpfs is mounted writable and then remounted, as runc does.
        flags = options.flags
        readonly_later = kind == "tmpfs" and flags & linux.MS_RDONLY
        if readonly_later:
            flags &= ~linux.MS_RDONLY
        try:
            linux.mount(source, target, kind, flags, options.data or None)
        except PermissionError:
            if kind not in ("sysfs", "mqueue") or not self.userns:
                raise
            # A user namespace that does not own the network/ipc namespace cannot mount
            # a fresh sysfs/mqueue: fall back to the host's, as runc does.
            host = "/sys" if kind == "sysfs" else "/dev/mqueue"
            linux.mount(host, target, None, linux.MS_BIND | linux.MS_REC, None)
            flags |= linux.MS_BIND | linux.MS_REMOUNT
            linux.mount(None, target, None, flags | _locked_flags(target), None)
        if readonly_later:
            # A bind remount makes the mount read-only, not the filesystem: runc's outcome
            # (mountinfo "ro ... - tmpfs tmpfs rw"), and all a user namespace may do.
            remount = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
            linux.mount(None, target, None, flags | remount | _locked_flags(target), None)

    def _cgroup(self, target: str, options: MountOptions) -> None:
        _ensure(target, True)
        flags = options.flags & ~linux.MS_RDONLY
        single_v2 = len(self.cgroups) == 1 and self.cgroups[0].name == ""
        if single_v2:
            self._cgroup_hierarchy(self.cgroups[0], target, options.flags)
            return
        # v1: a tmpfs holding one directory per hierarchy, as Docker shows it.
        linux.mount("tmpfs", target, "tmpfs", flags, "mode=755")
        for hierarchy in self.cgroups:
            directory = os.path.join(target, hierarchy.name)
            os.makedirs(directory, exist_ok=True)
            self._cgroup_hierarchy(hierarchy, directory, options.flags)
            for alias in hierarchy.name.split(","):
                # Co-mounted controllers ("cpu,cpuacct") are also reachable by each name.
                if alias != hierarchy.name and not os.path.lexists(os.path.join(target, alias)):
                    os.symlink(hierarchy.name, os.path.join(target, alias))
        if options.flags & linux.MS_RDONLY:
            remount = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
            linux.mount(None, target, None, flags | remount | _locked_flags(target), None)

    def _cgroup_hierarchy(self, hierarchy: CgroupMount, target: str, flags: int) -> None:
        if self.cgroupns:
            # runc names the name=systemd hierarchy's source "systemd", the others "cgroup".
            source = "systemd" if (hierarchy.data or "").endswith("name=systemd") else "cgroup"
            linux.mount(source, target, hierarchy.fstype, flags, hierarchy.data)
            return
        linux.mount(hierarchy.host_dir, target, None, linux.MS_BIND | linux.MS_REC, None)
        remount = linux.MS_BIND | linux.MS_REMOUNT | (flags & ~linux.MS_REC)
        linux.mount(None, target, None, remount | _locked_flags(target), None)

    def populate_dev(self, devices: list[dict]) -> None:
        """Default devices, the spec's devices, /dev/pts/ptmx and the usual links."""
        specs = [
            {"path": path, "type": kind, "major": major, "minor": minor, "fileMode": 0o666}
            for path, kind, major, minor in DEFAULT_DEVICES
        ]
        wanted = {d.get("path") for d in devices}
        specs = [d for d in specs if d["path"] not in wanted] + list(devices)
        for device in specs:
            self._device(device)
        ptmx = _secure_target(self.rootfs, "/dev/ptmx")
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)
        for source, link in _DEV_LINKS:
            path = _secure_target(self.rootfs, link)
            if not os.path.lexists(path):
                os.symlink(source, path)
        if os.path.exists("/proc/kcore"):
            core = _secure_target(self.rootfs, "/dev/core")
            if not os.path.lexists(core):
                os.symlink("/proc/kcore", core)

    def _device(self, device: dict) -> None:
        path = _secure_target(self.rootfs, device["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        kind = kinds.get(device.get("type", "c"))
        if kind is None:
            raise ValueError(f"device {device['path']}: unknown type {device.get('type')!r}")
        mode = device.get("fileMode")
        mode = 0o666 if mode is None else mode
        if os.path.lexists(path):
            os.unlink(path)
        if self.userns:
            # mknod is refused in a user namespace: bind the host's node instead.
            _ensure(path, False)
            linux.mount(device["path"], path, None, linux.MS_BIND, None)
            return
        rdev = os.makedev(device.get("major", 0), device.get("minor", 0))
        os.mknod(path, kind | (mode & 0o7777), rdev)
        os.chmod(path, mode & 0o7777)  # mknod is subject to the umask
        os.chown(path, device.get("uid", 0), device.get("gid", 0))

    def pivot(self) -> None:
        """pivot_root into the rootfs and detach the old root (runc's fd dance, no temp dir)."""
        old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        new_root = os.open(self.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(new_root)
            linux.pivot_root(".", ".")
            os.fchdir(old_root)
            # Keep the unmount of the old root from reaching the host's mounts.
            linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC, None)
            linux.umount(".", linux.MNT_DETACH)
            os.chdir("/")
        finally:
            os.close(old_root)
            os.close(new_root)


def _root_propagation(propagation: str | None) -> int:
    return _PROPAGATION.get(propagation or "rslave", linux.MS_SLAVE | linux.MS_REC)


def _mount_point_of(path: str) -> tuple[str, bool] | None:
    """The mount point holding `path` and whether that mount is shared (from mountinfo)."""
    best: tuple[str, bool] | None = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" - ")[0].split()
            point = fields[4].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and (best is None or len(point) >= len(best[0])):
                best = (point, any(tag.startswith("shared:") for tag in fields[6:]))
    return best


def _locked_flags(target: str) -> int:
    """Flags the kernel refuses to clear on a remount (they are locked in a user namespace)."""
    try:
        st = os.statvfs(target)
    except OSError:
        return 0
    keep = 0
    for vfs_flag, ms_flag in (
        (os.ST_NOSUID, linux.MS_NOSUID),
        (os.ST_NODEV, linux.MS_NODEV),
        (os.ST_NOEXEC, linux.MS_NOEXEC),
        (os.ST_RDONLY, linux.MS_RDONLY),
    ):
        if st.f_flag & vfs_flag:
            keep |= ms_flag
    return keep & ~linux.MS_RDONLY


# After pivot_root: paths are in the container's view.


def mask_paths(paths: list[str]) -> None:
    """Hide each path: a directory under an empty read-only tmpfs, a file under /dev/null."""
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY, None)
            else:
                linux.mount("/dev/null", path, None, linux.MS_BIND, None)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue


def readonly_paths(paths: list[str]) -> None:
    for path in paths:
        try:
            linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC, None)
        except FileNotFoundError:
            continue
        flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_REC
        linux.mount(None, path, None, flags | _locked_flags(path), None)


def readonly_root() -> None:
    flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
    linux.mount(None, "/", None, flags | _locked_flags("/"), None)


def mount_console(slave_path: str) -> None:
    """Bind the pty slave over /dev/console, as the container's console."""
    _ensure("/dev/console", False)
    linux.mount(slave_path, "/dev/console", None, linux.MS_BIND, None)
