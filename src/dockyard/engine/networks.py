"""Networks: records in Docker's inspect shape persisted in SQLite, the predefined ones
(bridge, host, none), create/list/inspect/remove/prune, the address allocations of each,
and the host side of bridges (devices, our nftables table)."""

from __future__ import annotations

import ipaddress
import json
import os
import time
from collections.abc import Iterator

from dockyard.engine.errors import Conflict, EngineError, Forbidden, InvalidArgument, NotFound
from dockyard.engine.timefmt import parse_rfc3339
from dockyard.network import ipam, links, nft
from dockyard.network.errors import AddressInUse, NetworkError, PoolExhausted

PREDEFINED = ("bridge", "host", "none")
DRIVERS = ("bridge", "macvlan", "ipvlan")
BRIDGE_NAME = "com.docker.network.bridge.name"
MTU = "com.docker.network.driver.mtu"
ICC = "com.docker.network.bridge.enable_icc"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"


def engine_error(error: NetworkError) -> EngineError:
    if isinstance(error, AddressInUse):
        return Conflict(str(error))
    if isinstance(error, PoolExhausted):
        return Forbidden(str(error))
    return InvalidArgument(str(error))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000000Z"


def _new_network(name: str, driver: str, **fields) -> dict:
    network = {
        "Name": name,
        "Id": os.urandom(32).hex(),
        "Created": _now(),
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": []},
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Options": {},
        "Labels": {},
    }
    network.update(fields)
    return network


