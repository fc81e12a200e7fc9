"""Typed errors of the image package; the api layer maps each to an HTTP status."""


class ImageError(Exception):
    """Base of every error raised by dockyard.image."""


class InvalidArgument(ImageError, ValueError):
    """The caller's input is malformed (400)."""


class InvalidReference(InvalidArgument):
    """A name, tag or digest that Docker's reference grammar rejects."""


class InvalidImage(InvalidArgument):
    """A manifest, index, config or archive that is malformed or inconsistent."""


class NotFound(ImageError, LookupError):
    """No image by that name or ID (404)."""


class Conflict(ImageError):
    """The operation would break something that depends on the image (409)."""
