"""-v and --volumes-from specs, volume names and local driver options, read as Docker does."""

from __future__ import annotations

import pytest

from dockyard.engine.errors import InvalidArgument
from dockyard.engine.mounts import _bind_mode, _parse_volumes_from, parse_bind
from dockyard.engine.volumes import _check_name, _check_options


def test_bind_and_volume_specs():
    assert parse_bind("/h:/c") == {
        "Type": "bind",
        "Source": "/h",
        "Target": "/c",
        "ReadOnly": False,
    }
    named = parse_bind("data:/c:ro,nocopy")
    assert named["Type"] == "volume" and named["ReadOnly"]
    assert named["VolumeOptions"] == {"NoCopy": True}
    assert parse_bind("/h:/c:rshared")["BindOptions"] == {"Propagation": "rshared"}
    assert _bind_mode("data:/c") == "z"
    assert _bind_mode("data:/c:ro") == "ro"
    assert _bind_mode("/h:/c") == ""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (":/x", "invalid volume specification: ':/x'"),
        ("/h", "invalid volume specification: '/h'"),
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        ("v:rel", "mount path must be absolute"),
        ("v:/x:rx", "invalid mode: rx"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_bind(spec)


def test_volumes_from_specs():
    assert _parse_volumes_from("web") == ("web", False)
    assert _parse_volumes_from("web:ro") == ("web", True)
    assert _parse_volumes_from("web:rw") == ("web", False)
    with pytest.raises(InvalidArgument, match="invalid mode: nocopy"):
        _parse_volumes_from("web:nocopy")


def test_volume_names():
    _check_name("db_data-1.x")
    with pytest.raises(InvalidArgument, match="create a: volume name is too short"):
        _check_name("a")
    with pytest.raises(InvalidArgument, match='"-x" includes invalid characters'):
        _check_name("-x")


def test_local_driver_options():
    _check_options("v", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    with pytest.raises(InvalidArgument, match='create v: invalid option key: "colour"'):
        _check_options("v", {"colour": "red"})
    with pytest.raises(InvalidArgument, match='missing required option: "device"'):
        _check_options("v", {"o": "bind"})
    with pytest.raises(InvalidArgument, match="quota size requested but no quota support"):
        _check_options("v", {"size": "10m"})
