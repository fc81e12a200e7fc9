"""The network package's errors; the engine turns them into its typed errors."""


class NetworkError(Exception):
    """Something the kernel or the configuration refused."""


class AddressInUse(NetworkError):
    """A requested address or port is already held."""


class PoolExhausted(NetworkError):
    """No address or subnet is left to hand out."""
