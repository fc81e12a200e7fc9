from pathlib import Path

from dockyard.image.rootfs import AptSource, apt_sources, host_debian_mirror


def write(apt: Path, name: str, text: str) -> None:
    path = apt / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_one_line_and_deb822_sources_in_apt_order(tmp_path):
    write(
        tmp_path,
        "sources.list",
        "# a comment\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main  # x\n",
    )
    write(
        tmp_path,
        "sources.list.d/debian.sources",
        "Types: deb deb-src\n"
        "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
        "URIs: http://deb.debian.org/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "URIs: http://deb.debian.org/debian-security\n"
        "Suites: bookworm-security\n"
        "\n"
        "Types: deb\n"
        "Enabled: no\n"
        "URIs: http://disabled.example/debian\n"
        "Suites: trixie\n",
    )
    write(tmp_path, "sources.list.d/other.list.disabled", "deb http://ignored.example x main\n")
    write(tmp_path, "sources.list.d/z.list", "deb http://third.example/debian\n  sid main\n")
    assert apt_sources(tmp_path) == [
        AptSource("http://mirror.example/debian", ("bookworm",)),
        AptSource("http://deb.debian.org/debian", ("bookworm", "bookworm-updates")),
        AptSource("http://deb.debian.org/debian-security", ("bookworm-security",)),
    ]


def test_mirror_for_a_suite(tmp_path, monkeypatch):
    write(
        tmp_path,
        "sources.list.d/debian.sources",
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n",
    )
    monkeypatch.setattr("dockyard.image.rootfs._host_codename", lambda: "bookworm")
    assert host_debian_mirror("bookworm", tmp_path) == "http://mirror.example/debian"
    # Another suite comes from the mirror of the host's own release.
    assert host_debian_mirror("trixie", tmp_path) == "http://mirror.example/debian"
    assert host_debian_mirror("bookworm", tmp_path / "nothing") is None
