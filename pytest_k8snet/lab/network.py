"""Programming a planned lab's namespaces: links, addresses, bridges, VXLAN, neighbours,
routes, the simulated kube-proxy's iptables rules and each namespace's resolv.conf.

The pod routes between nodes follow the lab's overlay (``LabSpec.overlay``): ``vxlan``
sends each peer's pod CIDR through flannel.1, ``host-gw`` via the peer's node address on
eth0, as flannel's host-gw backend (or Calico BGP without IPIP) programs them.

Topology (names are ``k8snet-<lab>-<part>``)::

    world 198.18.0.10 ─┐                   ┌─ node-1 eth0 ── cni0 ─┬─ probe-node-1
    dns   198.18.0.53 ─┴ ext0 ─ gw ─ eth0 ─ sw (br0) ─ node-2 ...   └─ echo-node-1
                                            └─ node-N        flannel.1 (VXLAN, UDP 8472)

Nothing connects to the host's own namespace, so no traffic can leave the machine.
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import family as fam
from . import netns as ns
from . import network6
from .kube import mgmt as kube_mgmt
from .kube import flannel
from .plan import EXT_CIDR, VXLAN_PORT, LabSpec, cni_of, overlay_of
from .state import PREFIX, Lab


def _links(lab: Lab, spec: LabSpec) -> list[str]:
    """Every veth, created from the host namespace straight into its two namespaces."""
    cmds = []
    for node in lab.nodes:
        cmds.append(f"link add name eth0 netns {node['netns']} type veth "
                    f"peer name {node['switch_port']} netns {lab.switch_netns}")
        for kind in () if spec.kubernetes else ("probe", "echo"):
            cmds.append(f"link add name eth0 netns {node[kind]['netns']} type veth "
                        f"peer name veth-{kind} netns {node['netns']}")
    cmds += [
        f"link add name eth0 netns {lab.gateway['netns']} type veth "
        f"peer name port-gw netns {lab.switch_netns}",
        f"link add name eth0 netns {lab.world['netns']} type veth "
        f"peer name ext-world netns {lab.gateway['netns']}",
        f"link add name eth0 netns {lab.dns['netns']} type veth "
        f"peer name ext-dns netns {lab.gateway['netns']}",
    ]
    return cmds


def _alias(dev: str, lab: Lab) -> str:
    return f"link set dev {dev} alias {PREFIX}{lab.name}"


# Fixed (locally administered) MAC addresses, so that every neighbour entry the lab's traffic
# needs is known when the lab is built and can be permanent, as flannel's VTEP entries are.
# The kernel's table of dynamic neighbour entries is one for the whole host
# (net.ipv4.neigh.default.gc_thresh3, 1024); a 32-node lab resolving by ARP overflowed it,
# and a full table breaks every namespace on the host. Permanent entries do not count.
# Kind 0 is the VTEP (``vtep_mac`` in the plan). Labs are separate L2 domains, so two labs
# may use the same addresses.
MAC_NODE, MAC_CNI, MAC_PROBE, MAC_ECHO, MAC_EDGE = 1, 2, 3, 4, 5
EDGE_GW, EDGE_EXT, EDGE_WORLD, EDGE_DNS = 1, 2, 3, 4


def _mac(kind: int, index: int) -> str:
    return f"0e:8e:{kind:02x}:00:{index >> 8:02x}:{index & 0xff:02x}"


def _perm(ip: str, mac: str, dev: str) -> str:
    return f"neigh replace {ip} lladdr {mac} dev {dev} nud permanent"


def _node_neighbours(lab: Lab, node: dict[str, Any]) -> list[str]:
    """Every underlay peer and the gateway on eth0, the node's own pods on cni0."""
    cmds = [_perm(peer["ip"], _mac(MAC_NODE, peer["index"]), "eth0")
            for peer in lab.nodes if peer["name"] != node["name"]]
    cmds.append(_perm(lab.gateway["ip"], _mac(MAC_EDGE, EDGE_GW), "eth0"))
    if lab.kubernetes or not fam.has_ipv4(lab.spec):  # real pods: the CNI's, by ARP
        return cmds
    cmds += [_perm(node[kind]["ip"], _mac(mac_kind, node["index"]), "cni0")
             for kind, mac_kind in (("probe", MAC_PROBE), ("echo", MAC_ECHO))]
    return cmds


