import pytest

from dockyard.image.errors import InvalidReference
from dockyard.image.reference import (
    parse,
    parse_any,
    parse_normalized,
    parse_tag_target,
    validate_digest,
)

HEX = "a" * 64
DIGEST = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox", "busybox"),
        ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
        ("library/busybox", "docker.io/library/busybox", "busybox"),
        ("docker.io/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("index.docker.io/busybox", "docker.io/library/busybox", "busybox"),
        ("docker.io/library/busybox", "docker.io/library/busybox", "busybox"),
        ("user/app", "docker.io/user/app", "user/app"),
        ("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b"),
        ("localhost/app", "localhost/app", "localhost/app"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("registry.example.com/team/app:v1.2", "registry.example.com/team/app:v1.2", None),
        ("example.com:443/a", "example.com:443/a", None),
        ("[::1]:5000/app:dev", "[::1]:5000/app:dev", None),
        ("Foo/bar", "Foo/bar", None),  # an uppercase first component is a registry host
        ("a_b__c-d--e/f.g", "docker.io/a_b__c-d--e/f.g", "a_b__c-d--e/f.g"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", None),
        ("a_b.c/d", "a_b.c/d", None),  # host-like but not a host: Docker keeps no domain
        ("app:" + "T" * 128, "docker.io/library/app:" + "T" * 128, None),
    ],
)
def test_normalisation(text, full, familiar):
    ref = parse_normalized(text)
    assert str(ref) == full
    assert ref.familiar == (familiar or text.removeprefix("docker.io/"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        ("user/App", "invalid reference format: repository name (user/App) must be lowercase"),
        ("", "invalid reference format"),
        ("busybox:", "invalid reference format"),
        (":tag", "invalid reference format"),
        ("-app", "invalid reference format"),
        ("app-", "invalid reference format"),
        ("a..b", "invalid reference format"),
        ("a/", "invalid reference format"),
        ("/a", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("app:" + "t" * 129, "invalid reference format"),
        ("app:-tag", "invalid reference format"),
        ("app:tag with space", "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("busybox@sha256:" + "a" * 32, "invalid checksum digest length"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("busybox@sha256:" + "A" * 64, "invalid checksum digest format"),
        (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
        ("a/" * 128 + "a", "repository name must not be more than 255 characters"),
        ("localhost:5000/App", "invalid reference format: repository name (App) must be lowercase"),
        ("Foo/Bar", "invalid reference format: repository name (Bar) must be lowercase"),
    ],
)
def test_errors(text, message):
    with pytest.raises(InvalidReference) as info:
        parse_normalized(text)
    assert str(info.value) == message


def test_parse_is_not_normalising():
    ref = parse("foo/bar:1")
    assert (ref.domain, ref.path, ref.tag) == ("foo", "bar", "1")
    assert parse("bar").domain == ""
    with pytest.raises(InvalidReference, match=r"^repository name must have at least one"):
        parse("")
    with pytest.raises(InvalidReference, match=r"^repository name must be lowercase$"):
        parse("docker.io/Foo")


def test_default_tag_and_docker_ref():
    assert str(parse_normalized("busybox").tagged_default()) == "docker.io/library/busybox:latest"
    both = parse_normalized(f"busybox:1@{DIGEST}")
    assert str(both.docker_ref()) == f"docker.io/library/busybox@{DIGEST}"
    assert parse_normalized("busybox:1").docker_ref().tag == "1"


def test_repository_and_familiar_name():
    ref = parse_normalized("localhost:5000/a/b:t")
    assert ref.repository == "localhost:5000/a/b"
    assert ref.familiar_name == "localhost:5000/a/b"
    assert parse_normalized("busybox").repository == "docker.io/library/busybox"


def test_parse_any():
    assert parse_any(HEX) == DIGEST
    assert parse_any(DIGEST) == DIGEST
    assert str(parse_any("busybox")) == "docker.io/library/busybox"
    # A short ID is a valid name; the store falls back to an ID-prefix search.
    assert str(parse_any("abc123")) == "docker.io/library/abc123"
    assert parse_any("sha256:abc").tag == "abc"


def test_tag_target():
    assert str(parse_tag_target("app")) == "docker.io/library/app:latest"
    with pytest.raises(
        InvalidReference, match=r"^refusing to create a tag with a digest reference$"
    ):
        parse_tag_target(f"app@{DIGEST}")
    with pytest.raises(InvalidReference, match="ambiguous tag using digest algorithm as name"):
        parse_tag_target("sha256:abc")


def test_with_tag_and_digest():
    ref = parse_normalized("busybox")
    assert ref.with_tag("1.36").familiar == "busybox:1.36"
    assert ref.with_digest(DIGEST).familiar == f"busybox@{DIGEST}"
    with pytest.raises(InvalidReference, match="invalid tag format"):
        ref.with_tag(".bad")


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("sha256", "invalid checksum digest format"),
        ("sha256:", "invalid checksum digest format"),
        (":abc", "invalid checksum digest format"),
        ("sha1:" + "a" * 40, "unsupported digest algorithm"),
        ("sha256:" + "a" * 63, "invalid checksum digest length"),
        ("sha256:" + "g" * 64, "invalid checksum digest format"),
    ],
)
def test_digest_errors(digest, message):
    with pytest.raises(InvalidReference, match=f"^{message}$"):
        validate_digest(digest)


def test_valid_digests():
    for algorithm, length in (("sha256", 64), ("sha384", 96), ("sha512", 128)):
        digest = f"{algorithm}:" + "0" * length
        assert validate_digest(digest) == digest


def test_long_hostile_input_is_fast():
    import time

    start = time.monotonic()
    for text in ("a-" * 20000 + "!", "a." * 20000 + "/b!", "a" * 100000 + "@"):
        with pytest.raises(InvalidReference):
            parse_normalized(text)
    assert time.monotonic() - start < 2
