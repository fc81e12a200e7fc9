"""Mounting: overlay (with Docker's short-link trick for deep images), bind, unmount."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from . import syscalls
from .errors import StorageError

PAGE = os.sysconf("SC_PAGESIZE")
_OVERLAY_PARAMS = Path("/sys/module/overlay/parameters")
# Features that would make the upper directory unreadable as a plain diff when on by default.
_OFF_IF_DEFAULT = ("redirect_dir", "metacopy", "index")


def overlay_options(lowers: list[str], upper: Path, work: Path) -> str:
    extra = [f"{name}=off" for name in _OFF_IF_DEFAULT if _kernel_default_on(name)]
    return ",".join(
        [f"lowerdir={':'.join(lowers)}", f"upperdir={upper}", f"workdir={work}", *extra]
    )


def _kernel_default_on(param: str) -> bool:
    try:
        return (_OVERLAY_PARAMS / param).read_text().strip() in ("Y", "on")
    except OSError:
        return False


def mount_overlay(
    lowers: list[str], upper: Path, work: Path, target: Path, readonly: bool, cwd: Path
) -> None:
    """Mount an overlay; `lowers` are relative to `cwd` when given as relative paths.

    mount(2) takes at most one page of options. Absolute lower paths are tried first; when
    they do not fit, the lowers are passed relative to `cwd` from a forked child that
    changed directory there, so this process's working directory never moves.
    """
    flags = syscalls.MS_RDONLY if readonly else 0
    absolute = overlay_options([str(cwd / lower) for lower in lowers], upper, work)
    if len(absolute) < PAGE:
        syscalls.mount("overlay", str(target), "overlay", flags, absolute)
        return
    relative = overlay_options(lowers, upper, work)
    if len(relative) >= PAGE:
        raise StorageError(f"{len(lowers)} layers are too many for one overlay mount")
    _mount_from(cwd, str(Path(target).absolute()), flags, relative)


def _mount_from(cwd: Path, target: str, flags: int, options: str) -> None:
    pid = os.fork()
    if pid == 0:  # the child only changes directory and mounts; no Python-level locks used
        code = 0
        try:
            os.chdir(cwd)
            syscalls.mount("overlay", target, "overlay", flags, options)
        except OSError as e:
            code = e.errno or 1
        except BaseException:
            code = 255
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise OSError(code, f"mount {target}: {os.strerror(code)}")


def bind_mount(source: Path, target: Path, readonly: bool) -> None:
    syscalls.mount(str(source), str(target), None, syscalls.MS_BIND, None)
    if readonly:
        flags = syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY
        syscalls.mount("none", str(target), None, flags, None)


def unmount(target: Path) -> None:
    """Unmount; a busy mount is detached lazily, an absent one is fine."""
    try:
        syscalls.umount(str(target))
    except OSError as e:
        if e.errno == errno.EBUSY:
            syscalls.umount(str(target), syscalls.MNT_DETACH)
        elif e.errno not in (errno.EINVAL, errno.ENOENT):
            raise


def overlay_in_use(upper: Path) -> bool:
    """Whether some overlay mount uses `upper` as its upper directory."""
    wanted = f"upperdir={upper}"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fstype, _source, options = line.split(" - ", 1)[1].split()[:3]
            if fstype == "overlay" and wanted in options.split(","):
                return True
    return False


def overlay_works(scratch: Path) -> bool:
    """Try a real overlay mount in `scratch` (on the file system the snapshots will use)."""
    dirs = {name: scratch / name for name in ("lower", "upper", "work", "merged")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    try:
        mount_overlay(
            [str(dirs["lower"])], dirs["upper"], dirs["work"], dirs["merged"], False, scratch
        )
    except OSError:
        return False
    unmount(dirs["merged"])
    return True


def bind_in_use(path: Path) -> bool:
    """Whether directory `path` is bind-mounted somewhere (a copy snapshot in use)."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    mounts = [m for m in _mountinfo() if m[0] == dev]
    path = path.resolve()
    holders = [m for m in mounts if path.is_relative_to(m[2])]
    if not holders:
        return False
    _, root, point = max(holders, key=lambda m: len(m[2].parts))
    seen_as = root / path.relative_to(point)
    return any(m[1] == seen_as for m in mounts)


def _mountinfo() -> list[tuple[str, Path, Path]]:
    """(major:minor, root inside the file system, mount point) of every mount."""
    with open("/proc/self/mountinfo") as f:
        return [
            (fields[2], Path(_unescape(fields[3])), Path(_unescape(fields[4])))
            for fields in (line.split() for line in f)
        ]


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo octal escapes.
    return field.encode().decode("unicode_escape") if "\\" in field else field
