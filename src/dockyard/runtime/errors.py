"""Errors the runtime reports as runc does: one line on stderr, exit status 1."""


class OCIError(Exception):
    """A lifecycle operation failed; the message is what the user sees."""


class ContainerNotFound(OCIError):
    def __init__(self, container_id: str):
        super().__init__("container does not exist")
        self.container_id = container_id
