"""The /etc/hosts and /etc/resolv.conf a container gets, written as Docker writes them."""

from __future__ import annotations

import ipaddress
import re

HOST_RESOLV_CONF = "/etc/resolv.conf"
# Docker's fallback when the host's resolvers are all on loopback (unreachable from a netns).
FALLBACK_DNS = ["8.8.8.8", "8.8.4.4"]

_HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def hosts(record: dict, network: dict, host_network: bool) -> str:
    if host_network:
        try:
            with open("/etc/hosts") as f:
                return f.read()
        except OSError:
            return _HOSTS_HEADER
    lines = [_HOSTS_HEADER]
    for entry in record["HostConfig"].get("ExtraHosts") or []:
        name, _, address = entry.rpartition(":")
        if not name:
            continue
        if address == "host-gateway":
            address = network.get("gateway") or "127.0.0.1"
        lines.append(f"{address}\t{name}\n")
    for address, names in network.get("hosts", []):
        lines.append(f"{address}\t{' '.join(names)}\n")
    if network.get("ip"):
        config = record["Config"]
        name = config["Hostname"]
        if config.get("Domainname"):
            name = f"{name}.{config['Domainname']} {name}"
        lines.append(f"{network['ip']}\t{name}\n")
    return "".join(lines)


def _host_resolv() -> tuple[list[str], list[str], list[str]]:
    nameservers, search, options = [], [], []
    try:
        with open(HOST_RESOLV_CONF) as f:
            text = f.read()
    except OSError:
        text = ""
    for line in text.splitlines():
        fields = re.split(r"\s+", line.strip())
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return nameservers, search, options


def resolv_conf(host_config: dict, network: dict) -> str:
    nameservers, search, options = _host_resolv()
    if host_config.get("NetworkMode") != "host":
        nameservers = [ns for ns in nameservers if not _loopback(ns)]
        if network.get("dns"):
            nameservers = [network["dns"]]
    if host_config.get("Dns"):
        nameservers = list(host_config["Dns"])
    if host_config.get("DnsSearch"):
        search = list(host_config["DnsSearch"])
    if host_config.get("DnsOptions"):
        options = list(host_config["DnsOptions"])
    if not nameservers:
        nameservers = list(FALLBACK_DNS)
    lines = [f"nameserver {ns}" for ns in nameservers]
    if search and search != ["."]:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False
