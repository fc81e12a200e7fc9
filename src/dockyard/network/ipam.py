"""Address management: choosing subnets that collide with nothing, handing out addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from dockyard.network.errors import AddressInUse, NetworkError, PoolExhausted

Subnet = ipaddress.IPv4Network
# Docker's default pools, minus the 172.17.0.0/16 a dockerd on the same host would take.
DEFAULT_POOLS = [{"base": "172.17.0.0/12", "size": 16}, {"base": "192.168.0.0/16", "size": 20}]
DOCKER_DEFAULT = ipaddress.ip_network("172.17.0.0/16")


def parse_subnet(text: str) -> Subnet:
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        raise NetworkError(f"invalid subnet {text}") from None
    if network.version != 4:
        raise NetworkError(f"only IPv4 subnets are supported: {text}")
    return network


def parse_address(text: str, subnet: Subnet | None = None) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise NetworkError(f"invalid IPv4 address {text}") from None
    if subnet is not None and address not in subnet:
        raise NetworkError(f"no configured subnet contains IP address {text}")
    return address


def choose_subnet(
    pools: list[dict], taken: Iterable[Subnet], avoid_docker_default: bool = True
) -> Subnet:
    """The first subnet of the pools that overlaps no route of the host and no network."""
    busy = list(taken)
    if avoid_docker_default:
        busy.append(DOCKER_DEFAULT)
    for pool in pools or DEFAULT_POOLS:
        base = ipaddress.ip_network(pool["base"], strict=False)
        for candidate in base.subnets(new_prefix=int(pool["size"])):
            if not any(candidate.overlaps(other) for other in busy):
                return candidate
    raise PoolExhausted(
        "could not find an available, non-overlapping IPv4 address pool among the defaults "
        "to assign to the network"
    )


def allocate(
    subnet: Subnet,
    used: set[str],
    ip_range: Subnet | None = None,
    requested: str | None = None,
) -> str:
    """An address of `subnet` (within `ip_range` when set) that `used` does not hold."""
    if requested:
        address = parse_address(requested, subnet)
        if str(address) in used:
            raise AddressInUse("Address already in use")
        return str(address)
    scope = ip_range or subnet
    for address in scope.hosts():
        if str(address) not in used:
            return str(address)
    raise PoolExhausted(f"no available IPv4 addresses on this network's address pools: {subnet}")


def mac_for(address: str) -> str:
    """Docker's MAC for an address: 02:42 then the four bytes of the IPv4 address."""
    octets = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in octets)
