"""docker save / docker load: round trips, archives in Docker's and OCI's formats built by
hand as those tools write them, and hostile archives."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
from image_helpers import add_image, archive, make_config, sha256, tar_bytes

from dockyard.image.bootstrap import bootstrap_busybox
from dockyard.image.errors import InvalidArgument, InvalidImage, NotFound
from dockyard.image.load import load
from dockyard.image.manifest import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST
from dockyard.image.platform import host_platform
from dockyard.image.save import save
from dockyard.image.store import Blob
from dockyard.storage.limits import Limits

HOST = host_platform()
LAYER1 = tar_bytes({"bin": None, "bin/sh": "#!shell\n", "etc": None, "etc/passwd": "root:x:0:0\n"})
LAYER2 = tar_bytes({"etc": None, "etc/motd": "hi\n", "etc/.wh.passwd": ""})


def saved(root, *names: str) -> bytes:
    out = io.BytesIO()
    save(root.images, list(names), out, root.scratch)
    return out.getvalue()


def loaded(root, data: bytes, **kw):
    return load(root.images, io.BytesIO(data), **kw)


def members(data: bytes) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else None for m in tar}


def blob_name(data: bytes) -> str:
    return "blobs/sha256/" + sha256(data)[7:]


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def oci_manifest(config: bytes, layers: list[bytes], layer_type: str = OCI_LAYER) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(layer_type, layer) for layer in layers],
    }
    return json.dumps(doc).encode()


def docker_config(diff_ids: list[str], history=None, os_name: str = "linux") -> bytes:
    """An image config as Docker writes it (Go's field order, null slices)."""
    if history is None:
        history = [
            {"created": "2024-09-26T21:31:42Z", "created_by": f"ADD {d[7:19]} /"} for d in diff_ids
        ]
        history.append({"created_by": 'CMD ["sh"]', "empty_layer": True})
    doc = {
        "architecture": HOST.architecture,
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"], "OnBuild": None, "Labels": None},
        "created": "2024-09-26T21:31:42Z",
        "history": history,
        "os": os_name,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def docker25_archive(config: bytes, layers: list[bytes], tags: list[str], parent: str = "") -> dict:
    """What `docker save` (25+) writes for one image: blobs/, index.json, manifest.json,
    oci-layout, repositories."""
    manifest = oci_manifest(config, layers)
    annotated = [
        descriptor(
            OCI_MANIFEST,
            manifest,
            annotations={
                "io.containerd.image.name": f"docker.io/library/{tag}",
                "org.opencontainers.image.ref.name": tag.split(":")[1],
            },
        )
        for tag in tags
    ]
    item = {
        "Config": blob_name(config),
        "RepoTags": tags or None,
        "Layers": [blob_name(layer) for layer in layers],
    }
    if parent:
        item["Parent"] = parent
    repositories: dict[str, dict[str, str]] = {}
    for tag in tags:
        name, _, version = tag.partition(":")
        repositories.setdefault(name, {})[version] = sha256(layers[-1])[7:]
    return {
        "blobs": None,
        "blobs/sha256": None,
        **{blob_name(blob): blob for blob in [config, manifest, *layers]},
        "index.json": {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": annotated},
        "manifest.json": [item],
        "oci-layout": '{"imageLayoutVersion": "1.0.0"}',
        "repositories": repositories,
    }


# -- round trips and the format written --------------------------------------------------------


def test_bootstrap_save_load_save_is_identical(make_root):
    first = make_root()
    image = bootstrap_busybox(first.images, first.scratch)
    data = saved(first, "busybox")

    second = make_root()
    assert loaded(second, data).messages == ["Loaded image: busybox:latest"]
    copy = second.images.get("busybox")
    assert copy.id == image.id
    assert [x.diff_id for x in copy.layers] == [x.diff_id for x in image.layers]
    assert [x.blob_digest for x in copy.layers] == [x.blob_digest for x in image.layers]
    assert saved(second, "busybox") == data


def test_saved_archive_is_docker_25_format(root):
    image = add_image(root.images, [{"a": "1"}, {"b": "2"}], "app:1", "app:2", "other")
    files = members(saved(root, "app", "other:latest"))
    diff_ids = [x.diff_id for x in image.layers]
    index = json.loads(files["index.json"])
    manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    layer_names = ["blobs/sha256/" + d[7:] for d in diff_ids]
    expected = ["blobs", "blobs/sha256", "blobs/sha256/" + image.id[7:], manifest_name]
    expected += [*layer_names, "index.json", "manifest.json", "oci-layout", "repositories"]
    assert sorted(files) == sorted(expected)
    assert list(files) == sorted(files)  # lexical order, as Docker's directory walk gives
    assert json.loads(files["manifest.json"]) == [
        {
            "Config": "blobs/sha256/" + image.id[7:],
            "RepoTags": ["app:1", "app:2", "other:latest"],
            "Layers": layer_names,
        }
    ]
    assert files["oci-layout"] == b'{"imageLayoutVersion": "1.0.0"}'
    top = diff_ids[1][7:]
    assert json.loads(files["repositories"]) == {
        "app": {"1": top, "2": top},
        "other": {"latest": top},
    }
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    assert [m["annotations"] for m in index["manifests"]] == [
        {
            "io.containerd.image.name": f"docker.io/library/{name}",
            "org.opencontainers.image.ref.name": tag,
        }
        for name, tag in (("app:1", "1"), ("app:2", "2"), ("other:latest", "latest"))
    ]
    manifest_bytes = files[manifest_name]
    assert sha256(manifest_bytes) == index["manifests"][0]["digest"]
    manifest = json.loads(manifest_bytes)
    platform = {"architecture": HOST.architecture, "os": "linux"}
    assert manifest["config"] == descriptor(OCI_CONFIG, image.config.raw, platform=platform)
    assert manifest["layers"] == [descriptor(OCI_LAYER, files[name]) for name in layer_names]


def test_save_selection_rules(root):
    image = add_image(root.images, [{"a": "1"}], "app:1", "app:2")
    by_tag = json.loads(members(saved(root, "app:2"))["manifest.json"])
    assert by_tag[0]["RepoTags"] == ["app:2"]
    by_id = members(saved(root, image.id[7:19]))
    assert json.loads(by_id["manifest.json"])[0]["RepoTags"] is None
    assert "repositories" not in by_id
    assert "annotations" not in json.loads(by_id["index.json"])["manifests"][0]
    with pytest.raises(NotFound, match="No such image: app:3"):
        saved(root, "app:3")
    with pytest.raises(InvalidArgument):
        saved(root, "App")


def test_save_writes_a_shared_layer_once_and_parents(root):
    base = add_image(root.images, [{"a": "1"}], "base")
    add_image(root.images, [{"a": "1"}, {"b": "2"}], "child", parent=base.id)
    files = members(saved(root, "base", "child"))
    manifest = json.loads(files["manifest.json"])
    assert manifest[1]["Parent"] == base.id and "Parent" not in manifest[0]
    assert manifest[0]["Layers"][0] == manifest[1]["Layers"][0]
    assert len([name for name in files if name.startswith("blobs/sha256/")]) == 6


def test_saved_compressed_layers_are_written_plain(root):
    plain = tar_bytes({"etc/hostname": "x\n"})
    blob = root.content.write(gzip.compress(plain, mtime=0)).digest
    image = root.images.create(make_config([sha256(plain)]), [Blob(blob, OCI_LAYER_GZIP)])
    root.images.tag(image.id, "gz")
    assert members(saved(root, "gz"))[blob_name(plain)] == plain


# -- archives written by other tools, built by hand ---------------------------------------------


def test_docker_25_archive_loads(root):
    config = docker_config([sha256(LAYER1), sha256(LAYER2)])
    data = archive(docker25_archive(config, [LAYER1, LAYER2], ["busybox:1.37", "busybox:latest"]))
    result = loaded(root, data)
    assert result.messages == ["Loaded image: busybox:1.37", "Loaded image: busybox:latest"]
    image = root.images.get("busybox:1.37")
    assert image.id == sha256(config)
    assert image.config.raw == config
    assert image.repo_tags == ("busybox:1.37", "busybox:latest")
    assert [x.diff_id for x in image.layers] == [sha256(LAYER1), sha256(LAYER2)]
    assert (root.layers.get(image.top_layer).path / "etc" / "motd").read_text() == "hi\n"


def test_docker_archive_parents_and_messages(root):
    base_config = docker_config([sha256(LAYER1)], history=[{"created_by": "base"}])
    child_config = docker_config(
        [sha256(LAYER1), sha256(LAYER2)], history=[{"created_by": "base"}, {"created_by": "child"}]
    )
    first = docker25_archive(base_config, [LAYER1], ["base:1"])
    second = docker25_archive(child_config, [LAYER1, LAYER2], [], parent=sha256(base_config))
    both = {**first, **second, "manifest.json": first["manifest.json"] + second["manifest.json"]}
    result = loaded(root, archive(both))
    assert result.messages == ["Loaded image: base:1", f"Loaded image ID: {sha256(child_config)}"]
    assert root.images.get(sha256(child_config)).parent == sha256(base_config)
    # Loading a tag that points elsewhere moves it, with Docker's notice.
    other = add_image(root.images, [{"x": "1"}], "base:1")
    result = loaded(root, archive(first))
    assert result.messages[0] == (
        f"The image base:1 already exists, renaming the old one with ID {other.id} to empty string"
    )
    assert root.images.get("base:1").id == sha256(base_config)


def test_legacy_archive_with_symlinked_layers_loads(root):
    """The pre-25 layout, which skopeo's docker-archive still writes: <hex>.tar layers,
    <v1 id>/layer.tar symlinks, <hex>.json config."""
    config = docker_config([sha256(LAYER1), sha256(LAYER1)])
    layer_file = sha256(LAYER1)[7:] + ".tar"
    legacy = {
        layer_file: LAYER1,
        sha256(config)[7:] + ".json": config,
        "aaaa": None,
        "aaaa/layer.tar": "->../" + layer_file,
        "aaaa/VERSION": "1.0",
        "bbbb": None,
        "bbbb/layer.tar": "->/aaaa/layer.tar",  # absolute: from the archive's root
        "manifest.json": [
            {
                "Config": sha256(config)[7:] + ".json",
                "RepoTags": ["docker.io/foo/bar:v1"],
                "Layers": ["aaaa/layer.tar", "./bbbb/layer.tar"],
            }
        ],
        "repositories": {"foo/bar": {"v1": "bbbb"}},
    }
    assert loaded(root, archive(legacy)).messages == ["Loaded image: foo/bar:v1"]
    assert root.images.get("foo/bar:v1").id == sha256(config)


def test_oci_archive_with_gzip_layer_and_platform_index(root):
    layer_gz = gzip.compress(LAYER1, mtime=0)
    config = docker_config([sha256(LAYER1)])
    other_config = docker_config([sha256(LAYER2)])
    host_manifest = oci_manifest(config, [layer_gz], OCI_LAYER_GZIP)
    other_manifest = oci_manifest(other_config, [LAYER2])
    other_arch = "s390x" if HOST.architecture != "s390x" else "riscv64"
    inner_index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, m, platform={"os": "linux", "architecture": arch})
                for m, arch in ((other_manifest, other_arch), (host_manifest, HOST.architecture))
            ],
        }
    ).encode()
    name = {"org.opencontainers.image.ref.name": "registry.example:5000/multi:2"}
    blobs = [layer_gz, LAYER2, config, other_config, host_manifest, other_manifest, inner_index]
    layout = {
        "oci-layout": '{"imageLayoutVersion":"1.0.0"}',
        **{blob_name(blob): blob for blob in blobs},
        "index.json": {
            "schemaVersion": 2,
            "manifests": [descriptor(OCI_INDEX, inner_index, annotations=name)],
        },
    }
    result = loaded(root, archive(layout))
    assert result.messages == ["Loaded image: registry.example:5000/multi:2"]
    image = root.images.get("registry.example:5000/multi:2")
    assert image.id == sha256(config)
    layer = image.layers[0]
    assert (layer.blob_digest, layer.blob_media_type) == (sha256(layer_gz), OCI_LAYER_GZIP)
    assert layer.diff_id == sha256(LAYER1)
    # Saving writes the layer as its plain tar again.
    assert members(saved(root, "registry.example:5000/multi:2"))[blob_name(LAYER1)] == LAYER1


