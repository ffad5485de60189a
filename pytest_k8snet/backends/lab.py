"""The lab backend: probe endpoints are the lab's probe pods and node namespaces."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from .. import lab as labmod
from ..lab.family import SERVICE_CIDR6
from ..lab.kube import PROBE_IMAGE
from . import (Backend, BackendError, host_port, ClusterTargets, ControlPlane, Endpoint, ExecResult,
               Network, Node)
from . import run_subprocess
from .family import family_of


# What the plugin needs to know of a lab, said here so that nothing else imports the lab.
MAX_LAB_NODES = labmod.MAX_NODES
KUBE_LAB_PROBE_IMAGE = PROBE_IMAGE  # the image `k8snet-lab build` imports on every node
LAB_EGRESS_URL = f"http://{labmod.EXTERNAL_NAME}:{labmod.WORLD_PORT}/"  # the world host, by name


def running_labs() -> list[str]:
    return labmod.running_labs()


def runs_kubernetes(name: str) -> bool:
    """A running lab built with --kubernetes (read from its local state file: no I/O to any
    cluster)."""
    return labmod.runs_kubernetes(name)


def kubeconfig_of(name: str) -> str:
    """Where a lab with --kubernetes keeps its cluster's kubeconfig."""
    return str(labmod.kubeconfig_path(name))


def check_running(name: str) -> None:
    """BackendError (the lab's own one-line reason) unless lab ``name`` is up."""
    try:
        labmod.load(name)
    except labmod.LabError as exc:
        raise BackendError(str(exc)) from None


def kube_lab_up(name: str, nodes: int) -> None:
    """Bring up lab ``name`` with a real Kubernetes cluster; BackendError saying why not."""
    try:
        labmod.up(labmod.LabSpec(name=name, nodes=nodes, kubernetes=True))
    except labmod.LabError as exc:
        raise BackendError(f"could not bring up lab {name} with Kubernetes: {exc}") from None


def down_if_running(name: str) -> None:
    """Remove lab ``name`` if this user can and it is up (cleanup: never raises for absence)."""
    if os.geteuid() == 0 and name in labmod.running_labs():
        labmod.down(name)


