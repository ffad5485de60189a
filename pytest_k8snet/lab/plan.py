"""What a lab is made of: the spec a user asks for and every name and address it gets.

:func:`plan` computes the whole lab (namespaces, addresses, the Service, DNS names) from a
:class:`LabSpec` without touching the host, so a lab's nodes are known before it is built.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

from . import family as fam
from .kube import mgmt as kube_mgmt
from .netns import LabError
from .state import PREFIX, Lab

VXLAN_PORT = 8472
PROBE_PORT = 8080
KUBELET_PORT = 10250
WORLD_PORT = 80
EXT_CIDR = ipaddress.ip_network("198.18.0.0/24")  # RFC 2544 benchmarking range: never routed
SERVICE_IP = "10.96.100.1"
SERVICE_PORT = 80
# The Service's NodePort, in kube-proxy's default range 30000-32767 (what firewalls close).
SERVICE_NODE_PORT = 30080
SERVICE_NAME = "k8snet-probe"
KUBERNETES_SERVICE_IP = "10.96.0.1"
EXTERNAL_NAME = "world.example.com"
CLUSTER_DOMAIN = "cluster.local"
RESERVED_WORDS = {"node", "sw", "gw", "world", "dns", "probe", "echo"}
# 128 nodes (388 namespaces) build in seconds and, with permanent neighbour entries (which
# the kernel's neighbour garbage collection does not count against gc_thresh3), add no
# dynamic entry to the host's neighbour table; see netns.host_limits() for what else could
# bind. The default node network 172.28.128.0/24 holds them (.12 .. .139; the gateway .254)
# and the Pod CIDR 10.244.0.0/16 a /24 each.
MAX_NODES = 128
# With IPv6 on, each interface joins solicited-node multicast groups, and those entries
# count in the kernel's IPv6 neighbour table, shared by every namespace on the host
# (netns.IPV6_OFF): 16 nodes keep an IPv6 lab well inside it.
MAX_NODES_IPV6 = 16
# How pod traffic crosses between nodes, as flannel's backends do it: ``vxlan`` through a
# VXLAN device (flannel.1, UDP 8472), ``host-gw`` routed on the underlay, each peer's pod
# CIDR via the peer's node address (flannel host-gw, Calico BGP without IPIP), no tunnel.
OVERLAYS = ("vxlan", "host-gw")
# flanneld's backends the lab runs (--cni flannel): the overlays, and wireguard, through
# wireguard-go as this kernel has no WireGuard (lab.kube.flannel).
FLANNEL_BACKENDS = (*OVERLAYS, "wireguard")
# What programs the real cluster's pod network: ``flannel`` runs the real flanneld
# (lab.kube.flannel; the default with a real cluster), ``lab`` hand-wires it as flannel
# would (the plain lab's only network, and ``--cni lab`` on a real cluster).
CNIS = ("lab", "flannel")
# kube-proxy's modes this machine's kernel runs (ipvs needs CONFIG_IP_VS, absent here).
PROXY_MODES = ("iptables", "nftables")
VXLAN_OVERHEAD = 50  # outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
# flannel's wireguard: outer IPv6 40 + UDP 8 + WireGuard 32, for both families (1420 of 1500).
WIREGUARD_OVERHEAD = 80
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def check_name(name: str) -> str:
    """A lab name becomes a path under /run/k8snet and namespace names: refuse anything else."""
    if not NAME_RE.match(name) or len(name) > 24:
        raise LabError(f"bad lab name {name!r}: use 1-24 of [a-z0-9] and inner dashes")
    return name


@dataclass(frozen=True)
class LabSpec:
    """What to build. Every field has the default the README documents."""

    name: str = "lab"
    nodes: int = 3
    node_cidr: str = "172.28.128.0/24"
    pod_cidr: str = "10.244.0.0/16"
    underlay_mtu: int = 1500
    overlay_mtu: int = 1450
    faults: tuple[tuple[str, tuple[str, ...], str | None], ...] = ()
    # A real cluster on top (kube-apiserver, kubelets, containerd, CoreDNS): see lab.kube.
    kubernetes: bool = False
    overlay: str = "vxlan"  # one of OVERLAYS; with cni "flannel", flanneld's backend
    cni: str = ""  # one of CNIS; "": flannel with a real cluster, else lab
    proxy_mode: str = "iptables"  # one of PROXY_MODES: the real cluster's kube-proxy
    ip_family: str = "ipv4"  # one of family.IP_FAMILIES

    def __post_init__(self) -> None:
        # Resolved here, so that every LabSpec(kubernetes=True) in tests, benchmarks and
        # run_with_cluster gets the default shape and the saved record names it.
        if not self.cni:
            object.__setattr__(self, "cni", "flannel" if self.kubernetes else "lab")

    def validate(self) -> None:
        check_name(self.name)
        if RESERVED_WORDS & set(self.name.split("-")):
            raise LabError(f"bad lab name {self.name!r}: it may not contain the words "
                           + ", ".join(sorted(RESERVED_WORDS)))
        if not 1 <= self.nodes <= MAX_NODES:
            raise LabError(f"--nodes must be 1..{MAX_NODES}, got {self.nodes}")
        if not 576 <= self.underlay_mtu <= 9000 or not 576 <= self.overlay_mtu <= 9000:
            raise LabError("MTUs must be 576..9000")
        if self.overlay not in OVERLAYS and not (self.cni == "flannel"
                                                 and self.overlay in FLANNEL_BACKENDS):
            raise LabError(f"--overlay must be one of {', '.join(OVERLAYS)}, got {self.overlay!r}")
        if self.overlay == "host-gw" and self.overlay_mtu > self.underlay_mtu:
            raise LabError(f"--overlay host-gw routes pod packets unencapsulated: the overlay "
                           f"MTU {self.overlay_mtu} cannot exceed the underlay MTU "
                           f"{self.underlay_mtu}")
        if self.cni not in CNIS:
            raise LabError(f"--cni must be one of {', '.join(CNIS)}, got {self.cni!r}")
        if self.cni == "flannel" and not self.kubernetes:
            raise LabError("--cni flannel needs --kubernetes: flanneld runs against a real "
                           "API server")
        if self.proxy_mode not in PROXY_MODES:
            raise LabError(f"--proxy-mode must be one of {', '.join(PROXY_MODES)}, "
                           f"got {self.proxy_mode!r}")
        if self.proxy_mode != "iptables" and not self.kubernetes:
            raise LabError(f"--proxy-mode {self.proxy_mode} needs --kubernetes: the plain lab "
                           "simulates kube-proxy's iptables mode only")
        if self.overlay == "host-gw" and self.kubernetes and self.cni == "lab":
            # The hand-wired CNI config and faults were only proven on the VXLAN shape.
            raise LabError("--overlay host-gw is not available with --kubernetes --cni lab; "
                           "use --cni flannel --flannel-backend host-gw")
        self._validate_family()
        try:
            node_net = ipaddress.ip_network(self.node_cidr)
            pod_net = ipaddress.ip_network(self.pod_cidr)
        except ValueError as exc:
            raise LabError(f"bad CIDR: {exc}") from None
        if node_net.num_addresses < self.nodes + 16:
            raise LabError(f"node network {node_net} is too small for {self.nodes} nodes")
        if pod_net.prefixlen > 24 - max(1, (self.nodes - 1).bit_length()):
            raise LabError(f"Pod CIDR {pod_net} has no room for {self.nodes} /24 node subnets")
        for net in (node_net, pod_net):
            if net.overlaps(EXT_CIDR) or net.overlaps(ipaddress.ip_network("10.96.0.0/12")):
                raise LabError(f"{net} overlaps the lab's external or Service network")


    def _validate_family(self) -> None:
        if self.ip_family not in fam.IP_FAMILIES:
            raise LabError(f"--ip-family must be one of {', '.join(fam.IP_FAMILIES)}, "
                           f"got {self.ip_family!r}")
        if self.ip_family == "ipv4":
            return
        if self.kubernetes and self.ip_family == "ipv6":
            # An IPv6-only cluster's kubernetes Service needs the API server on IPv6, and the
            # management network (its path to every kubelet and the forwarder) is IPv4.
            raise LabError("--ip-family ipv6 is not available with --kubernetes: the cluster's "
                           "management network is IPv4 only; use --ip-family dual")
        if self.kubernetes and self.cni == "lab":
            raise LabError(f"--ip-family {self.ip_family} is not available with --kubernetes "
                           "--cni lab: only flannel programs a real cluster's IPv6 pod network")
        if self.kubernetes and self.overlay == "wireguard":
            raise LabError(f"--ip-family {self.ip_family} is not available with "
                           "--flannel-backend wireguard: use vxlan or host-gw")
        if self.nodes > MAX_NODES_IPV6:
            raise LabError(f"--ip-family {self.ip_family} allows at most {MAX_NODES_IPV6} "
                           f"nodes, got {self.nodes}: IPv6 neighbour entries share one table with "
                           "the whole host")
        if self.overlay == "vxlan" and self.ip_family == "ipv6" \
                and self.overlay_mtu > self.underlay_mtu - fam.VXLAN6_OVERHEAD:
            raise LabError(f"--ip-family ipv6 runs VXLAN over IPv6 ({fam.VXLAN6_OVERHEAD} "
                           f"bytes): the overlay MTU {self.overlay_mtu} cannot exceed "
                           f"{self.underlay_mtu - fam.VXLAN6_OVERHEAD}")


def default_overlay_mtu(overlay: str, underlay_mtu: int, ip_family: str = "ipv4") -> int:
    """The pod MTU the CNI would pick: the underlay's less what the encapsulation adds
    (VXLAN over an IPv6 underlay adds 70; a dual-stack flannel sets the pods' one MTU to
    the smaller, so IPv4 packets fit the IPv6 tunnel as well)."""
    if overlay == "wireguard":
        return underlay_mtu - WIREGUARD_OVERHEAD
    if overlay != "vxlan":
        return underlay_mtu
    return underlay_mtu - (VXLAN_OVERHEAD if ip_family == "ipv4" else fam.VXLAN6_OVERHEAD)


def overlay_of(lab: Lab) -> str:
    """The lab's overlay; a record written before ``--overlay`` existed is a VXLAN lab."""
    return str(lab.spec.get("overlay", "vxlan"))