def test_compressed_archive_and_layers_known_already(root):
    config = docker_config([sha256(LAYER1)])
    data = archive(docker25_archive(config, [LAYER1], ["a:1"]), gzipped=True)
    assert loaded(root, data).messages == ["Loaded image: a:1"]
    before = root.blobs()
    assert loaded(root, data).images[0].id == sha256(config)  # again: nothing new stored
    assert root.blobs() == before


def test_gzip_layer_in_a_docker_archive(root):
    """Old `docker save` and other tools put gzip layers in manifest.json archives."""
    layer_gz = gzip.compress(LAYER1, mtime=0)
    config = docker_config([sha256(LAYER1)])
    entry = {"Config": "config.json", "RepoTags": ["gz:1"], "Layers": ["layer.tar.gz"]}
    loaded(
        root, archive({"layer.tar.gz": layer_gz, "config.json": config, "manifest.json": [entry]})
    )
    layer = root.images.get("gz:1").layers[0]
    assert (layer.blob_digest, layer.blob_media_type) == (sha256(layer_gz), OCI_LAYER_GZIP)


def test_xz_layer_is_stored_plain(root):
    import lzma

    config = docker_config([sha256(LAYER1)])
    entry = {"Config": "c.json", "RepoTags": ["xz:1"], "Layers": ["layer.tar.xz"]}
    layout = {"layer.tar.xz": lzma.compress(LAYER1), "c.json": config, "manifest.json": [entry]}
    loaded(root, archive(layout))
    layer = root.images.get("xz:1").layers[0]
    assert (layer.blob_digest, layer.blob_media_type) == (sha256(LAYER1), OCI_LAYER)
    assert root.blobs() == {sha256(config), sha256(LAYER1)}