def _edge_neighbours(lab: Lab) -> dict[str, list[str]]:
    """The gateway knows every node and the outside hosts; those know the gateway."""
    gw = [_perm(n["ip"], _mac(MAC_NODE, n["index"]), "eth0") for n in lab.nodes]
    gw += [_perm(lab.world["ip"], _mac(MAC_EDGE, EDGE_WORLD), "ext0"),
           _perm(lab.dns["ip"], _mac(MAC_EDGE, EDGE_DNS), "ext0")]
    back = [_perm(lab.gateway["ext_ip"], _mac(MAC_EDGE, EDGE_EXT), "eth0")]
    return {lab.gateway["netns"]: gw, lab.world["netns"]: back, lab.dns["netns"]: back}


def _node_batch(lab: Lab, node: dict[str, Any], spec: LabSpec) -> tuple[list[str], list[str]]:
    plen = ipaddress.ip_network(spec.node_cidr).prefixlen
    mtu_o, mtu_u = spec.overlay_mtu, spec.underlay_mtu
    ip_cmds = [
        "link set lo up",
        # One segment per skb keeps iptables' length match exact (no 64K GSO packets).
        f"link set eth0 address {_mac(MAC_NODE, node['index'])} mtu {mtu_u} gso_max_segs 1 up",
        _alias("eth0", lab),
        f"addr add {node['ip']}/{plen} dev eth0",
    ]
    if spec.cni == "flannel":
        # flanneld makes flannel.1 and its entries (or host-gw routes), the CNI bridge
        # plugin cni0: the node gets only its underlay.
        cmds = [*ip_cmds, f"route add default via {lab.gateway['ip']}",
                *_node_neighbours(lab, node)]
        if fam.has_ipv6(lab.spec):  # dual: flanneld finds eth0's IPv6 for flannel-v6.1
            cmds += network6.node_commands(lab, node, spec, cni0=False)[0]
        return cmds, []
    v4 = fam.has_ipv4(lab.spec)
    ip_cmds += [
        # No multicast snooping: a snooping bridge sends IGMP reports, each a neighbour entry.
        f"link add cni0 address {_mac(MAC_CNI, node['index'])} type bridge mcast_snooping 0",
        _alias("cni0", lab),
        *([f"addr add {node['pod_gateway']}/24 dev cni0"] if v4 else []),
    ]
    if spec.overlay == "vxlan" and v4:
        ip_cmds += [
            f"link add flannel.1 type vxlan id 1 dstport {VXLAN_PORT} local {node['ip']} "
            f"dev eth0 nolearning",
            f"link set flannel.1 address {node['vtep_mac']} mtu {mtu_o} up",
            _alias("flannel.1", lab), f"addr add {node['vtep_ip']}/32 dev flannel.1",
        ]
    for kind in () if spec.kubernetes else ("probe", "echo"):
        ip_cmds += [f"link set veth-{kind} mtu {mtu_o} master cni0 up", _alias(f"veth-{kind}", lab),
                    f"link set dev veth-{kind} type bridge_slave hairpin on"]
    ip_cmds += [f"link set cni0 mtu {mtu_o} up", f"route add default via {lab.gateway['ip']}"]
    ip_cmds += _node_neighbours(lab, node)
    overlay, fdb = _overlay_entries(lab, node) if v4 else ([], [])
    if fam.has_ipv6(lab.spec):
        cmds6, fdb6 = network6.node_commands(lab, node, spec, cni0=True)
        overlay, fdb = overlay + cmds6, fdb + fdb6
    return ip_cmds + overlay, fdb


def pod_route(peer: dict[str, Any]) -> str:
    """host-gw: the route to ``peer``'s pods, via its node address on the underlay."""
    return f"route replace {peer['pod_cidr']} via {peer['ip']} dev eth0"


