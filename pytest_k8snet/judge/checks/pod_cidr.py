"""test_pod_cidr: the Pod and Service CIDRs do not overlap any node network."""

from __future__ import annotations

from ..context import Check, Context
from ..model import PASSED, Finding
from ...probes.nodecheck import cidr_overlaps
from .nodes_ready import host_checks

NAME = "test_pod_cidr"
# Interfaces a CNI, kube-proxy or the node's DNS cache own: they carry Pod or Service
# addresses by design (kube-ipvs0 holds every Service IP, tunl0 and cni0 a pod address),
# so they never count as node networks that overlap.
CNI_IFACES = ("lo", "cni", "cbr", "flannel", "vxlan.calico", "vxlan", "tunl", "cali", "cilium_",
              "lxc", "weave", "vethwe", "kube-ipvs", "kube-bridge", "kube-dummy-if", "docker",
              "nodelocaldns", "wg", "wireguard", "veth", "genev", "antrea", "ovn", "br-int")


def judge(ctx: Context) -> None:
    overlaps: dict[str, list[str]] = {}
    for n in ctx.nodes:
        c = host_checks(ctx, NAME, n)
        if c is None:
            continue
        addresses = [a for i in c.get("interfaces") or [] for a in i.get("addresses") or []
                     if not str(i.get("name")).startswith(CNI_IFACES)]
        found = cidr_overlaps(addresses, list(ctx.targets.get("pod_cidrs") or []),
                              ctx.targets.get("service_cidr"))
        if found:
            overlaps[n] = found
        else:
            ctx.set_verdict(NAME, n, PASSED)
    if not overlaps:
        return
    f = ctx.add(Finding(
        "pod-cidr-overlap", "pod-cidr-overlap",
        f"Node networks overlap the cluster's CIDRs on {', '.join(overlaps)}",
        tuple(overlaps), evidence={n: {"overlaps": o} for n, o in overlaps.items()},
        would_contradict=("node addresses outside the Pod and Service CIDRs",)))
    for n, found in overlaps.items():
        ctx.fail(NAME, n, f"{n}: " + "; ".join(found), f)


CHECK = Check(NAME, "nodes", judge)
