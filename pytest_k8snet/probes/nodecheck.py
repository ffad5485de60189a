"""Node checks: forwarding and bridge-netfilter sysctls, port range, MTUs, CIDR overlaps."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
           "net.ipv4.ip_local_port_range")


@dataclass(frozen=True)
class Interface:
    name: str
    mtu: int
    addresses: tuple[str, ...]  # CIDR form, e.g. 172.28.128.11/24


@dataclass(frozen=True)
class NodeCheckResult:
    node: str
    sysctls: dict[str, str | None]
    interfaces: tuple[Interface, ...]

    @property
    def ip_forward(self) -> bool | None:
        v = self.sysctls.get("net.ipv4.ip_forward")
        return None if v is None else v.strip() == "1"

    @property
    def bridge_nf_call_iptables(self) -> bool | None:
        """None when br_netfilter is not loaded at all (the key does not exist)."""
        v = self.sysctls.get("net.bridge.bridge-nf-call-iptables")
        return None if v is None else v.strip() == "1"

    @property
    def port_range(self) -> tuple[int, int] | None:
        v = self.sysctls.get("net.ipv4.ip_local_port_range")
        if not v:
            return None
        lo, hi = v.split()[:2]
        return int(lo), int(hi)


def sysctl_argv() -> list[str]:
    # One line per key, "?" when the key does not exist (br_netfilter not loaded).
    script = "; ".join(
        f"printf '%s=' {k}; cat /proc/sys/{k.replace('.', '/')} 2>/dev/null || echo '?'"
        for k in SYSCTLS)
    return ["sh", "-c", script]


def addr_argv() -> list[str]:
    return ["ip", "-j", "addr", "show"]


def parse(node: str, sysctl_out: str, addr_out: str) -> NodeCheckResult:
    values: dict[str, str | None] = {}
    for line in sysctl_out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in SYSCTLS:
            value = " ".join(value.split())
            values[key] = None if value == "?" else value
    interfaces = []
    for link in json.loads(addr_out or "[]"):
        addrs = tuple(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                      if a.get("family") == "inet")
        interfaces.append(Interface(link["ifname"], int(link.get("mtu", 0)), addrs))
    return NodeCheckResult(node=node, sysctls=values, interfaces=tuple(interfaces))


def cidr_overlaps(node_addresses: list[str], pod_cidrs: list[str],
                  service_cidr: str | None = None) -> list[str]:
    """Human-readable overlaps between node networks and the Pod or Service CIDRs."""
    problems = []
    cluster = [("Pod CIDR", c) for c in pod_cidrs] + (
        [("Service CIDR", service_cidr)] if service_cidr else [])
    seen = set()
    for addr in node_addresses:
        iface = ipaddress.ip_interface(addr)
        if iface.ip.is_loopback:
            continue
        for label, cidr in cluster:
            net = ipaddress.ip_network(cidr, strict=False)
            if net.overlaps(iface.network) and (str(iface.network), cidr) not in seen:
                seen.add((str(iface.network), cidr))
                problems.append(f"node network {iface.network} (address {iface.ip}) overlaps "
                                f"the {label} {cidr}")
    return problems
