"""Typed errors: the engine raises them, the api layer maps them to Docker's status codes."""


class EngineError(Exception):
    status = 500


class InvalidArgument(EngineError):
    status = 400


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    """Nothing to do (start of a running container, stop of a stopped one): HTTP 304."""

    status = 304


class Unavailable(EngineError):
    status = 503


class NoSuchContainer(NotFound):
    def __init__(self, name: str):
        super().__init__(f"No such container: {name}")