# -- hostile and broken archives ----------------------------------------------------------------

CONFIG = docker_config([sha256(LAYER1)])
GOOD = docker25_archive(CONFIG, [LAYER1], ["a:1"])
ESCAPING_LAYER = tar_bytes({"../../outside/pwned": "x"})


def with_item(**changes) -> dict:
    return {**GOOD, "manifest.json": [{**GOOD["manifest.json"][0], **changes}]}


def with_config(config: bytes, layers: list[bytes] | None = None) -> dict:
    extra = {f"l{i}.tar": layer for i, layer in enumerate(layers or [])}
    names = list(extra) if layers else GOOD["manifest.json"][0]["Layers"]
    return {**with_item(Config="x.json", Layers=names), "x.json": config, **extra}


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (with_item(Config="../../outside/config"), "outside/config not found"),
        (with_item(Config="/etc/passwd"), "etc/passwd not found"),
        ({**with_item(Config="link"), "link": "->/etc/passwd"}, "etc/passwd not found"),
        ({**with_item(Config="a"), "a": "->b", "b": "->a"}, "too many levels"),
        ({**GOOD, blob_name(LAYER1): LAYER2}, "does not match its digest"),
        (with_item(Layers=[]), "layers length mismatch: expected 0, got 1"),
        ({**GOOD, "manifest.json": "not json"}, "invalid manifest.json"),
        ({**GOOD, "manifest.json": "null"}, "manifest cannot be null"),
        ({**GOOD, "manifest.json": [{"Config": 5}]}, "Config must be a string"),
        (with_item(RepoTags=["a@sha256:" + "0" * 64]), "invalid tag"),
        (with_item(RepoTags=["A:1"]), "must be lowercase"),
        (with_config(docker_config([sha256(LAYER1)], os_name="windows")), "cannot load windows"),
        (with_config(docker_config([sha256(LAYER2)])), "expected " + sha256(LAYER2)),
        (with_config(docker_config([sha256(ESCAPING_LAYER)]), [ESCAPING_LAYER]), "invalid archive"),
        ({"oci-layout": "{}"}, "neither manifest.json nor index.json"),
        (
            {"index.json": {"schemaVersion": 2, "manifests": [descriptor(OCI_MANIFEST, b"x")]}},
            "is missing",
        ),
        ({**GOOD, "manifest.json": None, "index.json": {"schemaVersion": 3}}, "schemaVersion 3"),
    ],
)
def test_bad_archives_are_refused_and_leave_nothing(root, tmp_path, layout, message):
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(InvalidArgument, match=message):
        loaded(root, archive(layout))
    assert list(outside.iterdir()) == []
    assert root.images.list(all=True) == []
    assert root.blobs() == set()
    assert root.layers.chain_ids() == []


