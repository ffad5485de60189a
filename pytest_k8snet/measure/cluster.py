"""The cluster under test, as ``k8s_cluster`` gives it: endpoints, pairs, and every
measurement, each taken concurrently once per run.

Tests ask for a measurement of one pair; the first ask measures *all* pairs at once on a
thread pool and caches the lot, so a suite of N parametrized tests waits on the network
once per kind of probe, not once per test. This class only delegates: the engine
(engine.py) runs the probes, the cache (cache.py) keeps each measurement once per run and
shares it with the other xdist workers, and one module per measurement family measures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..backends import Backend, ClusterTargets, Endpoint, ExecResult, Network, Node
from ..backends.family import FamilyBackend, cluster_families, with_family
from ..options import Settings
from ..probes.batch import DEFAULT_PARALLEL
from ..probes.dns import DnsResult
from ..probes.egress import EgressResult
from ..probes.http import HttpResult
from ..probes.nodecheck import NodeCheckResult
from ..probes.pathmtu import PathMtuResult
from ..probes.ping import PingResult
from ..probes.ports import PortCheck
from . import (control_plane, mtu, node_checks, outbound, reachability, readiness, service,
               transfers, udp)
from .cache import MeasurementCache
from .engine import BatchItem, Engine, PairKey
from .service import ServiceResult
from .udp import UdpCheck

T = TypeVar("T")
K = TypeVar("K")

__all__ = ["Cluster", "Pair", "ServiceResult", "UdpCheck"]


@dataclass(frozen=True)
class Pair:
    """Two endpoints on one network; ``id`` reads like ``node-1->node-2``, and on a
    dual-stack cluster ``node-1->node-2/ipv6`` (``family`` set only there)."""

    src: Endpoint
    dst: Endpoint
    family: str | None = None

    @property
    def network(self) -> Network:
        return self.src.network

    @property
    def id(self) -> str:
        return f"{self.src.node}->{self.dst.node}" + (f"/{self.family}" if self.family else "")

    @property
    def key(self) -> PairKey:
        return (self.src.node, self.dst.node)

    def __str__(self) -> str:
        return f"{self.id} ({self.network})"


class Cluster:
    """What ``k8s_cluster`` gives: the backend with probes up, plus cached measurements."""

    def __init__(self, backend: Backend, settings: Settings, nodes: list[Node],
                 all_nodes: list[Node], shared_dir: Path | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.nodes = nodes
        self.all_nodes = all_nodes
        self.shared_dir = shared_dir
        self._cache = MeasurementCache(shared_dir)
        self._engine = Engine(backend, settings, nodes, all_nodes, self._cache)
        self._readings = readiness.Readings()

    # -- the cluster ----------------------------------------------------------------------

    @property
    def measurements(self) -> dict[str, Any]:
        """Every measurement taken so far, by kind (``ping-pod-56``, ``udp``...)."""
        return self._cache.measurements

    @property
    def probe_count(self) -> int:
        return self._engine.probe_count

    @property
    def probe_failures(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Probe runs that failed for a reason of their own: kind -> key -> failures."""
        return self._engine.probe_failures

    def noted_failures(self) -> list[dict[str, Any]]:
        """:attr:`probe_failures` as flat entries ordered by kind and key (the document's)."""
        return self._engine.noted_failures()

    @property
    def node_names(self) -> list[str]:
        return self._engine.node_names

    @property
    def targets(self) -> ClusterTargets:
        return self.backend.targets()

    def endpoint(self, node: str, network: Network = "pod") -> Endpoint:
        return self._engine.endpoint(node, network)

    def pair(self, src: str, dst: str, network: Network = "pod", family: str | None = None
             ) -> Pair:
        """The pair; with ``family`` (a dual-stack cluster's) its endpoints have that
        family's addresses and its id says the family."""
        if family is None:
            return Pair(self.endpoint(src, network), self.endpoint(dst, network))
        backend = self.backend if family == self.families[0] else FamilyBackend(
            self.backend, family)
        return Pair(backend.endpoint(src, network), backend.endpoint(dst, network), family)

    @property
    def families(self) -> tuple[str, ...]:
        """The IP families every selected node has, primary first (backends.family)."""
        return cluster_families(self.nodes) or ("ipv4",)

    def for_family(self, family: str) -> "Cluster":
        """This cluster measured in ``family`` (the backend's probes, that family's
        addresses): its own cache, so nothing it measures mixes with this one's."""
        return Cluster(FamilyBackend(self.backend, family), self.settings,
                       [with_family(n, family) for n in self.nodes],
                       [with_family(n, family) for n in self.all_nodes])

    def pairs(self, mode: str | None = None) -> list[PairKey]:
        return self._engine.pairs(mode)

    def node(self, name: str) -> Node:
        return self._engine.node(name)

    def service_backends(self) -> list[str]:
        return self.backend.service_backends()

    def close(self) -> None:
        self._engine.close()

    # -- running probes -------------------------------------------------------------------

    def run(self, ep: Endpoint, argv: Sequence[str], timeout: float | None = None
            ) -> tuple[int, str, str]:
        return self._engine.run(ep, argv, timeout)

    def exec(self, ep: Endpoint, argv: Sequence[str], timeout: float | None = None
             ) -> ExecResult:
        """Run a probe, a failure of its own noted against the measurement it serves."""
        return self._engine.exec(ep, argv, timeout)

    def batch(self, ep: Endpoint, kind: str | None, items: Sequence[BatchItem],
              parallel: int = DEFAULT_PARALLEL, prelude: str = "", slack: float = 10.0,
              setup: str = "") -> dict[Any, ExecResult]:
        """Many probes in ``ep`` in one exec, each with its own result (Engine.batch)."""
        return self._engine.batch(ep, kind, items, parallel, prelude, slack, setup)

    def concurrently(self, fn: Callable[[K], T], items: Sequence[K]) -> list[T]:
        """``fn`` over ``items`` at once on the cluster's pool, results in order."""
        return self._engine.map(fn, items)

    def shared(self, kind: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per run, shared with the other xdist workers."""
        return self._cache.once(kind, compute)

    # -- measurements ---------------------------------------------------------------------

    def readiness(self) -> dict[str, list[str]]:
        """Per node: what keeps it from being a healthy, probeable node (empty when fine)."""
        return readiness.readiness(self._engine, self._readings)

    def unusable(self, node: str) -> str | None:
        """Why probes cannot run on ``node`` (None when they can)."""
        return readiness.unusable(self._engine, self._readings, node)

    def ping(self, network: Network = "pod", payload: int = 56, to: Network | None = None
             ) -> dict[PairKey, PingResult]:
        return reachability.pings(self._engine, network, payload, to)

    def expected_mtu(self) -> int:
        """``--k8s-expect-mtu``, else the smallest probe-pod interface MTU."""
        return mtu.expected_mtu(self._engine, self._readings)

    def pod_mtus(self) -> dict[str, int | None]:
        return mtu.pod_mtus(self._engine, self._readings)

    def measure_path_mtu(self, src: Endpoint, dst: Endpoint, ceiling: int | None = None
                         ) -> PathMtuResult:
        return mtu.measure_path_mtu(self._engine, self._readings, src, dst, ceiling)

    def path_mtu(self, network: Network = "pod") -> dict[PairKey, PathMtuResult]:
        return mtu.path_mtus(self._engine, self._readings, network)

    def large_http(self) -> dict[PairKey, HttpResult]:
        return transfers.large_http(self._engine, self._readings)

    def service_http(self) -> dict[str, list[HttpResult]]:
        return service.service_http(self._engine)

    def service(self, rounds: int = 3) -> dict[str, ServiceResult]:
        return service.service(self._engine, rounds)

    def udp(self) -> dict[PairKey, UdpCheck]:
        return udp.udp(self._engine, self._readings)

    def udp_receive_drops(self) -> dict[str, int | None]:
        return udp.udp_receive_drops(self._engine, self._readings)

    def dns(self) -> dict[str, list[DnsResult]]:
        return outbound.dns_lookups(self._engine)

    def egress(self) -> dict[tuple[str, Network], EgressResult]:
        return outbound.egress_checks(self._engine, self._readings)

    def node_checks(self) -> dict[str, NodeCheckResult]:
        return node_checks.node_checks(self._engine, self._readings)

    def overlay_port(self, node: str) -> int | None:
        """The UDP port ``node``'s overlay uses on the wire (None: no UDP encapsulation)."""
        return node_checks.overlay_port(self._engine, self._readings, node)

    def control_plane_ports(self) -> dict[str, list[PortCheck]]:
        return control_plane.control_plane_ports(self._engine)
