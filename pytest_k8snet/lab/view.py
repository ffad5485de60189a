"""A typed, read-only view of a built lab, for code that uses a lab rather than builds it.

The record (:class:`.state.Lab`) stays plain JSON-shaped dicts, as in the state file and
``k8snet-lab status --json``; :func:`view_of` reads it once into frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .family import POD_CIDR6, has_ipv6, of_lab
from .netns import LabError
from .state import Lab


@dataclass(frozen=True)
class LabPod:
    """A simulated pod: its name (also its DNS name under the Service), address, namespace."""

    name: str
    ip: str
    netns: str
    ip6: str = ""  # --ip-family ipv6|dual: its IPv6 address ("" in an IPv4 lab)

    @property
    def ips(self) -> tuple[str, ...]:
        """One address per family, the primary (``ip``) first."""
        return tuple(dict.fromkeys(ip for ip in (self.ip, self.ip6) if ip))


@dataclass(frozen=True)
class LabNode:
    name: str
    index: int
    ip: str  # on the underlay (the node network)
    netns: str  # the node's host network
    pod_cidr: str
    probe: LabPod
    echo: LabPod
    ip6: str = ""  # on the underlay, where the lab has IPv6
    pod_cidr6: str = ""


@dataclass(frozen=True)
class LabService:
    """The Service in front of every probe and echo pod."""

    name: str
    fqdn: str
    ip: str
    port: int
    target_port: int
    backend_pods: tuple[str, ...]  # the names of the pods behind it
    # On every node's address, to that node's own pods (externalTrafficPolicy: Local);
    # None in a lab recorded before the lab had one.
    node_port: int | None = None
    ip6: str = ""  # the IPv6 ClusterIP, where the lab has IPv6


@dataclass(frozen=True)
class LabWorld:
    """The host outside the cluster that egress reaches, and the network it is on."""

    name: str
    ip: str
    port: int
    network: str
    ip6: str = ""


@dataclass(frozen=True)
class LabView:
    name: str
    nodes: tuple[LabNode, ...]
    service: LabService
    world: LabWorld
    dns_ip: str  # the cluster DNS server
    pod_cidr: str
    ip_family: str = "ipv4"
    dns_ip6: str = ""
    pod_cidr6: str = ""

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise LabError(f"unknown node {name!r} in lab {self.name} (nodes: {known})")


def _pod(data: Mapping[str, Any]) -> LabPod:
    return LabPod(name=str(data["name"]), ip=str(data["ip"]), netns=str(data["netns"]),
                  ip6=str(data.get("ip6", "")))


def view_of(lab: Lab) -> LabView:
    """The simulated lab's typed view (LabError for a lab running real Kubernetes: its
    record still plans the simulated pods and Service, but none of them exists there)."""
    if lab.kubernetes:
        raise LabError(f"lab {lab.name} runs real Kubernetes: it has no simulated pods or "
                       f"Service to probe; test it through its cluster "
                       f"(KUBECONFIG={lab.kubernetes['kubeconfig']})")
    nodes = tuple(LabNode(name=str(n["name"]), index=int(n["index"]), ip=str(n["ip"]),
                          netns=str(n["netns"]), pod_cidr=str(n["pod_cidr"]),
                          probe=_pod(n["probe"]), echo=_pod(n["echo"]),
                          ip6=str(n.get("ip6", "")), pod_cidr6=str(n.get("pod_cidr6", "")))
                  for n in lab.nodes)
    svc = lab.service
    return LabView(
        name=lab.name, nodes=nodes,
        service=LabService(name=str(svc["name"]), fqdn=str(svc["fqdn"]), ip=str(svc["ip"]),
                           port=int(svc["port"]), target_port=int(svc["target_port"]),
                           node_port=int(svc["node_port"]) if "node_port" in svc else None,
                           ip6=str(svc.get("ip6", "")),
                           backend_pods=tuple(p.name for n in nodes for p in (n.probe, n.echo))),
        world=LabWorld(name=str(lab.world["name"]), ip=str(lab.world["ip"]),
                       port=int(lab.world["port"]), network=str(lab.world["network"]),
                       ip6=str(lab.world.get("ip6", ""))),
        dns_ip6=str(lab.dns.get("ip6", "")),
        dns_ip=str(lab.dns["ip"]), pod_cidr=str(lab.spec["pod_cidr"]),
        ip_family=of_lab(lab.spec), pod_cidr6=str(POD_CIDR6) if has_ipv6(lab.spec) else "")
