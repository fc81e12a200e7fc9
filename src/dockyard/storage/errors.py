"""Typed errors of the storage package; the engine maps them to API statuses."""


class StorageError(Exception):
    """Base of every error raised by dockyard.storage."""


class NotFound(StorageError):
    """No blob, layer or snapshot by that name."""


class AlreadyExists(StorageError):
    """A snapshot with that key exists already."""


class InUse(StorageError):
    """Still needed: a layer with children, a mounted snapshot."""


class InvalidDigest(StorageError, ValueError):
    """Not a `sha256:<64 lowercase hex>` digest."""


class DigestMismatch(StorageError):
    """Content does not match the digest or size it was promised to have."""


class UnsafeArchive(StorageError):
    """An archive tried to reach outside its layer or is malformed."""


class LimitExceeded(StorageError):
    """An archive is larger than the configured limits allow."""
