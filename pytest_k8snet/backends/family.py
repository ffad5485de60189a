"""One IP family of a dual-stack cluster, seen as a cluster of its own.

A dual-stack cluster is measured once per family: the same probes, aimed at the other
family's addresses. :class:`FamilyBackend` wraps the run's backend so that every node,
endpoint and target it gives has that family's address; commands still run in the same
pods (a probe pod has one address per family, as ``pod.status.podIPs`` lists them).
Nothing is started or removed here: the wrapped backend owns the probes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from . import Backend, ClusterTargets, ControlPlane, Endpoint, ExecResult, Network, Node

FAMILIES = ("ipv4", "ipv6")
FAMILY_NAMES = {"ipv4": "IPv4", "ipv6": "IPv6"}


def family_of(ip: str) -> str:
    return "ipv6" if ":" in ip else "ipv4"


def pick(ips: Sequence[str], family: str) -> str | None:
    """The address of ``family`` among ``ips`` (None: the node or pod has none)."""
    return next((ip for ip in ips if family_of(ip) == family), None)


def cluster_families(nodes: Sequence[Node]) -> tuple[str, ...]:
    """The families every node has an address in, the primary (each node's ``ip``) first;
    a node whose backend did not say (``ips`` empty) has its primary only."""
    if not nodes:
        return ()
    common: list[str] | None = None
    for node in nodes:
        have = [family_of(ip) for ip in (node.ips or (node.ip,))]
        common = have if common is None else [f for f in common if f in have]
    primary = family_of(nodes[0].ip)
    found = common or [primary]
    return tuple(sorted(found, key=lambda f: (f != primary, f)))


class FamilyBackend(Backend):
    """``inner`` with every address in ``family`` (see the module docstring)."""

    def __init__(self, inner: Backend, family: str) -> None:
        super().__init__(inner.timeout)
        self.inner = inner
        self.family = family
        self.kind = inner.kind
        self.probe_port = inner.probe_port

    def nodes(self) -> list[Node]:
        return [with_family(n, self.family) for n in self.inner.nodes()]

    def start(self, nodes: Sequence[Node]) -> None:
        """Nothing: the wrapped backend started the probes for every family."""

    def endpoint(self, node: str, network: Network) -> Endpoint:
        ep = self.inner.endpoint(node, network)
        ip = self.inner.endpoint_ips(ep).get(self.family, ep.ip)
        return Endpoint(ep.node, ep.network, ip, ep.name, self)

    def run(self, endpoint: Endpoint, argv: Sequence[str], timeout: float) -> ExecResult:
        self.exec_count += 1
        return self.inner.run(self.inner.endpoint(endpoint.node, endpoint.network), argv,
                              timeout)

    def cleanup(self) -> None:
        """Nothing: the wrapped backend removes what it started."""

    def targets(self) -> ClusterTargets:
        return self.inner.family_targets(self.family)

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def service_backends(self) -> list[str]:
        return self.inner.service_backends()

    def backend_node(self, backend_name: str) -> str:
        return self.inner.backend_node(backend_name)

    def node_problems(self) -> dict[str, list[str]]:
        return self.inner.node_problems()

    def endpoint_unavailable(self, node: str, network: Network) -> str | None:
        return self.inner.endpoint_unavailable(node, network)

    def dns_endpoints(self) -> list[tuple[str, str]]:
        return self.inner.dns_endpoints()

    def control_plane(self) -> ControlPlane:
        return self.inner.control_plane()

    def interface_mtu(self, endpoint: Endpoint) -> int | None:
        return self.inner.interface_mtu(self.inner.endpoint(endpoint.node, endpoint.network))


def with_family(node: Node, family: str) -> Node:
    """``node`` with its ``family`` address as ``ip`` (unchanged when it has none)."""
    ip = pick(node.ips, family)
    return node if ip is None or ip == node.ip else replace(node, ip=ip)