def cni_of(lab: Lab) -> str:
    """The lab's CNI; a record written before ``--cni`` existed is the hand-wired one."""
    return str(lab.spec.get("cni", "lab"))


def proxy_mode_of(lab: Lab) -> str:
    return str(lab.spec.get("proxy_mode", "iptables"))


def plan(spec: LabSpec) -> Lab:
    """The lab ``spec`` describes, with every name and address, built nowhere yet."""
    node_net = ipaddress.ip_network(spec.node_cidr)
    pod_net = ipaddress.IPv4Network(spec.pod_cidr)  # the lab is IPv4 only
    subnets = pod_net.subnets(new_prefix=24)
    p = f"{PREFIX}{spec.name}"
    ext = list(EXT_CIDR.hosts())
    nodes: list[dict[str, Any]] = []
    for i in range(1, spec.nodes + 1):
        sub = next(subnets)
        name = f"node-{i}"
        nodes.append({
            "name": name,
            "index": i,
            "netns": f"{p}-{name}",
            "ip": str(node_net.network_address + 10 + i),
            "pod_cidr": str(sub),
            "pod_gateway": str(sub.network_address + 1),
            "vtep_ip": str(sub.network_address),
            "vtep_mac": f"0e:8e:00:00:{i >> 8:02x}:{i & 0xff:02x}",
            "switch_port": f"port-{name}",
            "probe": {"name": f"probe-{name}", "netns": f"{p}-{name}-probe",
                      "ip": str(sub.network_address + 2)},
            "echo": {"name": f"echo-{name}", "netns": f"{p}-{name}-echo",
                     "ip": str(sub.network_address + 3)},
        })
    if fam.has_ipv6(asdict(spec)):
        _plan_ipv6(spec, nodes)
    gw_ip = str(node_net.broadcast_address - 1)
    dns_names = {
        f"kubernetes.default.svc.{CLUSTER_DOMAIN}": KUBERNETES_SERVICE_IP,
        f"{SERVICE_NAME}.default.svc.{CLUSTER_DOMAIN}": SERVICE_IP,
        EXTERNAL_NAME: str(ext[9]),
    }
    for node in nodes:
        for kind in ("probe", "echo"):
            pod = node[kind]
            dns_names[f"{pod['name']}.{SERVICE_NAME}.default.svc.{CLUSTER_DOMAIN}"] = pod["ip"]
    lab = Lab(
        name=spec.name,
        spec=asdict(spec),
        switch_netns=f"{p}-sw",
        nodes=nodes,
        service={"name": SERVICE_NAME, "ip": SERVICE_IP, "port": SERVICE_PORT,
                 "target_port": PROBE_PORT, "node_port": SERVICE_NODE_PORT,
                 "fqdn": f"{SERVICE_NAME}.default.svc.{CLUSTER_DOMAIN}",
                 "backends": [n[k]["ip"] for n in nodes for k in ("probe", "echo")]},
        dns={"netns": f"{p}-dns", "ip": str(ext[52]), "names": dns_names,
             "search": [f"default.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]},
        world={"netns": f"{p}-world", "ip": str(ext[9]), "port": WORLD_PORT,
               "name": EXTERNAL_NAME, "network": str(EXT_CIDR)},
        gateway={"netns": f"{p}-gw", "ip": gw_ip, "ext_ip": str(ext[0])},
    )
    if fam.has_ipv6(asdict(spec)):
        _plan_ipv6_edges(spec, lab)
    if spec.kubernetes:
        lab.kubernetes = kube_mgmt.plan(lab)
    return lab


def _plan_ipv6(spec: LabSpec, nodes: list[dict[str, Any]]) -> None:
    """Each node's and pod's IPv6 addresses (``ip6``...); in an ``ipv6`` lab the pods'
    primary ``ip`` is their IPv6 one, as podIP is in a single-stack IPv6 cluster."""
    for node in nodes:
        addrs = fam.node_addresses(node["index"])
        node.update({k: addrs[k] for k in ("ip6", "pod_cidr6", "pod_gateway6", "vtep_ip6",
                                           "vtep_mac6")})
        for kind in ("probe", "echo"):
            pod = node[kind]
            pod["ip6"] = addrs[f"{kind}_ip6"]
            if spec.ip_family == "ipv6":
                pod["ip"] = pod["ip6"]


def _plan_ipv6_edges(spec: LabSpec, lab: Lab) -> None:
    """The Service's IPv6 ClusterIP and backends, AAAA records, the edge's IPv6 side."""
    edge = fam.edge_addresses()
    svc = lab.service
    svc["ip6"] = fam.SERVICE_IP6
    svc["backends6"] = [n[k]["ip6"] for n in lab.nodes for k in ("probe", "echo")]
    names6 = {f"kubernetes.default.svc.{CLUSTER_DOMAIN}": fam.KUBERNETES_SERVICE_IP6,
              svc["fqdn"]: fam.SERVICE_IP6, EXTERNAL_NAME: edge["world_ip6"]}
    for node in lab.nodes:
        for kind in ("probe", "echo"):
            pod = node[kind]
            names6[f"{pod['name']}.{svc['fqdn']}"] = pod["ip6"]
    lab.dns.update(ip6=edge["dns_ip6"], names6=names6)
    lab.world["ip6"] = edge["world_ip6"]
    lab.world["network6"] = str(fam.EXT_CIDR6)
    lab.gateway.update(ip6=edge["gw_ip6"], ext_ip6=edge["gw_ext_ip6"])
    if spec.ip_family == "ipv6":  # the cluster has no IPv4: no A records, no IPv4 ClusterIP
        svc["ip"], svc["backends"] = svc["ip6"], svc["backends6"]
        lab.dns["names"] = {}
