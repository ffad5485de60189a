"""Node checks: forwarding and bridge-netfilter sysctls, port range, MTUs, CIDR overlaps."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from .proxymode import ProxyMode
from .proxymode import parse as parse_proxy_mode
from .routeget import RouteLookup
from .routeget import parse as parse_routes

SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
           "net.ipv4.ip_local_port_range",
           # IPv6's twins, which a dual-stack cluster's IPv6 pod traffic needs (judged in
           # the IPv6 family's place: judge.family)
           "net.ipv6.conf.all.forwarding", "net.bridge.bridge-nf-call-ip6tables")


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
    encapsulation: "Encapsulation | None" = None  # None: the links were not read
    # How the node routes each peer's pod (probes.routeget); None: not looked up.
    routes: tuple[RouteLookup, ...] | None = None
    # kube-proxy's mode (probes.proxymode); None: not asked (older runs).
    kube_proxy: ProxyMode | None = None

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


def parse(node: str, sysctl_out: str, addr_out: str, links_out: str | None = None,
          routes_out: str | None = None, proxy_out: str | None = None) -> NodeCheckResult:
    """``links_out``: ``ip -d -o link show`` (see :func:`parse_links`); ``routes_out``: the
    peers' route lookups (:func:`.routeget.script`); ``proxy_out``: kube-proxy's mode
    (:data:`.proxymode.COMMAND`); None when not run."""
    values: dict[str, str | None] = {}
    for line in sysctl_out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in SYSCTLS:
            value = " ".join(value.split())
            values[key] = None if value == "?" else value
    interfaces = []
    for link in json.loads(addr_out or "[]"):
        # IPv6 too (an IPv6 Pod CIDR can overlap a node network), but not link-local
        # addresses: every interface has one and no cluster routes them.
        addrs = tuple(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                      if a.get("family") in ("inet", "inet6") and a.get("scope") != "link")
        interfaces.append(Interface(link["ifname"], int(link.get("mtu", 0)), addrs))
    return NodeCheckResult(node=node, sysctls=values, interfaces=tuple(interfaces),
                           encapsulation=None if links_out is None else parse_links(links_out),
                           routes=None if routes_out is None else parse_routes(routes_out),
                           kube_proxy=None if proxy_out is None else parse_proxy_mode(
                               proxy_out, links_out or ""))


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


# -- encapsulation: what the CNI put on the node's host network ---------------------------
#
# Read from ``ip -d -o link show`` (one line per link, ``\`` where ip would break lines):
# the link kind (vxlan, geneve, ipip, wireguard, bridge, veth) is the first word of a
# detail segment, a VXLAN/Geneve device names its UDP port (``dstport``), and a port of a
# bridge says ``master <bridge>``. WireGuard does not print its listen port there, so the
# well-known port of the CNI that owns the device is used. Where the kernel has no
# WireGuard, the CNI runs wireguard-go, whose device is a ``tun`` link: one named like a
# CNI's WireGuard device is counted as WireGuard (cni-notes §4.3: flannel-wg as tun).

# Well-known WireGuard listen ports by device name: flannel's ListenPort/ListenPortV6
# defaults (pkg/backend/wireguard/wireguard.go), Calico's wireguardListeningPort(IPv6)
# defaults, Cilium's fixed 51871.
WIREGUARD_PORTS = {"flannel-wg": 51820, "flannel-wg-v6": 51821, "wireguard.cali": 51820,
                   "wg-v6.cali": 51821, "cilium_wg0": 51871}
# The devices that carry IPv6 pod traffic over an IPv6 underlay: their outer header is
# 40 bytes, not 20, so WireGuard adds 80 there (20/40 IP + 8 UDP + 32 WireGuard).
WIREGUARD_V6 = ("flannel-wg-v6", "wg-v6.cali")
DEFAULT_PORTS = {"vxlan": 4789, "geneve": 6081, "wireguard": 51820}
# Bytes each encapsulation adds to a pod packet on an IPv4 underlay: what a pod MTU has to
# leave room for (VXLAN/Geneve: outer IP 20 + UDP 8 + header 8 + inner Ethernet 14).
# Geneve: 50 without options (a CNI's options add to it). WireGuard: 60 (IPv4, see
# WIREGUARD_V6); flannel reserves 80 on both families when it sizes its device (its
# wireguard_network.go ``overhead = 80``), so its pods sit 20 bytes below what IPv4 needs.
OVERHEAD = {"vxlan": 50, "geneve": 50, "ipip": 20, "wireguard": 60, "none": 0}
OVERHEAD_WIREGUARD_V6 = 80
# VXLAN and Geneve over an IPv6 underlay (flannel-v6.1, a device whose ``local`` or
# ``remote`` is an IPv6 address): the outer header is 40 bytes, not 20.
OVERHEAD_V6_UNDERLAY = {"vxlan": 70, "geneve": 70}
NOT_POD_BRIDGES = ("docker0",)
# WireGuard first: where it is on (Calico, Cilium) pod traffic between nodes goes through
# it even when a VXLAN device exists too, so its port is the one on the wire.
TUNNEL_KINDS = ("wireguard", "vxlan", "geneve", "ipip")
# Which CNI a device name points at (first match wins; for the report only).
CNI_BY_DEVICE = (("flannel", "flannel"), ("cni0", "flannel"), ("vxlan.calico", "calico"),
                 ("wireguard.cali", "calico"), ("tunl0", "calico"), ("cali", "calico"),
                 ("cilium", "cilium"), ("lxc", "cilium"), ("weave", "weave"),
                 ("kube-bridge", "kube-router"), ("antrea", "antrea"), ("ovn", "ovn-kubernetes"))


@dataclass(frozen=True)
class Tunnel:
    name: str
    kind: str  # vxlan, geneve, ipip or wireguard
    port: int | None  # UDP port on the wire; None for IPIP (IP protocol 4)
    mtu: int
    overhead: int = 0  # bytes it adds to a pod packet on the wire
    underlay: str = "ipv4"  # the family of its outer header (ipv6: flannel-v6.1, wg-v6)

    @property
    def protocol(self) -> str:
        """What it puts on the wire: ``UDP 8472`` or ``IP protocol 4``."""
        return f"UDP {self.port}" if self.port is not None else "IP protocol 4"


@dataclass(frozen=True)
class Encapsulation:
    """How pod traffic leaves a node: its tunnel devices, and whether pods sit on a bridge."""

    tunnels: tuple[Tunnel, ...]
    bridges: tuple[str, ...]  # bridges with at least one veth port (pods plugged into them)
    cni: str | None  # guessed from device names; None when nothing known was seen
    measured: bool = True  # False: no link list could be read, nothing is known

    @property
    def kind(self) -> str:
        """The main tunnel's kind (in TUNNEL_KINDS order), ``none`` when
        there is no tunnel (host-gw, BGP routing), ``unknown`` when not measured."""
        if not self.measured:
            return "unknown"
        kinds = [t.kind for t in self.tunnels]
        return next((k for k in TUNNEL_KINDS if k in kinds), "none")

    @property
    def udp_ports(self) -> tuple[int, ...]:
        return tuple(sorted({t.port for t in self.tunnels if t.port is not None}))

    @property
    def udp_port(self) -> int | None:
        """The overlay's UDP port on the wire: the main tunnel kind's (None for IPIP or no
        tunnel)."""
        ports = [t.port for t in self.tunnels if t.kind == self.kind and t.port is not None]
        return min(ports) if ports else None

    @property
    def overhead(self) -> int | None:
        """Bytes the main tunnel adds to a pod packet (the smallest of its kind: a
        dual-stack node's IPv4 device); None when not measured."""
        if not self.measured:
            return None
        found = [t.overhead for t in self.tunnels if t.kind == self.kind]
        return min(found) if found else OVERHEAD.get(self.kind)

    @property
    def bridged(self) -> bool | None:
        return bool(self.bridges) if self.measured else None

    def describe(self) -> str:
        """``flannel: vxlan flannel.1 UDP 8472, bridged (cni0)``, for messages and reports."""
        if not self.measured:
            return "not detected (no link list from the node)"
        parts = [f"{t.kind} {t.name} {t.protocol}" for t in self.tunnels] or [
            "no encapsulation (routed)"]
        text = ", ".join(parts) + (f", bridged ({', '.join(self.bridges)})" if self.bridges
                                   else ", not bridged")
        return f"{self.cni}: {text}" if self.cni else text

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "udp_port": self.udp_port, "udp_ports": list(self.udp_ports),
                "tunnels": [{"name": t.name, "kind": t.kind, "port": t.port, "mtu": t.mtu,
                             "overhead": t.overhead,
                             # said only where it is not IPv4, so IPv4 documents stay as they were
                             **({"underlay": t.underlay} if t.underlay != "ipv4" else {})}
                            for t in self.tunnels],
                "bridged": self.bridged, "bridges": list(self.bridges), "cni": self.cni,
                "overhead": self.overhead, "measured": self.measured,
                "description": self.describe()}


