import json

import pytest

from dockyard.image import manifest as m
from dockyard.image.errors import InvalidImage
from dockyard.image.platform import Platform, compatible, normalize, parse_platform

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def desc(digest=D1, media_type=m.OCI_MANIFEST, size=10, platform=None):
    out = {"mediaType": media_type, "digest": digest, "size": size}
    if platform:
        os_name, arch, *variant = platform.split("/")
        out["platform"] = {"os": os_name, "architecture": arch}
        if variant:
            out["platform"]["variant"] = variant[0]
    return out


def index(*entries, media_type=m.OCI_INDEX):
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": list(entries)})


def image_manifest(media_type=m.DOCKER_MANIFEST, layers=None, config_type=m.DOCKER_CONFIG):
    layers = layers if layers is not None else [desc(D2, m.DOCKER_LAYER_GZIP, 100)]
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": desc(D1, config_type, 50),
            "layers": layers,
        }
    ).encode()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("linux", "aarch64", ""), ("linux", "arm64", "")),
        (("linux", "arm64", "v8"), ("linux", "arm64", "")),
        (("linux", "arm64", "8"), ("linux", "arm64", "")),
        (("linux", "arm64", "9.0"), ("linux", "arm64", "v9")),
        (("linux", "armhf", ""), ("linux", "arm", "v7")),
        (("linux", "armel", ""), ("linux", "arm", "v6")),
        (("linux", "arm", ""), ("linux", "arm", "v7")),
        (("linux", "arm", "6"), ("linux", "arm", "v6")),
        (("linux", "x86_64", ""), ("linux", "amd64", "")),
        (("linux", "amd64", "v1"), ("linux", "amd64", "")),
        (("Linux", "i686", "x"), ("linux", "386", "")),
        (("linux", "riscv64", ""), ("linux", "riscv64", "")),
    ],
)
def test_normalize(given, expected):
    assert normalize(Platform(*given)) == Platform(*expected)


def test_compatible_vectors():
    assert [str(p) for p in compatible(Platform("linux", "arm64"))] == [
        "linux/arm64",
        "linux/arm/v8",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/arm/v5",
    ]
    assert [str(p) for p in compatible(Platform("linux", "amd64", "v3"))] == [
        "linux/amd64/v3",
        "linux/amd64/v2",
        "linux/amd64",
        "linux/386",
    ]
    assert [str(p) for p in compatible(Platform("linux", "arm", "v6"))] == [
        "linux/arm/v6",
        "linux/arm/v5",
    ]


def test_parse_platform():
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64")
    assert parse_platform("arm") == Platform("linux", "arm", "v7")
    for bad in ("", "a/b/c/d", "linux//v7"):
        with pytest.raises(ValueError):
            parse_platform(bad)


def test_select_best_platform():
    idx = m.parse(
        index(
            desc(D1, platform="linux/arm/v6"),
            desc(D2, platform="linux/arm64/v8"),
            desc(D3, platform="linux/amd64"),
            desc("sha256:" + "4" * 64, platform="unknown/unknown"),
        ).encode()
    )
    assert isinstance(idx, m.Index)
    assert m.select(idx, Platform("linux", "amd64")).digest == D3
    assert m.select(idx, Platform("linux", "aarch64")).digest == D2
    assert m.select(idx, Platform("linux", "arm", "v7")).digest == D1
    with pytest.raises(InvalidImage, match="no matching manifest for linux/s390x"):
        m.select(idx, Platform("linux", "s390x"))


def test_select_prefers_exact_variant_and_first_of_equals():
    idx = m.parse(
        index(
            desc(D1, platform="linux/arm/v5"),
            desc(D2, platform="linux/arm/v7"),
            desc(D3, platform="linux/arm/v7"),
            media_type=m.DOCKER_MANIFEST_LIST,
        ).encode()
    )
    assert m.select(idx, Platform("linux", "arm64")).digest == D2


def test_index_entries_without_platform_are_skipped():
    idx = m.parse(index(desc(D1), desc(D2, platform="linux/amd64")).encode())
    assert m.select(idx, Platform("linux", "amd64")).digest == D2


def test_parse_docker_and_oci_manifests():
    docker = m.parse(image_manifest(), m.DOCKER_MANIFEST)
    assert isinstance(docker, m.Manifest)
    assert docker.config.digest == D1
    assert [layer.size for layer in docker.layers] == [100]
    oci = m.parse(image_manifest(m.OCI_MANIFEST, [desc(D2, m.OCI_LAYER_ZSTD, 5)], m.OCI_CONFIG))
    assert oci.media_type == m.OCI_MANIFEST
    # OCI allows leaving mediaType out; the shape decides.
    doc = json.loads(image_manifest(m.OCI_MANIFEST, [], m.OCI_CONFIG))
    del doc["mediaType"]
    assert m.parse(json.dumps(doc).encode()).media_type == m.OCI_MANIFEST
    doc = json.loads(index())
    del doc["mediaType"]
    assert isinstance(m.parse(json.dumps(doc).encode()), m.Index)


@pytest.mark.parametrize(
    ("data", "declared", "message"),
    [
        (b"not json", None, "invalid manifest"),
        (b"[]", None, "expected an object"),
        (image_manifest(), m.OCI_MANIFEST, "does not match the declared"),
        (json.dumps({"schemaVersion": 1}).encode(), None, "schema 1 is not supported"),
        (json.dumps({"schemaVersion": 3, "layers": []}).encode(), None, "schemaVersion 3"),
        (image_manifest(layers=[desc(D2, "text/plain")]), None, "unsupported layer media type"),
        (image_manifest(config_type="text/plain"), None, "unsupported image config media type"),
        (image_manifest(layers=[desc("sha256:zz")]), None, "invalid layer 0 digest"),
        (image_manifest(layers=[desc(D2, m.OCI_LAYER, -1)]), None, "invalid layer 0 size"),
        (image_manifest(layers=[desc(D2, m.OCI_LAYER, True)]), None, "expected an integer"),
        (image_manifest(layers=[desc(D2, m.OCI_LAYER)] * 128), None, "too many layers"),
        (b'{"mediaType": "application/x-other", "schemaVersion": 2}', None, "unsupported"),
        (b" " * (m.MAX_MANIFEST_SIZE + 1), None, "too large"),
        (index(desc(D1, size="10")).encode(), None, "manifest 0 size"),
        (index({"digest": D1, "size": 1, "annotations": {"a": 1}}).encode(), None, "annotations"),
    ],
)
def test_invalid_manifests(data, declared, message):
    with pytest.raises(InvalidImage, match=message):
        m.parse(data, declared)


def test_descriptor_round_trip():
    value = desc(D1, m.OCI_MANIFEST, 7, platform="linux/arm/v7")
    value["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    assert m.Descriptor.from_json(value).to_json() == value