def _overlay_entries(lab: Lab, node: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What flanneld programs for every peer: with VXLAN a neighbour, route and FDB entry;
    with host-gw only the route."""
    ip_cmds, fdb = [], []
    for peer in lab.nodes:
        if peer["name"] == node["name"]:
            continue
        if overlay_of(lab) == "host-gw":
            ip_cmds.append(pod_route(peer))
            continue
        ip_cmds += [
            f"neigh replace {peer['vtep_ip']} lladdr {peer['vtep_mac']} dev flannel.1 "
            "nud permanent",
            f"route replace {peer['pod_cidr']} via {peer['vtep_ip']} dev flannel.1 onlink",
        ]
        fdb.append(f"fdb replace {peer['vtep_mac']} dev flannel.1 dst {peer['ip']}")
    return ip_cmds, fdb


def reprogram_overlay(lab: Lab, node_name: str) -> None:
    """Bring a node's VXLAN device up and program it again, as flanneld does on restart
    (taking the device down drops its routes, neighbours and FDB entries)."""
    node = lab.node(node_name)
    if cni_of(lab) == "flannel":
        # The lab's entries name its own VTEP MACs, not flanneld's random ones: restart
        # the node's flanneld, which brings flannel.1 up and programs every peer again.
        flannel.restart(lab.state_dir / node_name, node["netns"],
                        [p["pod_cidr"] for p in lab.nodes if p["name"] != node_name])
        return
    ip_cmds, fdb = _overlay_entries(lab, node) if fam.has_ipv4(lab.spec) else ([], [])
    ups = ["link set flannel.1 up"] if fam.has_ipv4(lab.spec) else []
    if fam.has_ipv6(lab.spec):
        cmds6, fdb6 = network6.overlay_entries(lab, node)
        ip_cmds, fdb = ip_cmds + cmds6, fdb + fdb6
        if overlay_of(lab) == "vxlan":
            ups.append(f"link set {fam.VXLAN6_DEVICE} up")
    ns.ip_batch(node["netns"], [*ups, *ip_cmds])
    ns.run(["bridge", "-n", node["netns"], "-batch", "-"], input="\n".join(fdb) + "\n")


def _pod_batch(lab: Lab, node: dict[str, Any], pod: dict[str, Any], spec: LabSpec) -> list[str]:
    macs = {node[kind]["ip"]: _mac(m, node["index"]) for kind, m in (("probe", MAC_PROBE),
                                                                      ("echo", MAC_ECHO))}
    cmds = [
        "link set lo up",
        f"link set eth0 address {macs[pod['ip']]} mtu {spec.overlay_mtu} gso_max_segs 1 up",
        _alias("eth0", lab),
    ]
    if fam.has_ipv4(lab.spec):
        cmds += [
            f"addr add {pod['ip']}/24 dev eth0",
            f"route add default via {node['pod_gateway']}",
            # The gateway, and the node's other pod (a Service hairpin answers it directly).
            _perm(node["pod_gateway"], _mac(MAC_CNI, node["index"]), "eth0"),
            *[_perm(ip, mac, "eth0") for ip, mac in macs.items() if ip != pod["ip"]],
        ]
    if fam.has_ipv6(lab.spec):
        cmds += network6.pod_commands(lab, node, pod)
    return cmds


def _node_iptables(lab: Lab, node: dict[str, Any], spec: LabSpec, ipv6: bool = False) -> str:
    """kube-proxy (iptables mode) and flannel's NAT rules, as they are on a real node.

    One deviation: endpoints are picked with ``statistic --mode nth`` instead of
    ``random``, so that N*k requests from a node hit every backend exactly k times
    and a local-backend failure (bridge-nf-off) is always seen.

    The NodePort has ``externalTrafficPolicy: Local``: a node's NodePort leads to that
    node's own pods only, so a connect into node-2's NodePort tests node-2's host firewall
    and not some other node's pod behind the overlay.
    """
    svc = _service_of(lab.service, ipv6)
    backends = svc["backends"]
    host = "/128" if ipv6 else "/32"
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-SVC-K8SNET - [0:0]",
             ":KUBE-NODEPORTS - [0:0]", ":KUBE-SVL-K8SNET - [0:0]",
             ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":FLANNEL-POSTRTG - [0:0]"]
    lines += [f":KUBE-SEP-{i} - [0:0]" for i in range(len(backends))]
    lines += [
        "-A PREROUTING -m comment --comment kubernetes-service-portals -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment kubernetes-service-portals -j KUBE-SERVICES",
        "-A POSTROUTING -j KUBE-POSTROUTING",
        "-A POSTROUTING -j FLANNEL-POSTRTG",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -j MASQUERADE",
        f"-A KUBE-SERVICES -d {svc['ip']}{host} -p tcp --dport {svc['port']} -j KUBE-SVC-K8SNET",
    ]
    n = len(backends)
    for i, ip in enumerate(backends):
        rule = f"-A KUBE-SVC-K8SNET -m statistic --mode nth --every {n - i} --packet 0 " \
            if i < n - 1 else "-A KUBE-SVC-K8SNET "
        lines.append(rule + f"-j KUBE-SEP-{i}")
        to = f"[{ip}]:{svc['target_port']}" if ipv6 else f"{ip}:{svc['target_port']}"
        lines += [f"-A KUBE-SEP-{i} -s {ip}{host} -j KUBE-MARK-MASQ",  # hairpin
                  f"-A KUBE-SEP-{i} -p tcp -j DNAT --to-destination {to}"]
    lines += _node_port_rules(node, svc, ipv6)
    pod = str(fam.POD_CIDR6) if ipv6 else spec.pod_cidr
    multicast = "ff00::/8" if ipv6 else "224.0.0.0/4"
    lines += [f"-A FLANNEL-POSTRTG -s {pod} -d {pod} -j RETURN",
              f"-A FLANNEL-POSTRTG -s {pod} ! -d {multicast} -j MASQUERADE", "COMMIT"]
    return "\n".join(lines) + "\n"


def _service_of(svc: dict[str, Any], ipv6: bool) -> dict[str, Any]:
    """The Service as one family's kube-proxy rules see it: its ClusterIP and backends of
    that family (an ipv6 lab's primary ones are already IPv6)."""
    if not ipv6 or svc["ip"] == svc.get("ip6"):
        return svc
    return {**svc, "ip": svc["ip6"], "backends": svc["backends6"]}


def _node_port_rules(node: dict[str, Any], svc: dict[str, Any], ipv6: bool = False
                     ) -> list[str]:
    """The NodePort to this node's own backends (the KUBE-SEP chains of its pods), last in
    KUBE-SERVICES as kube-proxy puts it; none in a lab recorded before it had one."""
    port = svc.get("node_port")
    if not port:
        return []
    key = "ip6" if ipv6 else "ip"
    own = [i for i, ip in enumerate(svc["backends"])
           if ip in (node["probe"][key], node["echo"][key])]
    lines = ["-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
             f"-A KUBE-NODEPORTS -p tcp --dport {port} -j KUBE-SVL-K8SNET"]
    for k, i in enumerate(own):
        nth = f"-m statistic --mode nth --every {len(own) - k} --packet 0 " \
            if k < len(own) - 1 else ""
        lines.append(f"-A KUBE-SVL-K8SNET {nth}-j KUBE-SEP-{i}")
    return lines


def write_resolv(lab: Lab) -> None:
    search = " ".join(lab.dns["search"])
    for node in lab.nodes:
        pods = () if lab.kubernetes else ((node["probe"]["netns"], True),
                                          (node["echo"]["netns"], True))
        for netns_name, with_search in ((node["netns"], False), *pods):
            d = Path("/etc/netns") / netns_name
            d.mkdir(parents=True, exist_ok=True)
            # An ipv6 lab's pods have no IPv4 to reach the DNS server's IPv4 address.
            server = lab.dns["ip6"] if fam.of_lab(lab.spec) == "ipv6" else lab.dns["ip"]
            text = f"nameserver {server}\n"
            if with_search:
                text += f"search {search}\noptions ndots:5 timeout:1 attempts:1\n"
            (d / "resolv.conf").write_text(text)
            # The namespaces share the machine's hostname; tools (curl --local-port) look it
            # up, and with cluster DNS cut off that lookup would hang, as no real pod's does.
            (d / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {socket.gethostname()}\n")


def build(lab: Lab, spec: LabSpec) -> None:
    """Create and program every namespace of ``lab`` (no process is started here)."""
    ipv6 = fam.has_ipv6(lab.spec)
    ns.add_netns(lab.all_netns(), ipv6=ipv6)
    ns.ip_batch(None, _links(lab, spec))
    if spec.kubernetes:
        ns.ip_batch(None, kube_mgmt.links(lab))

    def node_setup(node: dict[str, Any]) -> None:
        ip_cmds, fdb = _node_batch(lab, node, spec)
        ns.ip_batch(node["netns"], ip_cmds)
        if fdb:
            ns.run(["bridge", "-n", node["netns"], "-batch", "-"], input="\n".join(fdb) + "\n")
        if spec.kubernetes:  # real kube-proxy and pods replace the simulated ones
            if spec.cni != "flannel":  # flanneld --ip-masq writes its own
                ns.iptables_restore(node["netns"], kube_mgmt.node_nat_rules(lab))
            return
        for kind in ("probe", "echo"):
            ns.ip_batch(node[kind]["netns"], _pod_batch(lab, node, node[kind], spec))
        if fam.has_ipv4(lab.spec):
            ns.iptables_restore(node["netns"], _node_iptables(lab, node, spec))
        if ipv6:
            ns.iptables_restore(node["netns"], _node_iptables(lab, node, spec, True), True)

    def switch_setup() -> None:
        cmds = ["link set lo up", "link add br0 type bridge mcast_snooping 0", _alias("br0", lab),
                "link set br0 up"]
        for port in [n["switch_port"] for n in lab.nodes] + ["port-gw"]:
            cmds += [f"link set {port} mtu {spec.underlay_mtu} master br0 up", _alias(port, lab)]
        ns.ip_batch(lab.switch_netns, cmds)
        ns.write_sysctls(lab.switch_netns, {"net.bridge.bridge-nf-call-iptables": "0"})

    def edge_setup() -> None:
        plen = ipaddress.ip_network(spec.node_cidr).prefixlen
        gw, ext_len = lab.gateway, EXT_CIDR.prefixlen
        neighbours = _edge_neighbours(lab)
        ns.ip_batch(gw["netns"], [
            "link set lo up", _alias("eth0", lab),
            f"link set eth0 address {_mac(MAC_EDGE, EDGE_GW)} mtu {spec.underlay_mtu} up",
            f"addr add {gw['ip']}/{plen} dev eth0",
            f"link add ext0 address {_mac(MAC_EDGE, EDGE_EXT)} type bridge mcast_snooping 0",
            _alias("ext0", lab),
            f"addr add {gw['ext_ip']}/{ext_len} dev ext0", "link set ext0 up",
            "link set ext-world master ext0 up", "link set ext-dns master ext0 up",
            *neighbours[gw["netns"]]])
        ns.write_sysctls(gw["netns"], {"net.ipv4.ip_forward": "1",
                                       "net.bridge.bridge-nf-call-iptables": "0"})
        edge6 = network6.edge_commands(lab) if ipv6 else {}
        if ipv6:
            ns.ip_batch(gw["netns"], edge6[gw["netns"]])
            ns.write_sysctls(gw["netns"], {"net.ipv6.conf.all.forwarding": "1"})
        for host, edge in ((lab.world, EDGE_WORLD), (lab.dns, EDGE_DNS)):
            ns.ip_batch(host["netns"], [
                "link set lo up", f"link set eth0 address {_mac(MAC_EDGE, edge)} up",
                _alias("eth0", lab), f"addr add {host['ip']}/{ext_len} dev eth0",
                f"route add default via {gw['ext_ip']}", *neighbours[host["netns"]],
                *edge6.get(host["netns"], [])])

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(node_setup, n) for n in lab.nodes]
        futures += [pool.submit(switch_setup), pool.submit(edge_setup)]
        for fut in futures:
            fut.result()
    # sysctls go through setns under a lock, so they are cheap but serial.
    for node in lab.nodes:
        ns.write_sysctls(node["netns"], {
            "net.ipv4.ip_forward": "1",
            "net.bridge.bridge-nf-call-iptables": "1",
            "net.ipv4.conf.all.rp_filter": "0",
            "net.ipv4.conf.default.rp_filter": "0",
            **(network6.NODE_SYSCTLS6 if ipv6 else {}),
        })
    write_resolv(lab)
