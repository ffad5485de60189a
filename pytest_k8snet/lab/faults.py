"""The incidents of shared/incidents.md as faults that switch on and off in a running lab.

Each fault breaks exactly what its incident broke. iptables rules carry the
comment ``k8snet-fault:<name>`` so they can be seen with ``iptables -S``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from . import netns as ns
from .kube import flannel
from .kube import node as kube_node
from .netns import LabError
from .network import pod_route
from .family import has_ipv6, of_lab
from .plan import FLANNEL_BACKENDS, OVERLAYS, VXLAN_PORT, LabSpec, cni_of, overlay_of
from .state import Lab

LOW_PORTS = "1:32767"


@dataclass(frozen=True)
class Fault:
    name: str
    incidents: str
    summary: str
    default_value: str | None
    per_node: bool
    apply: Callable[[Lab, dict[str, Any], str | None, bool], None]
    # What VALUE may be (LabError if not); None: the fault takes no value.
    check_value: Callable[[str], object] | None = None
    # The lab overlays (plan.OVERLAYS, flannel's wireguard too) the fault means something on.
    overlays: tuple[str, ...] = FLANNEL_BACKENDS
    # VALUE names a peer node of the lab (route-missing): never the node the fault is on.
    value_is_node: bool = False
    # Why the fault cannot hold on a --cni flannel lab (refused there), or None.
    not_on_flannel: str | None = None


def _rule(lab: Lab, netns_name: str, chain: str, spec: list[str], fault: str, on: bool,
          first: bool = False, every_family: bool = False) -> None:
    """A DROP rule, appended, or with ``first`` inserted ahead of the chain's ACCEPTs;
    with ``every_family`` in ip6tables too where the lab has IPv6 (what acts on the link
    or on a port, not on IPv4 addresses: the underlay carries both families)."""
    action = (["-I", chain, "1"] if first else ["-A", chain]) if on else ["-D", chain]
    args = [*action, *spec, "-m", "comment", "--comment", f"k8snet-fault:{fault}", "-j", "DROP"]
    ns.iptables(netns_name, args, check=on)
    if every_family and has_ipv6(lab.spec):
        ns.iptables(netns_name, args, check=on, ipv6=True)


def _mtu_bytes(value: str) -> int:
    """underlay-mtu's VALUE: the largest frame that still passes, 68 (IPv4's minimum MTU)
    to 9000 (jumbo frames), in plain digits ("1_400" and " 1400" are typos, not sizes)."""
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 68 <= int(value) <= 9000:
        raise LabError(f"underlay-mtu value must be a whole number of bytes, 68..9000, "
                       f"got {value!r}")
    return int(value)


def _underlay_mtu(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    # A switch port with a smaller MTU drops bigger frames both ways and says nothing (no ICMP).
    size = _mtu_bytes(value or "1450")
    length = ["-m", "length", "--length", f"{size + 1}:65535"]
    for chain, direction in (("INPUT", "-i"), ("OUTPUT", "-o"), ("FORWARD", "-i"), ("FORWARD", "-o")):
        # First: on host-gw, pod packets are forwarded on eth0 unencapsulated, and
        # flanneld's FLANNEL-FWD accepts them before an appended rule is reached.
        _rule(lab, node["netns"], chain, [direction, "eth0", *length], "underlay-mtu", on,
              first=True, every_family=True)


def _vxlan_blocked(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    # The incident is the overlay's UDP port closed between nodes: on a WireGuard overlay
    # that port is WireGuard's, and closing 8472 there would break nothing.
    port = flannel.WIREGUARD_PORT if overlay_of(lab) == "wireguard" else VXLAN_PORT
    for chain in ("INPUT", "OUTPUT"):
        # Both families: a dual-stack flannel's flannel-v6.1 uses the same port over IPv6.
        _rule(lab, node["netns"], chain, ["-p", "udp", "--dport", str(port)], "vxlan-blocked", on,
              every_family=True)


def _ip_forward_off(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    ns.write_sysctls(node["netns"], {"net.ipv4.ip_forward": "0" if on else "1"})


def _bridge_nf_off(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    ns.write_sysctls(node["netns"], {"net.bridge.bridge-nf-call-iptables": "0" if on else "1"})


def _egress_port_range(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    # The provider firewall sits at the gateway and only passes source ports >= 32768;
    # the node's pods pick ephemeral ports from a wider range, and MASQUERADE keeps them.
    spec = ["-s", node["ip"], "-d", lab.world["network"], "-p", "tcp", "--syn",
            "--sport", LOW_PORTS]
    _rule(lab, lab.gateway["netns"], "FORWARD", spec, "egress-port-range", on)
    port_range = "1024 65535" if on else "32768 60999"
    if cni_of(lab) == "flannel":
        # flanneld's conflist is the one containerd reads: the tuning plugin goes there.
        flannel.write_conflist(lab.state_dir / node["name"], port_range if on else None)
        _port_keeping_masquerade(lab, node, on)
        return
    if lab.kubernetes:
        # Real pods: the CNI's tuning plugin gives the node's new pods the wide range.
        kube_node.write_cni(lab.state_dir / node["name"], node, lab.spec["overlay_mtu"],
                            port_range if on else None)
        return
    for kind in ("probe", "echo"):
        ns.write_sysctls(node[kind]["netns"], {"net.ipv4.ip_local_port_range": port_range})


def _port_keeping_masquerade(lab: Lab, node: dict[str, Any], on: bool) -> None:
    """Incident 2's node kept its pods' source ports when it masqueraded them. flanneld
    masquerades with --random-fully, which hands the gateway a random port whatever the pod
    picked: the firewall then drops about half of every node's connections and no pod's
    port range explains it. A plain MASQUERADE for the node's pods to the world, ahead of
    flanneld's FLANNEL-POSTRTG (flanneld only re-adds its own rules when they go missing),
    makes the node the incident's: the gateway sees the ports the pods chose."""
    rule = ["POSTROUTING", "-s", node["pod_cidr"], "-d", lab.world["network"], "-m",
            "comment", "--comment", "k8snet-fault:egress-port-range", "-j", "MASQUERADE"]
    args = ["-t", "nat", "-I", rule[0], "1", *rule[1:]] if on else ["-t", "nat", "-D", *rule]
    ns.iptables(node["netns"], args, check=on)


