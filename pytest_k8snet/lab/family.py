"""The lab's IP families (``--ip-family ipv4|ipv6|dual``): the IPv6 addresses a lab gets.

Every IPv6 address is a unique local one (fd00::/8, RFC 4193): never routed, and nothing
in the lab is connected to the host's namespace anyway. The shapes follow a dual-stack
flannel cluster: each node a /64 of the IPv6 Pod CIDR (flannel's IPv6Network), its VTEP
the /64's network address on a second VXLAN device ``flannel-v6.1`` over the IPv6
underlay, the Service a second ClusterIP from an IPv6 Service CIDR.

In every family the nodes keep their IPv4 underlay address: the lab's own plumbing (the
management network of ``--kubernetes``, the faults' rules on eth0) stays on it. The
*cluster* of an ``ipv6`` lab is IPv6 only: its pods, Service, overlay and DNS have no
IPv4 address, and the backend reports only the IPv6 node addresses.
"""

from __future__ import annotations

import ipaddress
from typing import Any

IP_FAMILIES = ("ipv4", "ipv6", "dual")
NODE_CIDR6 = ipaddress.IPv6Network("fd00:28:128::/64")
POD_CIDR6 = ipaddress.IPv6Network("fd00:10:244::/56")  # a /64 per node: 256 nodes
SERVICE_CIDR6 = "fd00:10:96::/112"
SERVICE_IP6 = "fd00:10:96::6401"
KUBERNETES_SERVICE_IP6 = "fd00:10:96::1"
EXT_CIDR6 = ipaddress.IPv6Network("fd00:198:18::/64")  # the world and DNS side of the gateway
VXLAN6_DEVICE = "flannel-v6.1"  # flannel's name for its IPv6 VXLAN device
# VXLAN over an IPv6 underlay: outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14.
VXLAN6_OVERHEAD = 70


def families(ip_family: str) -> tuple[str, ...]:
    """The families a cluster of ``ip_family`` has, primary first (as Kubernetes orders
    podIPs: the first is the one podIP names)."""
    return {"ipv4": ("ipv4",), "ipv6": ("ipv6",), "dual": ("ipv4", "ipv6")}[ip_family]


def of_lab(spec: dict[str, Any]) -> str:
    """A lab record's family; one written before ``--ip-family`` existed is IPv4 only."""
    return str(spec.get("ip_family", "ipv4"))


def has_ipv6(spec: dict[str, Any]) -> bool:
    return "ipv6" in families(of_lab(spec))


def has_ipv4(spec: dict[str, Any]) -> bool:
    return "ipv4" in families(of_lab(spec))


def node_addresses(index: int) -> dict[str, str]:
    """IPv6 addresses of node ``index`` (1-based): underlay, pod /64, VTEP, pods."""
    sub = list(POD_CIDR6.subnets(new_prefix=64))[index - 1]
    base = sub.network_address
    return {"ip6": str(NODE_CIDR6.network_address + 10 + index), "pod_cidr6": str(sub),
            "pod_gateway6": str(base + 1), "vtep_ip6": str(base),
            "vtep_mac6": f"0e:8e:06:00:{index >> 8:02x}:{index & 0xff:02x}",
            "probe_ip6": str(base + 2), "echo_ip6": str(base + 3)}


def edge_addresses() -> dict[str, str]:
    """The gateway's two IPv6 sides and the world and DNS hosts' addresses."""
    ext = EXT_CIDR6.network_address
    return {"gw_ip6": str(NODE_CIDR6.network_address + 0xfffe), "gw_ext_ip6": str(ext + 1),
            "world_ip6": str(ext + 10), "dns_ip6": str(ext + 0x53)}
