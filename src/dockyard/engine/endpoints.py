"""Containers on networks: the endpoint settings kept in each record, the namespace, veth
and address a start gives, published ports, the embedded DNS, connect and disconnect."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os

from dockyard.engine.errors import Conflict, EngineError, Forbidden, InvalidArgument, NotFound
from dockyard.engine.etcfiles import _host_resolv
from dockyard.engine.networks import MTU, PREDEFINED, NetworkStore, engine_error
from dockyard.network import dns, ipam, links, netns, nft, ports
from dockyard.network.errors import NetworkError

log = logging.getLogger("dockyard.engine.network")
_CLEARED = {
    "EndpointID": "",
    "Gateway": "",
    "IPAddress": "",
    "IPPrefixLen": 0,
    "MacAddress": "",
}
_HOST_ONLY = "container cannot be disconnected from host network or connected to host network"
_TOP_LEVEL = ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress")


def endpoint_settings(network: dict, config: dict | None) -> dict:
    config = config or {}
    return {
        "IPAMConfig": config.get("IPAMConfig") or None,
        "Links": config.get("Links") or None,
        "Aliases": config.get("Aliases") or None,
        "NetworkID": network["Id"],
        **_CLEARED,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DriverOpts": config.get("DriverOpts") or None,
    }


def _veth_name(container_id: str, network_id: str) -> str:
    return "veth" + hashlib.sha256((container_id + network_id).encode()).hexdigest()[:7]


class Endpoints:
    def __init__(self, engine, store: NetworkStore) -> None:
        self.engine = engine
        self.store = store
        self.held: dict[str, list[ports.Binding]] = {}
        self.dns = dns.DNSServer(self.resolve, self._upstreams)

    def netns_path(self, container_id: str) -> str:
        return str(self.engine.config.exec_root / "netns" / container_id)

    # -- create: which networks a container asks for -------------------------------------

    def attach_at_create(self, record: dict, networking: dict | None) -> None:
        mode = record["HostConfig"].get("NetworkMode") or "default"
        if mode.startswith("container:"):
            return
        name = "bridge" if mode == "default" else mode
        network = self.store.get(name)
        requested = dict((networking or {}).get("EndpointsConfig") or {})
        config = requested.pop(name, None) or requested.pop(mode, None) or {}
        if network["Name"] in PREDEFINED:
            if (config.get("IPAMConfig") or {}).get("IPv4Address"):
                raise InvalidArgument(
                    "user specified IP address is supported on user defined networks only"
                )
            if config.get("Aliases"):
                raise InvalidArgument(
                    "network-scoped alias is supported only for containers in user defined networks"
                )
        networks = {network["Name"]: endpoint_settings(network, config)}
        for other, other_config in requested.items():
            extra = self.store.get(other)
            networks[extra["Name"]] = endpoint_settings(extra, other_config)
        record["NetworkSettings"]["Networks"] = networks

    # -- start and stop ------------------------------------------------------------------

    async def setup(self, record: dict, namespaces: dict[str, str]) -> dict:
        mode = record["HostConfig"].get("NetworkMode") or "default"
        if mode == "host" or mode.startswith("container:"):
            return {}
        if mode == "none":
            return {}
        container_id = record["Id"]
        path = self.netns_path(container_id)
        try:
            netns.create(path)
        except NetworkError as error:
            raise engine_error(error) from None
        namespaces["network"] = path
        settings = record["NetworkSettings"]
        settings["SandboxKey"] = path
        settings["SandboxID"] = hashlib.sha256(path.encode()).hexdigest()
        result: dict = {"netns_path": path}
        try:
            for index, (name, endpoint) in enumerate(list(settings["Networks"].items())):
                network = self.store.get(endpoint.get("NetworkID") or name)
                self._join(record, network, endpoint, f"eth{index}", first=index == 0)
                if index == 0:
                    result.update(ip=endpoint["IPAddress"], gateway=endpoint["Gateway"])
                if network["Name"] not in PREDEFINED:
                    result["dns"] = dns.ADDRESS
            self._publish(record)
            if "dns" in result:
                await self.dns.listen(container_id, path)
        except BaseException:
            self.teardown(record)
            raise
        result["hosts"] = self._link_hosts(record)
        return result

    def _join(self, record: dict, network: dict, endpoint: dict, ifname: str, first: bool):
        container_id = record["Id"]
        path = self.netns_path(container_id)
        config = network["IPAM"]["Config"][0]
        requested = (endpoint.get("IPAMConfig") or {}).get("IPv4Address") or None
        address = self.store.allocate(network, container_id, requested)
        prefix = ipaddress.ip_network(config["Subnet"]).prefixlen
        mac = ipam.mac_for(address)
        gateway = config.get("Gateway") if first and not network["Internal"] else None
        try:
            if network["Driver"] == "bridge":
                mtu = int(network["Options"].get(MTU) or 0) or None
                links.add_veth(
                    _veth_name(container_id, network["Id"]),
                    self.store.bridge_name(network),
                    path,
                    ifname,
                    mtu,
                )
            else:
                mode = network["Options"].get(f"{network['Driver']}_mode") or (
                    "bridge" if network["Driver"] == "macvlan" else "l2"
                )
                links.add_subinterface(
                    network["Driver"], network["Options"]["parent"], path, ifname, mode
                )
                mac = mac if network["Driver"] == "macvlan" else None
            links.configure(path, ifname, address, prefix, mac, gateway)
        except NetworkError as error:
            self.store.release(container_id, network["Id"])
            raise engine_error(error) from None
        endpoint.update(
            EndpointID=hashlib.sha256(f"{container_id}{network['Id']}".encode()).hexdigest(),
            Gateway=config.get("Gateway") or "",
            IPAddress=address,
            IPPrefixLen=prefix,
            MacAddress=mac or "",
        )
        if network["Name"] == "bridge":
            record["NetworkSettings"].update({k: endpoint[k] for k in _TOP_LEVEL})

    def _publish(self, record: dict, restore: bool = False) -> None:
        """Hold the host ports and DNAT them to the container's first bridge address (after
        a daemon restart, the very ports the running container had)."""
        settings = record["NetworkSettings"]
        exposed = record["Config"].get("ExposedPorts")
        try:
            if restore:
                wanted = ports.from_settings(settings.get("Ports") or {})
            else:
                wanted = ports.requested(record["HostConfig"], exposed)
        except NetworkError as error:
            raise InvalidArgument(str(error)) from None
        target = next(
            (
                e["IPAddress"]
                for e in settings["Networks"].values()
                if e.get("IPAddress") and self._driver(e) == "bridge"
            ),
            None,
        )
        if not wanted or target is None:
            settings["Ports"] = ports.settings(exposed, [])
            return
        try:
            held = ports.reserve(wanted)
        except NetworkError as error:
            name = record["Name"].lstrip("/")
            raise engine_error(
                NetworkError(
                    f"driver failed programming external connectivity on endpoint {name} "
                    f"({_first_endpoint_id(record)}): {error}"
                )
            ) from None
        self.held[record["Id"]] = held
        self.store.published[record["Id"]] = [
            nft.Published(b.proto, b.host_ip, b.host_port, target, b.container_port) for b in held
        ]
        settings["Ports"] = ports.settings(exposed, held)
        self.store.apply_rules()

    def _driver(self, endpoint: dict) -> str:
        try:
            return self.store.get(endpoint["NetworkID"])["Driver"]
        except NotFound:
            return ""

    def teardown(self, record: dict) -> None:
        container_id = record["Id"]
        self.dns.stop(container_id)
        ports.release(self.held.pop(container_id, []))
        if self.store.published.pop(container_id, None) is not None:
            try:
                self.store.apply_rules()
            except EngineError as error:
                log.error("removing the published ports of %s: %s", container_id[:12], error)
        settings = record["NetworkSettings"]
        for endpoint in (settings.get("Networks") or {}).values():
            if endpoint.get("NetworkID"):
                links.remove(_veth_name(container_id, endpoint["NetworkID"]))
            endpoint.update(_CLEARED)
        netns.remove(self.netns_path(container_id))
        self.store.release(container_id)
        settings.update({k: ("" if k != "IPPrefixLen" else 0) for k in _TOP_LEVEL})
        settings.update(SandboxKey="", SandboxID="", Ports={})

    # -- connect and disconnect ------------------------------------------------------------

    async def connect(self, network_ref: str, container_ref: str, config: dict | None) -> None:
        network = self.store.get(network_ref)
        record = self.engine.containers.get(container_ref)
        mode = record["HostConfig"].get("NetworkMode") or "default"
        if mode == "host" or mode.startswith("container:") or network["Name"] in ("host", "none"):
            raise Forbidden(
                "container sharing network namespace with another container or host cannot "
                "be connected to any other network"
            )
        networks = record["NetworkSettings"]["Networks"]
        if mode == "none" or "none" in networks:
            raise Forbidden(
                "container cannot be disconnected from host network or connected to host network"
            )
        if network["Name"] in networks:
            raise Forbidden(
                f"endpoint with name {record['Name'].lstrip('/')} already exists in network "
                f"{network['Name']}"
            )
        if network["Name"] in PREDEFINED and (config or {}).get("Aliases"):
            raise InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        endpoint = endpoint_settings(network, config)
        if record["State"]["Running"]:
            ifname = _free_ifname(links.interface_names(self.netns_path(record["Id"])))
            self._join(record, network, endpoint, ifname, first=not networks)
            if network["Name"] not in PREDEFINED:
                await self.dns.listen(record["Id"], self.netns_path(record["Id"]))
        networks[network["Name"]] = endpoint
        self.engine.containers.save(record)
        self._event("connect", network, record)

    async def disconnect(self, network_ref: str, container_ref: str, force: bool) -> None:
        network = self.store.get(network_ref)
        try:
            record = self.engine.containers.get(container_ref)
        except NotFound:
            if force:
                return
            raise
        networks = record["NetworkSettings"]["Networks"]
        if network["Name"] not in networks:
            raise Forbidden(
                f"container {record['Id']} is not connected to network {network['Name']}"
            )
        if network["Name"] == "host" and record["State"]["Running"]:
            raise Forbidden(
                "container cannot be disconnected from host network or connected to host network"
            )
        endpoint = networks.pop(network["Name"])
        if record["State"]["Running"] and endpoint.get("IPAddress"):
            if network["Driver"] == "bridge":
                links.remove(_veth_name(record["Id"], network["Id"]))
            else:
                links.remove_with_address(self.netns_path(record["Id"]), endpoint["IPAddress"])
            self.store.release(record["Id"], network["Id"])
            if network["Name"] == "bridge":
                record["NetworkSettings"].update(
                    {k: ("" if k != "IPPrefixLen" else 0) for k in _TOP_LEVEL}
                )
        self.engine.containers.save(record)
        self._event("disconnect", network, record)

    def _event(self, action: str, network: dict, record: dict) -> None:
        self.engine.events.publish(
            "network",
            action,
            network["Id"],
            {"container": record["Id"], "name": network["Name"], "type": network["Driver"]},
        )

    # -- DNS -----------------------------------------------------------------------------

    def resolve(self, container_id: str, name: str) -> list[str] | None:
        """Addresses of `name` on the user networks of the asking container."""
        try:
            asking = self.engine.containers.get(container_id)
        except NotFound:
            return None
        mine = {
            e["NetworkID"]
            for n, e in asking["NetworkSettings"]["Networks"].items()
            if n not in PREDEFINED and e.get("IPAddress")
        }
        found = []
        for record in self.engine.containers.all():
            if not record["State"]["Running"]:
                continue
            for endpoint in record["NetworkSettings"]["Networks"].values():
                if endpoint.get("NetworkID") not in mine or not endpoint.get("IPAddress"):
                    continue
                names = {record["Name"].lstrip("/"), record["Id"][:12], record["Id"]}
                names |= set(endpoint.get("Aliases") or [])
                if name in {n.lower() for n in names}:
                    found.append(endpoint["IPAddress"])
        return found or None

    def _upstreams(self) -> list[str]:
        return _host_resolv()[0] or ["8.8.8.8"]

    def _link_hosts(self, record: dict) -> list[tuple[str, list[str]]]:
        """--link on the default bridge: the target's address under its alias and names."""
        entries = []
        for link in record["HostConfig"].get("Links") or []:
            target, _, alias = link.partition(":")
            try:
                other = self.engine.containers.get(target.lstrip("/"))
            except NotFound:
                raise InvalidArgument(f"could not get container for {target}") from None
            address = other["NetworkSettings"].get("IPAddress")
            if not other["State"]["Running"] or not address:
                raise Conflict(f"cannot link to a non running container: {other['Name']}")
            name = other["Name"].lstrip("/")
            alias = alias.rsplit("/", 1)[-1] or name
            entries.append((address, list(dict.fromkeys([alias, other["Id"][:12], name]))))
        return entries

    # -- daemon start ----------------------------------------------------------------------

    async def reconcile(self) -> None:
        """After a restart: running containers get their ports and DNS back; namespaces,
        veths and allocations of containers that no longer run are collected."""
        running = {r["Id"]: r for r in self.engine.containers.all() if r["State"]["Running"]}
        for path in netns.listing(str(self.engine.config.exec_root / "netns")):
            if os.path.basename(path) not in running:
                netns.remove(path)
        self.store.release_all_but(set(running))
        for record in running.values():
            if record["Id"] in self.held or not os.path.exists(self.netns_path(record["Id"])):
                continue
            try:
                self._publish(record, restore=True)
                if any(n not in PREDEFINED for n in record["NetworkSettings"]["Networks"]):
                    await self.dns.listen(record["Id"], self.netns_path(record["Id"]))
            except EngineError as error:
                log.error("restoring the network of %s: %s", record["Id"][:12], error)
        self.store.apply_rules()


def _free_ifname(existing: set[str]) -> str:
    index = 0
    while f"eth{index}" in existing:
        index += 1
    return f"eth{index}"


def _first_endpoint_id(record: dict) -> str:
    for endpoint in record["NetworkSettings"]["Networks"].values():
        if endpoint.get("EndpointID"):
            return endpoint["EndpointID"]
    return ""
