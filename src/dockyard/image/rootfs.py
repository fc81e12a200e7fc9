"""Root filesystems made on this host, without a registry.

A busybox rootfs comes from Debian's busybox-static (one static binary and a link per
applet); a Debian rootfs comes from debootstrap. Both are plain directory trees; turning them
into images is the image store's job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BUSYBOX_BINARY = Path("/bin/busybox")

# The accounts every small image carries, as in Docker's busybox image.
PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
kmem:x:15:
users:x:100:
www-data:x:33:
operator:x:37:
nogroup:x:65534:
"""


class RootfsError(RuntimeError):
    """The host lacks what is needed to make the rootfs."""


def make_busybox_rootfs(dest: Path, busybox: Path = BUSYBOX_BINARY) -> Path:
    """Fill `dest` with a busybox userland: every applet, accounts, /tmp, /root."""
    if not busybox.exists():
        raise RootfsError(f"{busybox} not found: install Debian's busybox-static")
    applets = subprocess.run(
        [str(busybox), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    dest.mkdir(parents=True, exist_ok=True)
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "var"):
        (dest / directory).mkdir(parents=True, exist_ok=True)
    for directory in ("proc", "sys", "dev"):
        (dest / directory).mkdir(mode=0o755, exist_ok=True)
    tmp = dest / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    (dest / "root").chmod(0o700)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    for applet in applets:
        link = dest / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", link)
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    return dest


def make_debian_rootfs(dest: Path, suite: str = "bookworm", mirror: str | None = None) -> Path:
    """debootstrap --variant=minbase of `suite` into `dest`, from `mirror` or else the Debian
    mirror the host's apt uses; trimmed as Docker's debian images are (no apt lists or
    downloaded packages, empty /dev)."""
    if shutil.which("debootstrap") is None:
        raise RootfsError("debootstrap not found: install Debian's debootstrap")
    mirror = mirror or host_debian_mirror(suite)
    command = ["debootstrap", "--variant=minbase", suite, str(dest)]
    if mirror:
        command.append(mirror)
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    finally:
        # debootstrap mounts /proc and /sys in the target and leaves them if it fails; a
        # later rm -r of `dest` must not reach into them.
        unmount_under(dest)
    if result.returncode != 0:
        raise RootfsError(f"debootstrap failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    for junk in ("var/lib/apt/lists", "var/cache/apt/archives", "dev"):
        _empty_directory(dest / junk)
    return dest


def _empty_directory(directory: Path) -> None:
    if not directory.is_dir() or directory.is_symlink():
        return
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name != "lock":  # apt's lock files belong to the empty layout
            entry.unlink()


def unmount_under(directory: Path) -> None:
    """Lazily unmount everything mounted at or below `directory`, deepest first."""
    prefix = str(Path(directory).resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


# -- the host's Debian mirror ------------------------------------------------------------------

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]


def apt_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """The enabled `deb` sources of sources.list, sources.list.d/*.list (one-line format) and
    sources.list.d/*.sources (deb822 format), in apt's reading order."""
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    sources: list[AptSource] = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        sources += _deb822_sources(text) if path.suffix == ".sources" else _one_line_sources(text)
    return sources


def _one_line_sources(text: str) -> list[AptSource]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0])  # drop [options]
        words = line.split()
        if len(words) >= 3 and words[0] == "deb":
            out.append(AptSource(words[1], (words[2],)))
    return out


def _deb822_sources(text: str) -> list[AptSource]:
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.splitlines():
            if line.startswith("#"):
                continue
            if line[:1].isspace() and key:
                fields[key] += " " + line.strip()  # a continuation line
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        suites = tuple(fields.get("suites", "").split())
        out += [AptSource(uri, suites) for uri in fields.get("uris", "").split()]
    return out


def host_debian_mirror(suite: str, apt_dir: Path = APT_DIR) -> str | None:
    """The mirror of the host's apt sources that serves `suite`, else the one serving the
    host's own Debian release (any suite is on every Debian mirror), else None."""
    sources = apt_sources(apt_dir)
    for source in sources:
        if suite in source.suites:
            return source.uri
    release = _host_codename()
    for source in sources:
        if release and release in source.suites:
            return source.uri
    return None


def _host_codename() -> str | None:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return None
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)\"?$", text, re.MULTILINE)
    return match.group(1) if match else None
