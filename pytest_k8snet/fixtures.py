"""The fixtures users build their own network acceptance tests from (the node and pair
fixtures are parametrized over the selected nodes by :func:`.selection.parametrize`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .backends import BackendError, Endpoint, Node
from .judge import Judgement
from .measure import Cluster, Pair
from .options import Settings
from .probes import PathMtuResult
from .run import RUN_KEY, NoNodesError


@pytest.fixture(scope="session")
def k8s_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved k8snet settings (command line > ini > env > defaults), frozen."""
    return pytestconfig.stash[RUN_KEY].settings


@pytest.fixture(scope="session")
def k8s_cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The cluster with a probe pod and a host-network probe up on every selected node.

    Session-scoped. Gives a :class:`pytest_k8snet.Cluster`: ``.nodes``, ``.pair(src, dst)``,
    ``.endpoint(node, network)`` and cached, concurrently taken measurements
    (``.ping()``, ``.path_mtu()``, ``.udp()``, ``.dns()``, ``.egress()`` ...).
    Probes are removed at the end of the run, on Ctrl-C and on SIGTERM.
    """
    run = pytestconfig.stash[RUN_KEY]
    try:
        cluster = run.cluster()
    except NoNodesError as exc:
        # Skipping here made a selector that matches nothing a green run that tested nothing.
        pytest.exit(f"k8snet: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    except BackendError as exc:
        pytest.exit(f"k8snet: {exc}", returncode=pytest.ExitCode.INTERNAL_ERROR)
    yield cluster
    run.cleanup()


@pytest.fixture(scope="session")
def k8s_document(pytestconfig: pytest.Config, k8s_cluster: Cluster) -> dict[str, Any]:
    """The run's measurement document: every probe on every selected pair and node, taken
    once per run (shared under xdist), with the evidence of the failing findings."""
    return pytestconfig.stash[RUN_KEY].document()


@pytest.fixture(scope="session")
def k8s_judgement(pytestconfig: pytest.Config, k8s_document: dict[str, Any]) -> Judgement:
    """The judge's findings and per-test verdicts for :func:`k8s_document`."""
    return pytestconfig.stash[RUN_KEY].judgement()


@pytest.fixture(scope="session")
def k8s_nodes(k8s_cluster: Cluster) -> list[Node]:
    """The selected nodes: Linux nodes that can run the probes, narrowed by
    ``--k8s-node-selector`` (repeatable) and ``pytest_k8snet_select_nodes``."""
    return list(k8s_cluster.nodes)


@pytest.fixture
def k8s_node(request: pytest.FixtureRequest, k8s_cluster: Cluster) -> Node:
    """One node; tests using it are parametrized over every selected node (ids: node names)."""
    return k8s_cluster.node(str(request.param))


@pytest.fixture
def k8s_node_subject(request: pytest.FixtureRequest) -> str:
    """What a node check judges: one node's name, parametrized over every selected node
    like ``k8s_node``. Above ``--k8s-per-node-threshold`` a test marked
    ``pytest_k8snet.per_node.cluster_wide`` gets ``"all-nodes"`` once instead, and
    reads every node's verdict (``pytest_k8snet.judge.per_node.cluster_verdict``)."""
    return str(request.param)


def _pair(request: pytest.FixtureRequest, cluster: Cluster, network: Any) -> Pair:
    src, dst, *family = request.param  # (src, dst, family) on a dual-stack cluster
    if family:
        return cluster.pair(src, dst, network, family[0])
    return cluster.pair(src, dst, network)


@pytest.fixture
def pod_pair(request: pytest.FixtureRequest, k8s_cluster: Cluster) -> Pair:
    """Source and destination probe pods on two nodes; parametrized by ``--k8s-pairs``.

    Ids read ``node-1->node-2``. ``pod_pair.src.run(argv)`` runs a command in the source pod;
    ``pod_pair.dst.ip`` is the destination pod's IP.
    """
    return _pair(request, k8s_cluster, "pod")


@pytest.fixture
def host_pair(request: pytest.FixtureRequest, k8s_cluster: Cluster) -> Pair:
    """Like ``pod_pair``, between the nodes' host-network probes (node to node)."""
    return _pair(request, k8s_cluster, "host")


@pytest.fixture
def path_mtu(k8s_cluster: Cluster) -> Callable[..., PathMtuResult]:
    """``path_mtu(src, dst, ceiling=None)``: the exact largest IP packet that crosses, in bytes.

    ``src`` and ``dst`` are endpoints (``pod_pair.src``, ``pod_pair.dst``). Binary search with
    Don't-Fragment pings up to ``ceiling`` (default: the expected MTU); the result also has
    ``.probes`` (pings sent) and ``.seconds``.
    """
    def measure(src: Endpoint, dst: Endpoint, ceiling: int | None = None) -> PathMtuResult:
        return k8s_cluster.measure_path_mtu(src, dst, ceiling)

    return measure


@pytest.fixture
def k8s_node_host(k8s_node: Node, k8s_cluster: Cluster) -> Any:
    """A testinfra ``Host`` on the node, through its host-network probe.

    ``k8s_node_host.sysctl("net.ipv4.ip_forward")``, ``k8s_node_host.interface("eth0").mtu``.
    Parametrized over nodes like ``k8s_node``.
    """
    from .testinfra_backend import host_for

    return host_for(k8s_cluster.endpoint(k8s_node.name, "host"))