class LabBackend(Backend):
    """Runs probes with ``ip netns exec`` in a lab that is running or that it brings up.

    With ``owned=True`` the backend built the lab and removes it in :meth:`cleanup`.
    """

    kind = "lab"
    probe_port = 8080

    def __init__(self, lab: labmod.Lab, timeout: float, owned: bool = False) -> None:
        super().__init__(timeout)
        self.lab = lab  # the record, as the state file has it (for identity())
        self.view = labmod.view_of(lab)
        self.owned = owned
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._count_lock = threading.Lock()  # probes run from many threads at once

    @classmethod
    def attach(cls, name: str, timeout: float) -> "LabBackend":
        try:
            return cls(labmod.load(name), timeout)
        except labmod.LabError as exc:
            raise BackendError(str(exc)) from None

    @classmethod
    def create(cls, name: str, nodes: int, timeout: float) -> "LabBackend":
        try:
            return cls(labmod.up(labmod.LabSpec(name=name, nodes=nodes)), timeout, owned=True)
        except labmod.LabError as exc:
            raise BackendError(f"could not bring up lab {name}: {exc}") from None

    def nodes(self) -> list[Node]:
        return _nodes(self.view)

    def keep_hint(self) -> str:
        return f"Lab {self.lab.name} is still up; remove it with `k8snet-lab down {self.lab.name}`."

    def start(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            info = self.view.node(node.name)
            self._endpoints[(node.name, "pod")] = Endpoint(
                node.name, "pod", info.probe.ip, info.probe.name, self)
            self._endpoints[(node.name, "host")] = Endpoint(
                node.name, "host", _node_ips(self.view, info)[0], info.name, self)

    def endpoint(self, node: str, network: Network) -> Endpoint:
        try:
            return self._endpoints[(node, network)]
        except KeyError:
            raise BackendError(f"no {network} probe started on {node}") from None

    def _netns(self, endpoint: Endpoint) -> str:
        info = self.view.node(endpoint.node)
        return info.probe.netns if endpoint.network == "pod" else info.netns

    def run(self, endpoint: Endpoint, argv: Sequence[str], timeout: float) -> ExecResult:
        # Counted like the kube backend's API execs: one ``ip netns exec`` is one session.
        with self._count_lock:
            self.exec_count += 1
        return run_subprocess(argv, ["ip", "netns", "exec", self._netns(endpoint)], timeout)

    def cleanup(self) -> None:
        if self.owned:
            labmod.down(self.lab.name)
            self.owned = False

    def targets(self) -> ClusterTargets:
        view = self.view
        if view.ip_family == "ipv6":
            return self.family_targets("ipv6")
        return ClusterTargets(
            service_ip=view.service.ip, service_port=view.service.port,
            service_name=view.service.fqdn,
            dns_names=("kubernetes.default.svc.cluster.local", view.service.fqdn),
            external_name=view.world.name,
            egress_url=f"http://{view.world.ip}:{view.world.port}/",
            pod_cidrs=(view.pod_cidr,), service_cidr="10.96.0.0/12",
            node_port=view.service.node_port)

    def endpoint_ips(self, endpoint: Endpoint) -> dict[str, str]:
        info = self.view.node(endpoint.node)
        if endpoint.network == "pod":
            return {family_of(ip): ip for ip in info.probe.ips}
        return {family_of(ip): ip for ip in _node_ips(self.view, info)}

    def family_targets(self, family: str) -> ClusterTargets:
        """The Service's ClusterIP and the Pod CIDR of ``family``; egress and DNS stay as
        :meth:`targets` has them (the names resolve to both families)."""
        view = self.view
        if family != "ipv6" or not view.service.ip6:
            return self.targets()
        world = host_port(view.world.ip6, view.world.port)
        return ClusterTargets(
            service_ip=view.service.ip6, service_port=view.service.port,
            service_name=view.service.fqdn,
            dns_names=("kubernetes.default.svc.cluster.local", view.service.fqdn),
            external_name=view.world.name, egress_url=f"http://{world}/",
            pod_cidrs=(view.pod_cidr6,), service_cidr=SERVICE_CIDR6,
            node_port=view.service.node_port)

    def service_backends(self) -> list[str]:
        return list(self.view.service.backend_pods)

    def backend_node(self, backend_name: str) -> str:
        return backend_name.split("-", 1)[1]

    def control_plane(self) -> ControlPlane:
        # The simulated lab has no API server; its DNS server is the cluster DNS.
        return ControlPlane(cluster_dns=self.view.dns_ip6 if self.view.ip_family == "ipv6"
                            else self.view.dns_ip)

    def identity(self) -> dict[str, Any]:
        return {"kind": "lab", "name": self.lab.name, "nodes": len(self.lab.nodes),
                "spec": self.lab.spec, "faults": list(self.lab.faults)}


def _node_ips(view: labmod.LabView, n: labmod.LabNode) -> tuple[str, ...]:
    """The node's addresses in the cluster's families, primary first: an ipv6 lab's nodes
    keep an IPv4 underlay address for the lab's own plumbing, not the cluster's."""
    return {"ipv4": (n.ip,), "ipv6": (n.ip6,), "dual": (n.ip, n.ip6)}[view.ip_family]


def _nodes(view: labmod.LabView) -> list[Node]:
    out = []
    for n in view.nodes:
        ips = _node_ips(view, n)
        cidrs = {"ipv4": (n.pod_cidr,), "ipv6": (n.pod_cidr6,),
                 "dual": (n.pod_cidr, n.pod_cidr6)}[view.ip_family]
        out.append(Node(name=n.name, ip=ips[0], pod_cidrs=cidrs, ready=True,
                        labels={"kubernetes.io/hostname": n.name,
                                "k8snet.lab/index": str(n.index)},
                        ips=() if view.ip_family == "ipv4" else ips))
    return out


def planned_nodes(name: str, count: int) -> list[Node]:
    """The nodes a lab *would* have, computed without building it (for collection)."""
    return _nodes(labmod.view_of(labmod.plan(labmod.LabSpec(name=name, nodes=count))))
