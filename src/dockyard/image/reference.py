"""Image references with Docker's grammar, normalisation and error messages.

`busybox` is `docker.io/library/busybox:latest`; `localhost:5000/a/b:t` keeps its registry;
`name@sha256:<hex>` pins a digest. The grammar is distribution/reference's; error texts are the
ones the Docker daemon and CLI print, since clients and scripts match on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN}/)?{_REMOTE_NAME}"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
NAME_RE = re.compile(rf"(?:({_DOMAIN})/)?({_REMOTE_NAME})")
TAG_RE = re.compile(_TAG)
IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")

# go-digest: algorithm -> hex length; anything else is "unsupported".
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def validate_digest(digest: str) -> str:
    """Return `digest` if it is a well-formed digest of a known algorithm (go-digest's rules)."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not algorithm or not encoded:
        raise InvalidReference("invalid checksum digest format")
    if algorithm not in _DIGEST_LENGTHS:
        if not re.fullmatch(_DIGEST, digest):
            raise InvalidReference("invalid checksum digest format")
        raise InvalidReference("unsupported digest algorithm")
    if len(encoded) != _DIGEST_LENGTHS[algorithm]:
        raise InvalidReference("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidReference("invalid checksum digest format")
    return digest


@dataclass(frozen=True)
class Reference:
    """A normalised named reference: domain, path, and optionally a tag and/or a digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """Full repository name, e.g. docker.io/library/busybox."""
        # The domain is empty only for odd names such as `a_b.c/d` (a host-like first
        # component that is not a valid host), which Docker also leaves without one.
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """Repository as Docker shows it: busybox, user/app, localhost:5000/app."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
                path = path[len(OFFICIAL_PREFIX) :]
            return path
        return self.repository

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.repository + self._suffix()

    @property
    def familiar(self) -> str:
        """The short form Docker prints: busybox:latest, user/app@sha256:..."""
        return self.familiar_name + self._suffix()

    @property
    def name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def with_tag(self, tag: str) -> Reference:
        if not TAG_RE.fullmatch(tag):
            raise InvalidReference("invalid tag format")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, validate_digest(digest))

    def tagged_default(self) -> Reference:
        """This reference, with `latest` if it names neither a tag nor a digest (TagNameOnly)."""
        return self.with_tag(DEFAULT_TAG) if self.name_only else self

    def docker_ref(self) -> Reference:
        """What Docker resolves: a digest wins over a tag; a bare name means `latest`."""
        if self.digest:
            return Reference(self.domain, self.path, None, self.digest)
        return self.tagged_default()


def parse(text: str) -> Reference:
    """Parse an already-normalised reference (the domain, if any, is explicit)."""
    match = REFERENCE_RE.fullmatch(text)
    if match is None:
        if text == "":
            raise InvalidReference("repository name must have at least one component")
        if REFERENCE_RE.fullmatch(text.lower()):
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    domain, path = NAME_RE.fullmatch(name).groups()
    if digest is not None:
        validate_digest(digest)
    return Reference(domain or "", path, tag, digest)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """Docker's rule for whether the first component is a registry host."""
    first, slash, rest = name.partition("/")
    if not slash or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_normalized(text: str) -> Reference:
    """Parse what a user typed: `busybox` -> docker.io/library/busybox (ParseNormalizedNamed).

    No default tag is added; see Reference.tagged_default().
    """
    if IDENTIFIER_RE.fullmatch(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(text)
    remote_name = remainder.partition(":")[0]
    if remote_name.lower() != remote_name:
        raise InvalidReference(
            f"invalid reference format: repository name ({remote_name}) must be lowercase"
        )
    return parse(f"{domain}/{remainder}")


def parse_any(text: str) -> Reference | str:
    """An image ID (`<64 hex>` or `sha256:<hex>`) as a digest string, else a named reference
    (ParseAnyReference)."""
    if IDENTIFIER_RE.fullmatch(text):
        return "sha256:" + text
    try:
        return validate_digest(text)
    except InvalidReference:
        return parse_normalized(text)


def parse_tag_target(text: str) -> Reference:
    """Parse the name a tag operation would create (`docker tag SRC THIS`), with `latest`
    added; Docker refuses digests and a repository named after the digest algorithm."""
    ref = parse_normalized(text)
    if ref.digest:
        raise InvalidReference("refusing to create a tag with a digest reference")
    if ref.familiar_name == "sha256":
        raise InvalidReference("refusing to create an ambiguous tag using digest algorithm as name")
    return ref.tagged_default()
