"""The fixtures users build their own network acceptance tests from, and how the node and
pair fixtures are parametrized over the selected nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .backends import BackendError, Endpoint, Node
from .judge import Judgement
from .measure import Cluster, Pair
from .options import PAIR_MODES, Settings
from .probes import PathMtuResult
from .run import RUN_KEY, NoNodesError, Run
from .selection import marker_args, narrow, select_pairs

PAIR_FIXTURES = ("pod_pair", "host_pair")
NODE_FIXTURES = ("k8s_node", "k8s_node_host")
# Ids of the one placeholder test that stands for "every node" / "every pair" where node
# names cannot be had without cluster I/O (--collect-only, --fixtures on a kube backend).
OFFLINE_IDS = {"k8s_node": "cluster-nodes", "pod_pair": "cluster-pairs",
               "host_pair": "cluster-pairs"}


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


def _pair(request: pytest.FixtureRequest, cluster: Cluster, network: Any) -> Pair:
    src, dst = request.param
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


# -- parametrization over the selected nodes (pytest_generate_tests) ---------------------------

def parametrize(metafunc: pytest.Metafunc, run: Run) -> None:
    """Parametrize node and pair fixtures by node name (ids ``node-1``, ``node-1->node-2``).

    Node names come from the cluster at collection: one read-only node list, only when a
    collected test asks for a node or pair fixture. A lab's are computed locally. In
    ``--collect-only`` and ``--fixtures`` a kube cluster is not contacted: each test
    appears once with a placeholder id (``cluster-nodes``, ``cluster-pairs``).
    """
    wants_pairs = [f for f in PAIR_FIXTURES if f in metafunc.fixturenames]
    wants_nodes = [f for f in NODE_FIXTURES if f in metafunc.fixturenames]
    if not wants_pairs and not wants_nodes:
        return
    selector, pair_mode = marker_args(metafunc)
    mode = pair_mode or run.settings.pairs
    if wants_pairs and not PAIR_MODES.match(mode):
        raise pytest.UsageError(f"k8snet marker on {metafunc.definition.nodeid}: pairs must "
                                f"be all, ring or sample:K, got {mode!r}")
    targets = (["k8s_node"] if wants_nodes else []) + wants_pairs
    if run.no_io and not run.nodes_known_offline:
        reason = ("k8snet: the nodes are listed when the tests run (no cluster I/O in "
                  "--collect-only or --fixtures)")
        for name in targets:
            metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                                 ids=[OFFLINE_IDS[name]], indirect=True)
        return
    try:
        nodes = run.selected_nodes()
        error = run.selection_error
    except BackendError as exc:
        nodes, error = [], str(exc)
    nodes, narrowed_away = narrow(nodes, selector)
    error = narrowed_away or error
    names = [n.name for n in nodes]
    if wants_nodes:
        _parametrize(metafunc, "k8s_node", names, names, error, "no nodes selected",
                     "no-nodes")
    if wants_pairs:
        pairs = select_pairs(names, mode)
        few = (f"pair tests need at least two nodes; {len(names)} selected"
               + (f" ({names[0]})" if names else ""))
        for fixture in wants_pairs:
            _parametrize(metafunc, fixture, pairs, [f"{a}->{b}" for a, b in pairs],
                         error, few, "fewer-than-2-nodes" if names else "no-nodes")


def _parametrize(metafunc: pytest.Metafunc, name: str, values: list[Any], ids: list[str],
                 error: str | None, empty_reason: str, empty_id: str) -> None:
    if values:
        metafunc.parametrize(name, values, ids=ids, indirect=True)
        return
    reason = f"k8snet: {error}" if error else f"k8snet: {empty_reason}"
    metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                         ids=[empty_id], indirect=True)