class NetworkStore:
    """The records and their allocations; the host side of bridge networks."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.db = engine.db
        self.config = engine.config
        self.table = nft.table_name(self.config.bridge)
        self.published: dict[str, list[nft.Published]] = {}  # container ID -> its DNATs

    # -- records -------------------------------------------------------------------------

    def all(self) -> list[dict]:
        rows = self.db.query("SELECT data FROM networks ORDER BY created")
        return [json.loads(row["data"]) for row in rows]

    def __iter__(self) -> Iterator[dict]:
        return iter(self.all())

    def get(self, ref: str) -> dict:
        networks = self.all()
        for match in (
            lambda n: n["Id"] == ref,
            lambda n: n["Name"] == ref,
            lambda n: n["Id"].startswith(ref),
        ):
            found = [n for n in networks if ref and match(n)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches found)")
        raise NotFound(f"network {ref} not found")

    def _save(self, network: dict) -> None:
        created = parse_rfc3339(network["Created"])
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO networks (id, name, created, data) VALUES (?, ?, ?, ?)",
                (network["Id"], network["Name"], created, json.dumps(network)),
            )

    # -- predefined networks and the host side ------------------------------------------

    def start(self) -> None:
        links.enable_forwarding()
        names = {n["Name"] for n in self.all()}
        if "bridge" not in names:
            self._save(self._default_bridge())
        elif self.config.bip:
            bridge = self.get("bridge")
            bridge["IPAM"]["Config"] = [self._bip_config()]
            self._save(bridge)
        if "host" not in names:
            self._save(_new_network("host", "host"))
        if "none" not in names:
            self._save(_new_network("none", "null"))
        for network in self.all():
            if network["Driver"] == "bridge":
                self.ensure_device(network)
        self.apply_rules()

    def _bip_config(self) -> dict:
        try:
            interface = ipaddress.IPv4Interface(self.config.bip)
        except ValueError:
            raise InvalidArgument(f"invalid --bip {self.config.bip}") from None
        return {"Subnet": str(interface.network), "Gateway": str(interface.ip)}

    def _default_bridge(self) -> dict:
        if self.config.bip:
            config = self._bip_config()
        else:
            subnet = self._free_subnet()
            config = {"Subnet": str(subnet), "Gateway": str(next(subnet.hosts()))}
        options = {
            "com.docker.network.bridge.default_bridge": "true",
            ICC: "true",
            MASQUERADE: "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            BRIDGE_NAME: self.config.bridge,
            MTU: "1500",
        }
        return _new_network(
            "bridge",
            "bridge",
            IPAM={"Driver": "default", "Options": None, "Config": [config]},
            Options=options,
        )

    def _free_subnet(self) -> ipaddress.IPv4Network:
        taken = links.host_routes()
        for network in self.all():
            for config in network["IPAM"]["Config"]:
                if config.get("Subnet"):
                    taken.append(ipaddress.ip_network(config["Subnet"]))
        try:
            return ipam.choose_subnet(self.config.default_address_pools, taken)
        except NetworkError as error:
            raise engine_error(error) from None

    def bridge_name(self, network: dict) -> str:
        return network["Options"].get(BRIDGE_NAME) or f"br-{network['Id'][:12]}"

    def ensure_device(self, network: dict) -> None:
        config = network["IPAM"]["Config"][0]
        subnet = ipaddress.ip_network(config["Subnet"])
        mtu = int(network["Options"].get(MTU) or 0) or None
        try:
            links.ensure_bridge(
                self.bridge_name(network), config.get("Gateway"), subnet.prefixlen, mtu
            )
        except NetworkError as error:
            raise engine_error(error) from None

    def apply_rules(self) -> None:
        bridges = [
            nft.Bridge(
                name=self.bridge_name(n),
                subnet=n["IPAM"]["Config"][0]["Subnet"],
                internal=n["Internal"],
                masquerade=n["Options"].get(MASQUERADE, "true") == "true",
                icc=n["Options"].get(ICC, "true") == "true",
            )
            for n in self.all()
            if n["Driver"] == "bridge"
        ]
        published = [p for rules in self.published.values() for p in rules]
        try:
            nft.apply(self.table, nft.Ruleset(bridges, published))
        except NetworkError as error:
            raise EngineError(str(error)) from None

    def stop(self, anything_running: bool) -> None:
        """At daemon stop with nothing left running, the host is left as we found it."""
        if anything_running:
            return
        for network in self.all():
            if network["Driver"] == "bridge":
                links.remove(self.bridge_name(network))
        nft.delete(self.table)

    # -- allocations ---------------------------------------------------------------------

    def allocate(self, network: dict, container_id: str, requested: str | None) -> str:
        config = network["IPAM"]["Config"][0]
        subnet = ipaddress.ip_network(config["Subnet"])
        ip_range = ipaddress.ip_network(config["IPRange"]) if config.get("IPRange") else None
        reserved = {config.get("Gateway"), *(config.get("AuxiliaryAddresses") or {}).values()}
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT address FROM ip_allocations WHERE network_id = ?", (network["Id"],)
            ).fetchall()
            used = {row["address"] for row in rows} | {a for a in reserved if a}
            try:
                address = ipam.allocate(subnet, used, ip_range, requested)
            except NetworkError as error:
                raise engine_error(error) from None
            conn.execute(
                "INSERT INTO ip_allocations (network_id, address, container_id) VALUES (?, ?, ?)",
                (network["Id"], address, container_id),
            )
        return address

    def release(self, container_id: str, network_id: str | None = None) -> None:
        with self.db.transaction() as conn:
            if network_id is None:
                conn.execute("DELETE FROM ip_allocations WHERE container_id = ?", (container_id,))
            else:
                conn.execute(
                    "DELETE FROM ip_allocations WHERE container_id = ? AND network_id = ?",
                    (container_id, network_id),
                )

    def release_all_but(self, container_ids: set[str]) -> None:
        """After a crash: allocations of containers that no longer run are freed."""
        rows = self.db.query("SELECT DISTINCT container_id FROM ip_allocations")
        for row in rows:
            if row["container_id"] not in container_ids:
                self.release(row["container_id"])

    # -- the API: create, inspect, list, remove, prune -----------------------------------

    def create(self, body: dict) -> dict:
        name = body.get("Name")
        if not name or not isinstance(name, str):
            raise InvalidArgument("network name must be specified")
        if name in PREDEFINED:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if any(n["Name"] == name for n in self.all()):
            raise Conflict(f"network with name {name} already exists")
        driver = body.get("Driver") or "bridge"
        if driver not in DRIVERS:
            raise NotFound(f'plugin "{driver}" not found')
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        if driver != "bridge":
            parent = options.get("parent")
            if not parent or not links.exists(parent):
                raise InvalidArgument(f"-o parent interface was not found on the host: {parent}")
        network = _new_network(
            name,
            driver,
            IPAM={
                "Driver": "default",
                "Options": (body.get("IPAM") or {}).get("Options") or {},
                "Config": self._ipam_configs((body.get("IPAM") or {}).get("Config") or []),
            },
            Internal=bool(body.get("Internal")),
            Attachable=bool(body.get("Attachable")),
            Options=options,
            Labels=body.get("Labels") or {},
        )
        if driver == "bridge":
            bridge = self.bridge_name(network)
            if any(self.bridge_name(n) == bridge for n in self.all() if n["Driver"] == "bridge"):
                raise Conflict(f"bridge name {bridge} is used by another network")
            self.ensure_device(network)
        self._save(network)
        try:
            self.apply_rules()
        except EngineError:
            self._destroy(network)
            raise
        self.engine.events.publish(
            "network", "create", network["Id"], {"name": name, "type": driver}
        )
        return network

    def _ipam_configs(self, configs: list) -> list[dict]:
        if not isinstance(configs, list) or len(configs) > 1:
            raise InvalidArgument("only one IPv4 IPAM configuration is supported")
        if not configs:
            subnet = self._free_subnet()
            return [{"Subnet": str(subnet), "Gateway": str(next(subnet.hosts()))}]
        config = configs[0] or {}
        try:
            if not config.get("Subnet"):
                raise NetworkError("a subnet is required with an IP range or gateway")
            subnet = ipam.parse_subnet(config["Subnet"])
            for other in self.all():
                for used in other["IPAM"]["Config"]:
                    if used.get("Subnet") and subnet.overlaps(ipaddress.ip_network(used["Subnet"])):
                        raise AddressInUse("Pool overlaps with other one on this address space")
            result = {"Subnet": str(subnet)}
            if config.get("IPRange"):
                ip_range = ipam.parse_subnet(config["IPRange"])
                if not ip_range.subnet_of(subnet):
                    raise NetworkError(f"invalid ip-range {ip_range}: not within {subnet}")
                result["IPRange"] = str(ip_range)
            gateway = config.get("Gateway") or str(next(subnet.hosts()))
            result["Gateway"] = str(ipam.parse_address(gateway, subnet))
            aux = config.get("AuxiliaryAddresses") or {}
            for address in aux.values():
                ipam.parse_address(address, subnet)
            if aux:
                result["AuxiliaryAddresses"] = dict(aux)
        except NetworkError as error:
            raise engine_error(error) from None
        return [result]

    def inspect(self, ref: str) -> dict:
        network = self.get(ref)
        network["Containers"] = {
            record["Id"]: {
                "Name": record["Name"].lstrip("/"),
                "EndpointID": endpoint["EndpointID"],
                "MacAddress": endpoint["MacAddress"],
                "IPv4Address": f"{endpoint['IPAddress']}/{endpoint['IPPrefixLen']}"
                if endpoint["IPAddress"]
                else "",
                "IPv6Address": "",
            }
            for record, endpoint in self.endpoints(network["Id"])
        }
        return network

    def endpoints(self, network_id: str) -> list[tuple[dict, dict]]:
        """(container record, endpoint settings) of the running containers on a network."""
        found = []
        for record in self.engine.containers.all():
            if not record["State"]["Running"]:
                continue
            for endpoint in (record["NetworkSettings"].get("Networks") or {}).values():
                if endpoint.get("NetworkID") == network_id and endpoint.get("EndpointID"):
                    found.append((record, endpoint))
        return found

    def list(self, wanted: dict[str, list[str]]) -> list[dict]:
        checks = {
            "name": lambda n, v: v in n["Name"],
            "id": lambda n, v: n["Id"].startswith(v),
            "driver": lambda n, v: n["Driver"] == v,
            "scope": lambda n, v: n["Scope"] == v,
            "type": lambda n, v: (n["Name"] in PREDEFINED) == (v == "builtin"),
            "label": lambda n, v: _label_matches(v, n["Labels"] or {}),
            "dangling": lambda n, v: self._unused(n) == (v in ("true", "1")),
        }
        unknown = set(wanted) - set(checks)
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        networks = self.all()
        for key, values in wanted.items():
            networks = [n for n in networks if any(checks[key](n, v) for v in values)]
        return [{**n, "Containers": {}} for n in networks]

    def _unused(self, network: dict) -> bool:
        return network["Name"] not in PREDEFINED and not self.endpoints(network["Id"])

    def remove(self, ref: str) -> None:
        network = self.get(ref)
        if network["Name"] in PREDEFINED:
            raise Forbidden(f"{network['Name']} is a pre-defined network and cannot be removed")
        if self.endpoints(network["Id"]):
            raise Forbidden(
                f"error while removing network: network {network['Name']} id "
                f"{network['Id']} has active endpoints"
            )
        self._destroy(network)
        self.apply_rules()
        self.engine.events.publish(
            "network",
            "destroy",
            network["Id"],
            {"name": network["Name"], "type": network["Driver"]},
        )

    def _destroy(self, network: dict) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM networks WHERE id = ?", (network["Id"],))
        if network["Driver"] == "bridge":
            links.remove(self.bridge_name(network))

    def prune(self, wanted: dict[str, list[str]]) -> dict:
        deleted = []
        until = wanted.pop("until", None)
        for network in self.list(wanted):
            if not self._unused(network):
                continue
            if until and parse_rfc3339(network["Created"]) >= _until(until[0]):
                continue
            self.remove(network["Id"])
            deleted.append(network["Name"])
        return {"NetworksDeleted": deleted or None}


def _label_matches(wanted: str, labels: dict) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _until(text: str) -> float:
    if text.isdigit():
        return float(text)
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise InvalidArgument(f"invalid until filter: {text}") from None