def _dns_blocked(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    if lab.kubernetes:
        # The cluster DNS is CoreDNS behind a Service: drop what the node and its pods send
        # to that Service (matched before kube-proxy's DNAT), and nothing else, so CoreDNS
        # replicas on this node still serve the other nodes.
        dns_ip = lab.kubernetes["cluster_dns"]
        for proto in ("udp", "tcp"):
            match = ["-p", proto, "--dport", "53", "-m", "conntrack", "--ctorigdst", dns_ip]
            _rule(lab, node["netns"], "OUTPUT", match, "dns-blocked", on, first=True)
            # First in FORWARD: flanneld's FLANNEL-FWD accepts all pod traffic before an
            # appended rule is reached (the fault then did nothing to pods on flannel).
            _rule(lab, node["netns"], "FORWARD", ["-s", node["pod_cidr"], *match],
                  "dns-blocked", on, first=True)
        return
    for proto in ("udp", "tcp"):
        _rule(lab, lab.dns["netns"], "INPUT", ["-s", node["ip"], "-p", proto, "--dport", "53"],
              "dns-blocked", on)


def _peer_name(value: str) -> str:
    """route-missing's VALUE: a node name (whether the lab has it is checked on the lab)."""
    if not re.fullmatch(r"node-[0-9]{1,2}", value):
        raise LabError(f"route-missing value must be a peer node's name (node-N), got {value!r}")
    return value


def _route_missing(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    # flanneld host-gw (or Calico's BGP daemon) stopped on the node: its routes to the
    # peers' pod CIDRs are gone, so their pods' packets leave by the default route.
    peers = [lab.node(value)] if value is not None else [
        p for p in lab.nodes if p["name"] != node["name"]]
    if cni_of(lab) == "flannel":
        # A live flanneld re-adds a missing lease route within 10 s (its routeCheck):
        # the fault is flanneld stopped on the node, then the route gone.
        d = lab.state_dir / node["name"]
        if on:
            flannel.stop(d)
        else:
            flannel.resume(d)
    ns.ip_batch(node["netns"], [f"route del {p['pod_cidr']} via {p['ip']} dev eth0"
                                if on else pod_route(p) for p in peers])


# What a hardened host firewall (ufw) closes: incident 1's list, minus VXLAN (its own fault).
HOST_FIREWALL_PORTS = (("tcp", "6443"), ("tcp", "2379:2380"), ("tcp", "10250"), ("tcp", "53"),
                       ("udp", "53"))


# Kubernetes' default NodePort range, which incident 1's firewall closed as well.
NODE_PORT_RANGE = "30000:32767"


def _host_firewall(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    # Only on the underlay: the lab's management network stands for the out-of-band path
    # the test harness itself needs (the API server reaches kubelets over it).
    for proto, port in HOST_FIREWALL_PORTS:
        _rule(lab, node["netns"], "INPUT", ["-i", "eth0", "-p", proto, "--dport", port],
              "host-firewall", on)
    # The NodePorts before kube-proxy's DNAT (mangle runs before nat): by INPUT a NodePort
    # connect has become one to a pod's port, or is forwarded and never passes INPUT. New
    # connections only, as ufw lets established ones through: a reply to a pod's egress
    # that flannel masqueraded with --random-fully may come back to a port in the range.
    ns.iptables(node["netns"], ["-t", "mangle", "-A" if on else "-D", "PREROUTING", "-i",
                                "eth0", "-p", "tcp", "--dport", NODE_PORT_RANGE, "-m",
                                "conntrack", "--ctstate", "NEW", "-m", "comment",
                                "--comment", "k8snet-fault:host-firewall", "-j", "DROP"],
                check=on)


def _pod_cidr_overlap(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    current = lab.spec.get("pod_cidr")
    wanted = overlapping_cidr(lab.spec["node_cidr"])
    if on and current != wanted:
        raise LabError("pod-cidr-overlap is built in, not switched: rebuild with "
                       f"`k8snet-lab up --name {lab.name} --fault pod-cidr-overlap` "
                       f"(or --pod-cidr {wanted})")
    if not on:
        raise LabError("pod-cidr-overlap is built in: take the lab down and up again without it")


def _ipv6_blocked(lab: Lab, node: dict[str, Any], value: str | None, on: bool) -> None:
    """ip6tables drops every IPv6 packet between the node and its peers, their node and
    pod addresses, both ways (INPUT, OUTPUT, FORWARD): flannel-v6.1's VXLAN, host-gw's
    routed pod packets and node to node alike. IPv4, and IPv6 to the gateway, still pass."""
    if not has_ipv6(lab.spec):
        raise LabError(f"ipv6-blocked needs a lab with IPv6 (`up --ip-family dual` or "
                       f"ipv6); {lab.name} is {of_lab(lab.spec)}")
    peers = [addr for peer in lab.nodes if peer["name"] != node["name"]
             for addr in (peer["ip6"], peer["pod_cidr6"])]
    tag = ["-m", "comment", "--comment", "k8snet-fault:ipv6-blocked", "-j", "DROP"]
    for addr in peers:
        for chain, match in (("INPUT", "-s"), ("OUTPUT", "-d"), ("FORWARD", "-s"),
                             ("FORWARD", "-d")):
            ns.iptables(node["netns"], ["-A" if on else "-D", chain, match, addr, *tag],
                        check=on, ipv6=True)


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("underlay-mtu", "1, 3, 4", "frames above VALUE bytes (default 1450) are silently dropped "
          "on the node's underlay link, both ways, no ICMP", "1450", True, _underlay_mtu,
          _mtu_bytes),
    Fault("vxlan-blocked", "1, 5", "the overlay's UDP port to and from the node is dropped: "
          "8472 (VXLAN), or 51820 on --flannel-backend wireguard", None, True,
          _vxlan_blocked, overlays=("vxlan", "wireguard")),
    Fault("ip-forward-off", "5", "net.ipv4.ip_forward=0 on the node", None, True, _ip_forward_off,
          not_on_flannel="the bridge plugin flannel delegates to (isGateway: true) sets "
          "ip_forward=1 again with the node's next pod, before any probe runs, as it does on "
          "every production flannel node; use --cni lab for incident 5's ip_forward=0"),
    Fault("bridge-nf-off", "5", "net.bridge.bridge-nf-call-iptables=0 on the node", None, True,
          _bridge_nf_off),
    Fault("pod-cidr-overlap", "1, 5", "the lab is built with a Pod CIDR that overlaps the node "
          "network (build-time: `up --fault pod-cidr-overlap`)", None, False, _pod_cidr_overlap),
    Fault("egress-port-range", "2", "the gateway drops new egress connections from the node with "
          "source ports below 32768; its pods use ports 1024-65535", None, True, _egress_port_range),
    Fault("host-firewall", "1", "a hardened host firewall on the node drops incoming TCP 6443, "
          "2379-2380, 10250, TCP/UDP 53 and the NodePorts (TCP 30000-32767) on its underlay", None, True, _host_firewall),
    Fault("dns-blocked", "1", "the cluster DNS server drops queries from the node (extra: not an "
          "incident of its own, for 'DNS unreachable')", None, True, _dns_blocked),
    Fault("route-missing", "-", "the node's route to the pods of peer VALUE (default: every "
          "peer) is gone, as when flanneld host-gw stops on it (host-gw only; on --cni flannel "
          "the node's flanneld is stopped too)", None,
          True, _route_missing, _peer_name, overlays=("host-gw",), value_is_node=True),
    Fault("ipv6-blocked", "issue 16", "every IPv6 packet between the node and the other nodes "
          "(their node and pod addresses) is dropped, both ways; IPv4 passes (--ip-family "
          "dual or ipv6 only)", None, True, _ipv6_blocked),
)}


def get(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise LabError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}") from None


def check(name: str, value: str | None) -> Fault:
    """Fault ``name``, once ``value`` is known to be one it can take: refused here, before
    anything is built or switched, rather than half way through."""
    fault = get(name)
    if value is not None:
        if fault.check_value is None:
            raise LabError(f"{name} takes no value, got {value!r}")
        fault.check_value(value)
    return fault


# Why a fault has nothing to act on with an overlay it does not apply to: the refusal's reason.
NOTHING_THERE: dict[tuple[str, str], str] = {
    ("vxlan-blocked", "host-gw"): "host-gw routes pod packets unencapsulated, there is no "
    "UDP overlay to block (route-missing breaks this shape's overlay)",
    ("route-missing", "vxlan"): "its pod routes go through flannel.1, not via each "
    "peer on eth0 as host-gw's do (vxlan-blocked breaks this shape's overlay)",
    ("route-missing", "wireguard"): "its pod routes go through the flannel-wg tunnel, not "
    "via each peer on eth0 as host-gw's do (vxlan-blocked breaks this shape's overlay)",
}


def check_overlay(lab: Lab, fault: Fault) -> None:
    """A fault that means nothing on this lab's overlay, or cannot hold under its CNI, is
    refused, not silently a no-op."""
    overlay = overlay_of(lab)
    flag = "--flannel-backend" if cni_of(lab) == "flannel" else "--overlay"
    if overlay not in fault.overlays:
        # Only what the flag can be: wireguard is flannel's backend, not an --overlay.
        shown = [o for o in fault.overlays if cni_of(lab) == "flannel" or o in OVERLAYS]
        why = NOTHING_THERE.get((fault.name, overlay))
        raise LabError(f"{fault.name} applies to {flag} {' or '.join(shown)} labs; "
                       f"{lab.name} is built with {flag} {overlay}"
                       + (f": {why}" if why else ""))
    if cni_of(lab) == "flannel" and fault.not_on_flannel:
        raise LabError(f"{fault.name} cannot hold on {lab.name} (--cni flannel): "
                       f"{fault.not_on_flannel}")


def check_all(lab: Lab, wanted: Iterable[tuple[str, tuple[str, ...], str | None]]) -> None:
    """What :func:`add` would refuse in ``lab`` (planned, not built yet), refused now: a
    lab is not built only to be taken down again over a typo in one of its faults."""
    for name, nodes, value in wanted:
        fault = check(name, value)
        check_overlay(lab, fault)
        _targets(lab, fault, list(nodes), value)
        if nodes and not fault.per_node:
            raise LabError(f"{name} applies to the whole lab, not to nodes")
        for node in nodes:
            lab.node(node)


def overlapping_cidr(node_cidr: str) -> str:
    """A /16 that contains the node network, the way incident 5's cluster was set up."""
    net = ipaddress.ip_network(node_cidr)
    return str(net.supernet(new_prefix=min(16, net.prefixlen)))


def overlapping_spec(spec: LabSpec) -> LabSpec:
    return replace(spec, pod_cidr=overlapping_cidr(spec.node_cidr))


def _targets(lab: Lab, fault: Fault, nodes: list[str], value: str | None
             ) -> list[dict[str, Any]]:
    """The nodes ``fault`` goes on (all when none are named), refused as a whole before any
    is touched. A VALUE that names a peer node must exist, and without --node the fault
    goes on every other node."""
    if fault.value_is_node and value is not None:
        peer = lab.node(value)["name"]
        if peer in nodes:
            raise LabError(f"{fault.name} on {peer}: the value names the peer whose pod route "
                           f"goes, not a node the fault is on")
        return [lab.node(n) for n in nodes] or [n for n in lab.nodes if n["name"] != peer]
    return [lab.node(n) for n in nodes] if nodes else list(lab.nodes)


def add(lab: Lab, name: str, nodes: list[str], value: str | None = None) -> None:
    """Switch ``name`` on for ``nodes`` (all nodes when empty). Idempotent per node."""
    # Checked first: a bad value must not cost a node the fault it has on already.
    fault = check(name, value)
    check_overlay(lab, fault)
    if not fault.per_node:
        if nodes:
            raise LabError(f"{name} applies to the whole lab, not to nodes")
        fault.apply(lab, {}, value, True)
        if not any(f["name"] == name for f in lab.faults):
            lab.faults.append({"name": name, "node": None, "value": value})
        return
    value = value if value is not None else fault.default_value
    for node in _targets(lab, fault, nodes, value):
        existing = [f for f in lab.faults if f["name"] == name and f["node"] == node["name"]]
        if existing:
            if existing[0]["value"] == value:
                continue
            fault.apply(lab, node, existing[0]["value"], False)
            lab.faults.remove(existing[0])
        fault.apply(lab, node, value, True)
        lab.faults.append({"name": name, "node": node["name"], "value": value})


def remove(lab: Lab, name: str, nodes: list[str]) -> int:
    """Switch ``name`` off for ``nodes`` (all where it is on when empty); returns how many."""
    fault = get(name)
    active = [f for f in lab.faults if f["name"] == name]
    if nodes:
        wanted = {lab.node(n)["name"] for n in nodes}
        active = [f for f in active if f["node"] in wanted]
    for entry in active:
        node = lab.node(entry["node"]) if entry["node"] else {}
        fault.apply(lab, node, entry["value"], False)
        lab.faults.remove(entry)
    return len(active)
