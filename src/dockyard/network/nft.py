"""Our nftables table: NAT and filtering for our bridges, rebuilt whole from the daemon's
state on every change (one atomic `nft -f -` transaction), so nothing stale survives.

Other tables are never touched, except that an iptables-nft FORWARD chain (`ip filter`)
with a DROP policy gets accept rules for our bridges, tagged with our comment and removed
again when we no longer need them: a base chain's accept does not stop another table's
chain from dropping the packet."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field

from dockyard.network.errors import NetworkError


@dataclass
class Bridge:
    name: str
    subnet: str
    internal: bool = False
    masquerade: bool = True
    icc: bool = True


@dataclass
class Published:
    proto: str  # tcp or udp
    host_ip: str  # "" or 0.0.0.0 for every local address
    host_port: int
    container_ip: str
    container_port: int


@dataclass
class Ruleset:
    bridges: list[Bridge] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)


def table_name(bridge: str) -> str:
    """One table per daemon, named after its default bridge, so daemons coexist."""
    return "dockyard_" + re.sub(r"[^A-Za-z0-9_]", "_", bridge)


def _quote(name: str) -> str:
    return json.dumps(name)


def render(table: str, rules: Ruleset) -> str:
    names = [_quote(b.name) for b in rules.bridges]
    lines = [f"table ip {table} {{}}", f"delete table ip {table}", f"table ip {table} {{"]
    published = []
    hairpin = []
    for p in rules.published:
        match = f"ip daddr {p.host_ip} " if p.host_ip not in ("", "0.0.0.0") else ""
        published.append(
            f"{match}{p.proto} dport {p.host_port} dnat to {p.container_ip}:{p.container_port}"
        )
        hairpin.append(
            f"ip saddr {p.container_ip} ip daddr {p.container_ip} "
            f"{p.proto} dport {p.container_port} masquerade"
        )
    lines += ["chain published {", *published, "}"]
    # dstnat is -100; nft only knows the keyword at prerouting.
    for hook in ("prerouting", "output"):
        lines += [
            f"chain {hook} {{ type nat hook {hook} priority -100; policy accept;",
            "fib daddr type local jump published",
            "}",
        ]
    postrouting = list(hairpin)
    forward = []
    for b in rules.bridges:
        name = _quote(b.name)
        # Localhost DNATed to a container leaves by the bridge: give it a routable source.
        postrouting.append(f"oifname {name} ip saddr 127.0.0.0/8 masquerade")
        if b.masquerade and not b.internal:
            postrouting.append(f"ip saddr {b.subnet} oifname != {name} masquerade")
        if b.internal:
            forward.append(f"iifname {name} oifname != {name} drop")
            forward.append(f"oifname {name} iifname != {name} drop")
        if not b.icc:
            forward.append(f"iifname {name} oifname {name} drop")
        others = [n for n in names if n != name]
        if others:
            forward.append(f"iifname {name} oifname {{ {', '.join(others)} }} drop")
    if names:
        bridge_set = "{ " + ", ".join(names) + " }"
        forward += [
            f"iifname {bridge_set} accept",
            f"oifname {bridge_set} ct state established,related accept",
            f"oifname {bridge_set} ct status dnat accept",
        ]
    lines += [
        "chain postrouting { type nat hook postrouting priority srcnat; policy accept;",
        *postrouting,
        "}",
        "chain forward { type filter hook forward priority filter; policy accept;",
        *forward,
        "}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _nft(script: str | None, *args: str) -> str:
    result = subprocess.run(
        ["nft", *args, *(["-f", "-"] if script is not None else [])],
        input=script,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise NetworkError(f"nft: {result.stderr.strip()}")
    return result.stdout


def apply(table: str, rules: Ruleset) -> None:
    _nft(render(table, rules))
    _sync_forward_accepts(table, [b.name for b in rules.bridges])


def delete(table: str) -> None:
    _nft(f"table ip {table} {{}}\ndelete table ip {table}\n")
    _sync_forward_accepts(table, [])


def _sync_forward_accepts(table: str, bridges: list[str]) -> None:
    """Our accept rules at the top of iptables-nft's FORWARD chain when it drops by policy."""
    try:
        listing = json.loads(_nft(None, "-j", "-a", "list", "chain", "ip", "filter", "FORWARD"))
    except (NetworkError, ValueError):
        return  # no such chain: nothing of others' to get past
    chain = next((i["chain"] for i in listing["nftables"] if "chain" in i), {})
    ours = [
        i["rule"]["handle"]
        for i in listing["nftables"]
        if "rule" in i and i["rule"].get("comment") == table
    ]
    script = [f"delete rule ip filter FORWARD handle {h}" for h in ours]
    if chain.get("policy") == "drop":
        for name in bridges:
            for direction in ("iifname", "oifname"):
                script.append(
                    f"insert rule ip filter FORWARD {direction} {_quote(name)} accept "
                    f"comment {_quote(table)}"
                )
    if script:
        _nft("\n".join(script) + "\n")
