"""Links through netlink (pyroute2): bridges, veth pairs into a container's namespace,
macvlan/ipvlan sub-interfaces, and the host routes that subnets must not collide with."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dockyard.network.errors import NetworkError
from dockyard.network.nsthread import enter, threaded


def _inside(netns_path: str) -> IPRoute:
    """Netlink in the namespace: this (fresh, see nsthread) thread moves into it for good."""
    enter(netns_path)
    return IPRoute()


def _sysctl(path: str, value: str) -> None:
    Path("/proc/sys/net", path).write_text(value)


@threaded
def enable_forwarding() -> None:
    """As dockerd: routing between the bridges and the host's interfaces is the point."""
    _sysctl("ipv4/ip_forward", "1")


@threaded
def host_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the host routes (default route excluded)."""
    found = []
    with IPRoute() as ip:
        for route in ip.get_routes(family=2, table=254):
            destination = route.get("RTA_DST")
            if destination:
                found.append(ipaddress.ip_network(f"{destination}/{route['dst_len']}"))
    return found


@threaded
def exists(name: str) -> bool:
    with IPRoute() as ip:
        return bool(ip.link_lookup(ifname=name))


@threaded
def ensure_bridge(name: str, gateway: str | None, prefix: int, mtu: int | None) -> None:
    """The bridge up with its gateway address; localhost may be routed to it (published
    ports reached through 127.0.0.1 are DNATed to the bridge's containers)."""
    try:
        with IPRoute() as ip:
            if not ip.link_lookup(ifname=name):
                options = {"mtu": mtu} if mtu else {}
                ip.link("add", ifname=name, kind="bridge", **options)
            index = ip.link_lookup(ifname=name)[0]
            if gateway:
                have = {a.get("IFA_ADDRESS") for a in ip.get_addr(index=index, family=2)}
                if gateway not in have:
                    ip.addr("add", index=index, address=gateway, prefixlen=prefix)
            ip.link("set", index=index, state="up")
        _sysctl(f"ipv4/conf/{name}/route_localnet", "1")
    except (NetlinkError, OSError) as error:
        raise NetworkError(f"setting up bridge {name}: {error}") from None


@threaded
def remove(name: str) -> None:
    try:
        with IPRoute() as ip:
            for index in ip.link_lookup(ifname=name):
                ip.link("del", index=index)
    except NetlinkError:
        pass  # gone already


@threaded
def add_veth(host_name: str, bridge: str, netns_path: str, ifname: str, mtu: int | None) -> None:
    """A veth pair: one end on the bridge (hairpin on, so a container reaches its own
    published ports), the other in the namespace as `ifname`."""
    options = {"mtu": mtu} if mtu else {}
    try:
        with IPRoute() as ip:
            ip.link(
                "add",
                ifname=host_name,
                kind="veth",
                peer={"ifname": ifname, "net_ns_fd": netns_path, **options},
                **options,
            )
            index = ip.link_lookup(ifname=host_name)[0]
            master = ip.link_lookup(ifname=bridge)[0]
            ip.link("set", index=index, master=master, state="up")
            # hairpin through netlink: /sys/class/net shows the namespace that mounted /sys,
            # not necessarily the daemon's
            ip.brport("set", index=index, mode=1)
    except (NetlinkError, OSError, IndexError) as error:
        remove(host_name)
        raise NetworkError(f"creating veth {host_name} on {bridge}: {error}") from None


@threaded
def add_subinterface(kind: str, parent: str, netns_path: str, ifname: str, mode: str) -> None:
    """A macvlan or ipvlan link on `parent`, moved into the namespace as `ifname`."""
    temporary = "dytmp" + os.urandom(5).hex()
    mode_key = "macvlan_mode" if kind == "macvlan" else "ipvlan_mode"
    modes = {
        "macvlan": {"bridge": 4, "private": 1, "vepa": 2, "passthru": 8},
        "ipvlan": {"l2": 0, "l3": 1, "l3s": 2},
    }[kind]
    if mode not in modes:
        raise NetworkError(f"unknown {kind} mode {mode}")
    try:
        with IPRoute() as ip:
            found = ip.link_lookup(ifname=parent)
            if not found:
                raise NetworkError(f"-o parent interface was not found on the host: {parent}")
            ip.link("add", ifname=temporary, kind=kind, link=found[0], **{mode_key: modes[mode]})
            index = ip.link_lookup(ifname=temporary)[0]
            ip.link("set", index=index, net_ns_fd=netns_path)
        with _inside(netns_path) as ip:
            index = ip.link_lookup(ifname=temporary)[0]
            ip.link("set", index=index, ifname=ifname)
    except NetlinkError as error:
        remove(temporary)
        raise NetworkError(f"creating {kind} on {parent}: {error}") from None


@threaded
def configure(
    netns_path: str,
    ifname: str,
    address: str,
    prefix: int,
    mac: str | None,
    gateway: str | None,
) -> None:
    """Inside the namespace: the address, the link up and, for the first network, the
    default route through the gateway."""
    try:
        with _inside(netns_path) as ip:
            index = ip.link_lookup(ifname=ifname)[0]
            if mac:
                ip.link("set", index=index, address=mac)
            ip.addr("add", index=index, address=address, prefixlen=prefix)
            ip.link("set", index=index, state="up")
            if gateway:
                ip.route("replace", dst="0.0.0.0/0", gateway=gateway)
    except (NetlinkError, IndexError) as error:
        raise NetworkError(f"configuring {ifname}: {error}") from None


@threaded
def remove_in(netns_path: str, ifname: str) -> None:
    """Remove an interface inside a namespace (network disconnect of a running container)."""
    try:
        with _inside(netns_path) as ip:
            for index in ip.link_lookup(ifname=ifname):
                ip.link("del", index=index)
    except (NetlinkError, OSError):
        pass


@threaded
def interface_names(netns_path: str) -> set[str]:
    with _inside(netns_path) as ip:
        return {link.get("ifname") for link in ip.get_links()}


@threaded
def veths_on(bridge: str) -> list[str]:
    with IPRoute() as ip:
        found = ip.link_lookup(ifname=bridge)
        if not found:
            return []
        return [link.get("ifname") for link in ip.get_links() if link.get("master") == found[0]]


@threaded
def remove_with_address(netns_path: str, address: str) -> None:
    """Remove the interface holding `address` inside a namespace (macvlan/ipvlan disconnect)."""
    with _inside(netns_path) as ip:
        for entry in ip.get_addr(family=2, address=address):
            ip.link("del", index=entry["index"])
