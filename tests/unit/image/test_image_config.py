import json

import pytest

from dockyard.image.config import (
    HistoryEntry,
    new_config,
    now_rfc3339,
    parse_config,
    unix_time,
)
from dockyard.image.errors import InvalidImage
from dockyard.image.platform import Platform

DIFF = "sha256:" + "d" * 64


def doc(**overrides):
    base = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T10:00:00.123456789Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [DIFF]},
        "history": [{"created_by": "ADD x /"}, {"created_by": "CMD", "empty_layer": True}],
    }
    base.update(overrides)
    return base


def test_parse_keeps_exact_bytes_and_id():
    raw = json.dumps(doc(), indent=3).encode()
    config = parse_config(raw)
    assert config.raw == raw
    import hashlib

    assert config.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert config.diff_ids == (DIFF,)
    assert config.platform == Platform("linux", "amd64")
    assert config.container_config["Cmd"] == ["sh"]
    assert config.created_unix == 1714557600
    assert [h.empty_layer for h in config.history] == [False, True]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rootfs": None}, "rootfs must be dict"),
        ({"rootfs": {"type": "zfs", "diff_ids": []}}, "unsupported rootfs type"),
        ({"rootfs": {"type": "layers", "diff_ids": ["nope"]}}, "invalid rootfs diff_id"),
        ({"rootfs": {"type": "layers", "diff_ids": "x"}}, "diff_ids must be list"),
        ({"os": 1}, "os must be str"),
        ({"config": {"Cmd": "sh"}}, "config.Cmd must be list"),
        ({"config": {"Env": [1]}}, "each item of config.Env"),
        ({"config": {"Labels": {"a": 1}}}, "each value of config.Labels"),
        ({"history": {}}, "history must be list"),
        ({"history": [{}, {}]}, "too many non-empty layers"),
        ({"history": [{"created_by": 5}]}, "history created_by"),
    ],
)
def test_invalid_configs(overrides, message):
    with pytest.raises(InvalidImage, match=message):
        parse_config(json.dumps(doc(**overrides)).encode())


def test_null_fields_are_allowed():
    config = parse_config(json.dumps(doc(config={"Cmd": None, "Env": None}, history=None)).encode())
    assert config.history == ()


def test_new_config_is_parseable_and_ordered():
    config = new_config(
        diff_ids=[DIFF],
        platform=Platform("linux", "arm", "v7"),
        config={"Cmd": ["sh"]},
        history=[HistoryEntry(created="2024-01-01T00:00:00Z", created_by="bootstrap")],
        created="2024-01-01T00:00:00Z",
        comment="imported",
    )
    assert list(config.doc) == [
        "architecture",
        "comment",
        "config",
        "created",
        "history",
        "os",
        "rootfs",
        "variant",
    ]
    assert parse_config(config.raw).id == config.id
    assert config.doc["history"] == [{"created": "2024-01-01T00:00:00Z", "created_by": "bootstrap"}]


def test_times():
    stamp = now_rfc3339()
    assert stamp.endswith("Z") and "T" in stamp
    assert unix_time(stamp) > 1_700_000_000
    assert unix_time("") == 0
    assert unix_time("garbage") == 0