def test_names_cannot_climb_out_of_the_archive(root, tmp_path):
    """`..` stops at the archive root (Docker's safePath); nothing is written by name."""
    outside = tmp_path / "outside"
    outside.mkdir()
    layout = {**GOOD, "../outside/pwned": "x", "../../../../etc/dockyard-pwned": "x"}
    assert loaded(root, archive(layout)).messages == ["Loaded image: a:1"]
    assert list(outside.iterdir()) == []
    # A link pointing out of a layer stays inside the unpacked layer.
    target = str(outside)
    layer = tar_bytes({"etc": "->" + target, "etc/pwned": "x"})
    try:
        loaded(root, archive(with_config(docker_config([sha256(layer)]), [layer])))
    except InvalidImage:
        pass  # refusing is as good as confining
    assert list(outside.iterdir()) == []


def test_truncated_and_oversized_archives(root):
    data = archive(GOOD)
    with pytest.raises(InvalidImage, match="truncated"):
        loaded(root, data[: len(data) // 2 + 100])
    with pytest.raises(InvalidImage, match="more than 3 entries"):
        loaded(root, data, limits=Limits(max_entries=3))
    assert root.blobs() == set()


def test_large_members_stream_through_the_content_store(root, monkeypatch):
    import dockyard.image.load as load_module

    monkeypatch.setattr(load_module, "MEMORY_MEMBER_LIMIT", 100)  # every member is "large"
    assert loaded(root, archive(GOOD)).messages == ["Loaded image: a:1"]
    assert root.blobs() == {sha256(CONFIG), sha256(LAYER1)}  # the OCI manifest blob is gone
    root.images.remove("a:1")
    bad = {**GOOD, blob_name(LAYER1): LAYER2 + b"x" * 200}
    with pytest.raises(InvalidImage, match="does not match its digest"):
        loaded(root, archive(bad))
    assert root.blobs() == set()


@pytest.mark.parametrize("member_limit", [100, 8 << 20])
def test_load_never_discards_blobs_that_were_there_before(root, monkeypatch, member_limit):
    """A blob another part of the daemon stored (here: the archive's own manifest, as a pull
    would have) stays, though no image references it."""
    import dockyard.image.load as load_module

    monkeypatch.setattr(load_module, "MEMORY_MEMBER_LIMIT", member_limit)
    manifest = oci_manifest(CONFIG, [LAYER1])
    root.content.write(manifest)
    loaded(root, archive(GOOD))
    assert root.content.has(sha256(manifest))
