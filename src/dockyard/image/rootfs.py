"""Root filesystems made on this host, without a registry.

A busybox rootfs comes from Debian's busybox-static (one static binary and a link per
applet); a Debian rootfs comes from debootstrap. Both are plain directory trees; turning them
into images is the image store's job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
    """debootstrap --variant=minbase of `suite` into `dest`, from the host's apt mirror."""
    if shutil.which("debootstrap") is None:
        raise RootfsError("debootstrap not found: install Debian's debootstrap")
    command = ["debootstrap", "--variant=minbase", suite, str(dest)]
    if mirror:
        command.append(mirror)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RootfsError(f"debootstrap failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return dest
