"""The real cluster's place on the lab's network: its addresses and management network.

    cp (etcd, apiserver, controllers) 198.19.0.2 ─ mgmt (br0) ─ mgmt0 of every node 198.19.0.1N

The management network is the control path only: kubelets keep the underlay address as
their InternalIP, so probes, kube-proxy and VXLAN use the underlay as in production, and a
fault on a node's underlay never cuts the API server's path to its kubelet.
"""

from __future__ import annotations

from typing import Any

from .. import family as fam
from .. import netns as ns
from ..state import Lab, kubeconfig_path
from .constants import (API_PORT, CLUSTER_DNS, CLUSTER_DNS6, CLUSTER_DOMAIN, COREDNS_IMAGE,
                        KUBE_VERSION, MGMT_CIDR, PAUSE_IMAGE, PROBE_IMAGE, SERVICE_CIDR)


def plan(lab: Lab) -> dict[str, Any]:
    """The management network and where the cluster keeps its files."""
    p = f"k8snet-{lab.name}"
    hosts = list(MGMT_CIDR.hosts())
    dual = fam.has_ipv6(lab.spec)  # plan.LabSpec allows only ipv4 and dual with a cluster
    return {
        "version": KUBE_VERSION,
        "mgmt_netns": f"{p}-mgmt",
        "cp_netns": f"{p}-cp",
        "cp_ip": str(hosts[1]),
        "mgmt_cidr": str(MGMT_CIDR),
        "nodes": {n["name"]: str(hosts[9 + n["index"]]) for n in lab.nodes},
        "api_server": f"https://{hosts[1]}:{API_PORT}",
        "kubeconfig": str(kubeconfig_path(lab.name)),
        # Comma-separated, IPv4 first, as the components' flags and kubeadm take them.
        "service_cidr": SERVICE_CIDR + (f",{fam.SERVICE_CIDR6}" if dual else ""),
        "cluster_cidr": lab.spec["pod_cidr"] + (f",{fam.POD_CIDR6}" if dual else ""),
        "cluster_dns": CLUSTER_DNS,
        **({"cluster_dns6": CLUSTER_DNS6} if dual else {}),
        "cluster_domain": CLUSTER_DOMAIN,
        "images": {"probe": PROBE_IMAGE, "pause": PAUSE_IMAGE, "coredns": COREDNS_IMAGE},
        "api_port": 0,
    }



def links(lab: Lab) -> list[str]:
    k = lab.kubernetes
    cmds = [f"link add name mgmt0 netns {n['netns']} type veth "
            f"peer name mport-{n['name']} netns {k['mgmt_netns']}" for n in lab.nodes]
    cmds.append(f"link add name eth0 netns {k['cp_netns']} type veth "
                f"peer name mport-cp netns {k['mgmt_netns']}")
    return cmds


def setup_network(lab: Lab) -> None:
    k = lab.kubernetes
    plen = MGMT_CIDR.prefixlen
    alias = f"link set dev {{}} alias k8snet-{lab.name}"
    cmds = ["link set lo up", "link add br0 type bridge", alias.format("br0"), "link set br0 up"]
    for port in [f"mport-{n['name']}" for n in lab.nodes] + ["mport-cp"]:
        cmds += [f"link set {port} master br0 up", alias.format(port)]
    ns.ip_batch(k["mgmt_netns"], cmds)
    ns.write_sysctls(k["mgmt_netns"], {"net.bridge.bridge-nf-call-iptables": "0"})
    ns.ip_batch(k["cp_netns"], ["link set lo up", "link set eth0 up", alias.format("eth0"),
                                f"addr add {k['cp_ip']}/{plen} dev eth0"])
    for n in lab.nodes:
        ns.ip_batch(n["netns"], ["link set mgmt0 up", alias.format("mgmt0"),
                                 f"addr add {k['nodes'][n['name']]}/{plen} dev mgmt0"])


def node_nat_rules(lab: Lab) -> str:
    """flannel's NAT (pods leaving the Pod network are masqueraded); kube-proxy adds its own."""
    pod = lab.spec["pod_cidr"]
    return "\n".join([
        "*nat", ":POSTROUTING ACCEPT [0:0]", ":FLANNEL-POSTRTG - [0:0]",
        "-A POSTROUTING -m comment --comment flanneld-masq -j FLANNEL-POSTRTG",
        f"-A FLANNEL-POSTRTG -s {pod} -d {pod} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {pod} ! -d 224.0.0.0/4 -j MASQUERADE",
        "COMMIT"]) + "\n"