def links_argv() -> list[str]:
    return ["ip", "-d", "-o", "link", "show"]


def parse_links(text: str) -> Encapsulation:
    """The node's encapsulation from ``ip -d -o link show`` output (see above); ``ip -d
    link show`` without ``-o`` reads the same (its continuation lines are joined)."""
    tunnels: list[Tunnel] = []
    masters: dict[str, str] = {}  # port -> its bridge
    kinds: dict[str, str] = {}
    names: list[str] = []
    lines: list[str] = []
    for raw in text.splitlines():
        if raw[:1].isspace() and lines:
            lines[-1] += "\\" + raw
        else:
            lines.append(raw)
    for line in lines:
        head, _, rest = line.partition(": ")
        if not head.strip().isdigit() or not rest:
            continue
        name = rest.split(":", 1)[0].split("@", 1)[0].strip()
        segments = [s.split() for s in rest.split("\\")]
        first = segments[0]
        mtu = int(first[first.index("mtu") + 1]) if "mtu" in first[:-1] else 0
        if "master" in first[:-1]:
            masters[name] = first[first.index("master") + 1]
        names.append(name)
        flags = next((w.strip("<>").split(",") for w in first if w.startswith("<")), [])
        # The kind is the first word of the first detail segment after link/...; later
        # segments are bridge_slave, alias and the like.
        details = [s for s in segments[1:] if s and not s[0].startswith("link/")]
        kind = details[0][0] if details else ""
        kinds[name] = kind
        words = details[0] if details else []
        # tunl0 appears (down) wherever the ipip module is loaded: only an UP one is a CNI's.
        # A VXLAN, Geneve or WireGuard device is made by the CNI on purpose: down (the CNI
        # not up yet), it still names the port its overlay uses.
        if kind in ("vxlan", "geneve"):
            port = (int(words[words.index("dstport") + 1]) if "dstport" in words[:-1]
                    and words[words.index("dstport") + 1].isdigit() else DEFAULT_PORTS[kind])
            if _ipv6_underlay(words):
                tunnels.append(Tunnel(name, kind, port, mtu, OVERHEAD_V6_UNDERLAY[kind], "ipv6"))
            else:
                tunnels.append(Tunnel(name, kind, port, mtu, OVERHEAD[kind]))
        elif kind == "ipip" and "UP" in flags:
            tunnels.append(Tunnel(name, "ipip", None, mtu, OVERHEAD["ipip"]))
        elif kind == "wireguard" or (kind == "tun" and name in WIREGUARD_PORTS):
            v6 = name in WIREGUARD_V6
            tunnels.append(Tunnel(name, "wireguard", WIREGUARD_PORTS.get(
                name, DEFAULT_PORTS["wireguard"]), mtu, OVERHEAD_WIREGUARD_V6
                if v6 else OVERHEAD["wireguard"], "ipv6" if v6 else "ipv4"))
    # docker0 carries containers started outside Kubernetes, not pods.
    bridges = sorted({b for port, b in masters.items() if kinds.get(port) == "veth"
                      and kinds.get(b) == "bridge" and b not in NOT_POD_BRIDGES})
    cni = next((c for prefix, c in CNI_BY_DEVICE for n in names if n.startswith(prefix)), None)
    return Encapsulation(tuple(tunnels), tuple(bridges), cni, measured=bool(names))


def _ipv6_underlay(words: list[str]) -> bool:
    """A VXLAN or Geneve device's details name an IPv6 ``local`` or ``remote`` address."""
    return any(w in ("local", "remote", "group") and i + 1 < len(words)
               and ":" in words[i + 1] for i, w in enumerate(words))


UDP_SOCKETS_COMMAND = "cat /proc/net/udp /proc/net/udp6"


def bound_udp_ports(text: str) -> frozenset[int]:
    """Local UDP ports with a socket on them, from ``/proc/net/udp`` and ``/proc/net/udp6``
    (a kernel VXLAN or Geneve device's socket is listed there too)."""
    found: set[int] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[0].rstrip(":").isdigit() and ":" in fields[1]:
            try:
                found.add(int(fields[1].rsplit(":", 1)[1], 16))
            except ValueError:
                continue
    return frozenset(found)


def encapsulation_from(entry: dict[str, object] | None) -> dict[str, object]:
    """A document's ``encapsulation`` entry, or the unknown one when missing."""
    return dict(entry) if entry else Encapsulation((), (), None, measured=False).as_dict()
