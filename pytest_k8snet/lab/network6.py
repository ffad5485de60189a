"""The IPv6 half of a lab with ``--ip-family ipv6|dual``: what :mod:`.network` adds.

The shapes are a dual-stack flannel's: the node's IPv6 address on eth0, its pod /64 on
cni0, and with the ``vxlan`` overlay a second VXLAN device, ``flannel-v6.1`` (VNI 1, UDP
8472, over the IPv6 underlay, as flanneld names and programs it), with a permanent
neighbour, route and FDB entry per peer; with ``host-gw`` each peer's /64 via its IPv6
node address. kube-proxy's Service and NodePort rules are the IPv4 ones written again
for ip6tables (:func:`.network.node_nat_rules`). Every neighbour entry is permanent, as in
the IPv4 half: no NDP runs between the lab's namespaces.
"""

from __future__ import annotations

from typing import Any

from .family import EXT_CIDR6, VXLAN6_DEVICE
from .plan import VXLAN_PORT, LabSpec, overlay_of
from .state import Lab

# The MAC kinds of network.py (node 1, cni 2, probe 3, echo 4, edge 5; edges gw 1, ext 2,
# world 3, dns 4): both families share a link, so they share its MAC.
MAC_NODE, MAC_CNI, MAC_PROBE, MAC_ECHO, MAC_EDGE = 1, 2, 3, 4, 5
EDGE_GW, EDGE_EXT, EDGE_WORLD, EDGE_DNS = 1, 2, 3, 4
DEFAULT6 = "::/0"  # said in full: ``default`` alone is IPv4 in ip's batch mode


def _mac(kind: int, index: int) -> str:
    return f"0e:8e:{kind:02x}:00:{index >> 8:02x}:{index & 0xff:02x}"


def _perm(ip: str, mac: str, dev: str) -> str:
    return f"neigh replace {ip} lladdr {mac} dev {dev} nud permanent"


def node_commands(lab: Lab, node: dict[str, Any], spec: LabSpec, cni0: bool
                  ) -> tuple[list[str], list[str]]:
    """``ip`` commands (run after the IPv4 half's) and FDB entries for a node's IPv6."""
    cmds = [f"addr add {node['ip6']}/64 dev eth0 nodad",
            f"route add {DEFAULT6} via {lab.gateway['ip6']} dev eth0"]
    cmds += [_perm(peer["ip6"], _mac(MAC_NODE, peer["index"]), "eth0")
             for peer in lab.nodes if peer["name"] != node["name"]]
    cmds.append(_perm(lab.gateway["ip6"], _mac(MAC_EDGE, EDGE_GW), "eth0"))
    if not cni0:
        return cmds, []
    cmds.append(f"addr add {node['pod_gateway6']}/64 dev cni0 nodad")
    if overlay_of(lab) == "vxlan":
        cmds += [
            f"link add {VXLAN6_DEVICE} type vxlan id 1 dstport {VXLAN_PORT} "
            f"local {node['ip6']} dev eth0 nolearning",
            f"link set {VXLAN6_DEVICE} address {node['vtep_mac6']} mtu {spec.overlay_mtu} up",
            f"link set dev {VXLAN6_DEVICE} alias k8snet-{lab.name}",
            f"addr add {node['vtep_ip6']}/128 dev {VXLAN6_DEVICE} nodad",
        ]
    if not spec.kubernetes:
        cmds += [_perm(node[kind]["ip6"], _mac(mac_kind, node["index"]), "cni0")
                 for kind, mac_kind in (("probe", MAC_PROBE), ("echo", MAC_ECHO))]
    overlay, fdb = overlay_entries(lab, node)
    return cmds + overlay, fdb


def overlay_entries(lab: Lab, node: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What flanneld programs per peer for IPv6: VXLAN neighbour, route and FDB entry on
    flannel-v6.1, or with host-gw only the route via the peer's IPv6 node address."""
    cmds, fdb = [], []
    for peer in lab.nodes:
        if peer["name"] == node["name"]:
            continue
        if overlay_of(lab) == "host-gw":
            cmds.append(f"route replace {peer['pod_cidr6']} via {peer['ip6']} dev eth0")
            continue
        cmds += [_perm(peer["vtep_ip6"], peer["vtep_mac6"], VXLAN6_DEVICE),
                 f"route replace {peer['pod_cidr6']} via {peer['vtep_ip6']} "
                 f"dev {VXLAN6_DEVICE} onlink"]
        fdb.append(f"fdb replace {peer['vtep_mac6']} dev {VXLAN6_DEVICE} dst {peer['ip6']}")
    return cmds, fdb


def pod_commands(lab: Lab, node: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """A pod's IPv6 address, default route and permanent neighbours (gateway, other pod)."""
    macs = {node[kind]["ip6"]: _mac(m, node["index"]) for kind, m in (("probe", MAC_PROBE),
                                                                       ("echo", MAC_ECHO))}
    return [f"addr add {pod['ip6']}/64 dev eth0 nodad",
            f"route add {DEFAULT6} via {node['pod_gateway6']} dev eth0",
            _perm(node["pod_gateway6"], _mac(MAC_CNI, node["index"]), "eth0"),
            *[_perm(ip, mac, "eth0") for ip, mac in macs.items() if ip != pod["ip6"]]]


def edge_commands(lab: Lab) -> dict[str, list[str]]:
    """The gateway's IPv6 on both sides, the world's and DNS host's, and their neighbours."""
    gw, plen = lab.gateway, EXT_CIDR6.prefixlen
    gw_cmds = [f"addr add {gw['ip6']}/64 dev eth0 nodad",
               f"addr add {gw['ext_ip6']}/{plen} dev ext0 nodad"]
    gw_cmds += [_perm(n["ip6"], _mac(MAC_NODE, n["index"]), "eth0") for n in lab.nodes]
    gw_cmds += [_perm(lab.world["ip6"], _mac(MAC_EDGE, EDGE_WORLD), "ext0"),
                _perm(lab.dns["ip6"], _mac(MAC_EDGE, EDGE_DNS), "ext0")]
    out = {gw["netns"]: gw_cmds}
    for host in (lab.world, lab.dns):
        out[host["netns"]] = [f"addr add {host['ip6']}/{plen} dev eth0 nodad",
                              f"route add {DEFAULT6} via {gw['ext_ip6']} dev eth0",
                              _perm(gw["ext_ip6"], _mac(MAC_EDGE, EDGE_EXT), "eth0")]
    return out


NODE_SYSCTLS6 = {"net.ipv6.conf.all.forwarding": "1",
                 "net.bridge.bridge-nf-call-ip6tables": "1"}
