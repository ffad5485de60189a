"""Which nodes and pairs a run probes: probeable nodes, the node selection hook and
label selectors, the k8snet marker, pair modes; and what the run then actually tested."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from . import per_node
from .backends import BackendError, Node
from .backends.family import cluster_families
from .options import PAIR_MODES, Settings

PairKey = tuple[str, str]
PAIR_FIXTURES = ("pod_pair", "host_pair")
NODE_FIXTURES = ("k8s_node", "k8s_node_host", "k8s_node_subject")
# The node fixtures parametrized by node name (k8s_node_host is built on k8s_node).
NODE_PARAMS = ("k8s_node", "k8s_node_subject")
# Fixtures that need the cluster without being parametrized by node.
CLUSTER_FIXTURES = ("k8s_cluster", "k8s_nodes", "k8s_document", "k8s_judgement", "path_mtu")


def uses_cluster(item: pytest.Item) -> bool:
    """The test needs the cluster: a node or pair, or any fixture built on k8s_cluster."""
    names = getattr(item, "fixturenames", ())
    return any(f in names for f in PAIR_FIXTURES + NODE_FIXTURES + CLUSTER_FIXTURES)
# Ids of the one placeholder test that stands for "every node" / "every pair" where node
# names cannot be had without cluster I/O (--collect-only, --fixtures on a kube backend).
OFFLINE_IDS = {"k8s_node": "cluster-nodes", "k8s_node_subject": "cluster-nodes",
               "pod_pair": "cluster-pairs", "host_pair": "cluster-pairs"}
# What the readiness check (Cluster.readiness) reports when a probe endpoint cannot run
# even ``true``: the only reason a node's network tests may skip.
UNREACHABLE_MARKS = ("-network probe does not run commands",)


def not_probeable(node: Node) -> str | None:
    """Why the Linux probe pods cannot run on ``node`` at all (None: they can).

    The kubelet sets ``kubernetes.io/os`` on every node; a node without it (the lab's) is
    taken as Linux. Fargate and virtual-kubelet nodes run no nodeName-pinned or
    host-network pods.
    """
    labels = node.labels
    os_name = labels.get("kubernetes.io/os", labels.get("beta.kubernetes.io/os", "linux"))
    if os_name != "linux":
        return f"kubernetes.io/os={os_name}: the probe image runs on Linux nodes only"
    if labels.get("eks.amazonaws.com/compute-type") == "fargate":
        return "Fargate node (eks.amazonaws.com/compute-type=fargate): no host-network pods"
    if labels.get("type") == "virtual-kubelet" or "virtual-kubelet.io/provider" in labels:
        return "virtual-kubelet node: no real node network to probe"
    return None


def matches(node: Node, selectors: Iterable[str]) -> bool:
    """``node`` has every ``LABEL=VALUE`` of ``selectors`` (kubectl's ``-l a=b,c=d``)."""
    for selector in selectors:
        key, _, value = selector.partition("=")
        if node.labels.get(key) != value:
            return False
    return True


def split_selectors(selector: str | Sequence[str] | None) -> tuple[str, ...]:
    """Selectors from a marker argument or a setting: one string (a comma list) or several."""
    if not selector:
        return ()
    items = [selector] if isinstance(selector, str) else list(selector)
    return tuple(p.strip() for item in items for p in str(item).split(",") if p.strip())


def unreachable_nodes(readiness: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Nodes whose probes truly cannot run (from ``Cluster.readiness()``), with the reason.

    Cordoned, NotReady or DiskPressure alone do not count: a pod pinned by nodeName
    still runs there, and the probes measure it.
    """
    out: dict[str, str] = {}
    for node, problems in readiness.items():
        why = [p for p in problems if any(mark in p for mark in UNREACHABLE_MARKS)]
        if why:
            out[node] = why[0]
    return out


def select_pairs(names: Sequence[str], mode: str) -> list[PairKey]:
    """Ordered pairs for ``all``, ``ring`` or ``sample:K`` (deterministic for a node set)."""
    names = list(names)
    if len(names) < 2:
        return []
    if mode == "ring":
        return [(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]
    every = [(a, b) for a in names for b in names if a != b]
    if mode.startswith("sample:"):
        k = min(int(mode.split(":", 1)[1]), len(every))
        rng = random.Random(",".join(names))  # same sample in every xdist worker
        chosen = set(rng.sample(every, k))
        return [p for p in every if p in chosen]
    return every


# -- the nodes a run probes --------------------------------------------------------------------

@dataclass(frozen=True)
class NodeSelection:
    """The nodes chosen, the ones left out with why, and why nothing would be tested."""

    nodes: list[Node]
    left_out: dict[str, str]
    # Chosen nodes probed although cordoned, NotReady or pressured (their Node.notes).
    probed_despite: dict[str, list[str]]
    error: str | None  # None unless no node was chosen


def select_nodes(config: pytest.Config, selectors: Sequence[str],
                 nodes: Sequence[Node]) -> NodeSelection:
    """Linux nodes that can run the probes, then the ``pytest_k8snet_select_nodes`` hook
    (default: ``--k8s-node-selector``, given here as ``selectors``).

    Cordoned, NotReady and DiskPressure nodes stay: pods pinned by nodeName still run there.
    """
    probeable: list[Node] = []
    left_out: dict[str, str] = {}
    for node in nodes:
        why = not_probeable(node)
        if why:
            left_out[node.name] = why
        else:
            probeable.append(node)
    chosen = config.hook.pytest_k8snet_select_nodes(config=config, nodes=probeable)
    result = list(chosen if chosen is not None else probeable)
    names = {n.name for n in result}
    wanted = ",".join(selectors)
    for node in probeable:
        if node.name not in names:
            left_out[node.name] = (f"not matching --k8s-node-selector {wanted}"
                                   if wanted else "left out by pytest_k8snet_select_nodes")
    despite = {n.name: list(n.notes) for n in result if n.notes}
    error = None if result else no_nodes_message(selectors, nodes, left_out)
    return NodeSelection(result, left_out, despite, error)


def no_nodes_message(selectors: Sequence[str], nodes: Sequence[Node],
                     left_out: Mapping[str, str]) -> str:
    if not nodes:
        return "the cluster has no nodes"
    wanted = ",".join(selectors)
    what = f"--k8s-node-selector {wanted}" if wanted else "the node selection"
    reasons = sorted(set(left_out.values()))
    return (f"{what} matches none of the {len(nodes)} nodes, so nothing would be tested "
            f"(left out: {'; '.join(reasons[:3])}{' ...' if len(reasons) > 3 else ''})")


# -- the k8snet marker -------------------------------------------------------------------------

def marker_args(metafunc: pytest.Metafunc) -> tuple[str | None, str | None]:
    """(selector, pair mode) of the test's ``k8snet`` marker, positional or by keyword."""
    marker = metafunc.definition.get_closest_marker("k8snet")
    if marker is None:
        return None, None
    selector = marker.kwargs.get("selector", marker.args[0] if marker.args else None)
    pairs = marker.kwargs.get("pairs", marker.args[1] if len(marker.args) > 1 else None)
    return selector, pairs


def narrow(nodes: list[Node], selector: str | None) -> tuple[list[Node], str | None]:
    """The selected nodes a marker's selector keeps, and why none when none match."""
    if not selector or not nodes:
        return nodes, None
    narrowed = [n for n in nodes if matches(n, split_selectors(selector))]
    if narrowed:
        return narrowed, None
    return [], (f"the k8snet marker's selector {selector} matches none of the "
                f"{len(nodes)} selected nodes")


class NodeSource(Protocol):
    """What parametrization asks of the run (the run imports this module, not the reverse)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def no_io(self) -> bool: ...

    @property
    def nodes_known_offline(self) -> bool: ...

    @property
    def selection_error(self) -> str | None: ...

    def selected_nodes(self) -> Sequence[Node]: ...


# -- the node and pair fixtures' parameters (pytest_generate_tests) ---------------------------

def parametrize(metafunc: pytest.Metafunc, run: NodeSource) -> None:
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
    node_params = [f for f in NODE_PARAMS if f in metafunc.fixturenames]
    targets = node_params + wants_pairs
    if run.no_io and not run.nodes_known_offline:
        reason = ("k8snet: the nodes are listed when the tests run (no cluster I/O in "
                  "--collect-only or --fixtures)")
        for name in targets:
            metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                                 ids=[OFFLINE_IDS[name]], indirect=True)
        return
    try:
        nodes = list(run.selected_nodes())
        error = run.selection_error
    except BackendError as exc:
        nodes, error = [], str(exc)
    nodes, narrowed_away = narrow(nodes, selector)
    error = narrowed_away or error
    names = [n.name for n in nodes]
    if node_params:
        whole = bool(names) and per_node.whole(metafunc.function, len(names),
                                               run.settings.per_node_threshold)
        for fixture in node_params:  # only a subject can stand for all nodes
            subjects = [per_node.ALL_NODES] if whole and fixture == "k8s_node_subject" \
                else names
            _parametrize(metafunc, fixture, subjects, subjects, error, "no nodes selected",
                         "no-nodes")
    if wants_pairs:
        pairs = select_pairs(names, mode)
        values, ids = pair_params(pairs, cluster_families(nodes))
        few = (f"pair tests need at least two nodes; {len(names)} selected"
               + (f" ({names[0]})" if names else ""))
        if pairs and per_node.wanted(metafunc.function, len(names),
                                     run.settings.per_node_threshold):
            values, ids = per_node.params(names, cluster_families(nodes))
        for fixture in wants_pairs:
            _parametrize(metafunc, fixture, values, ids,
                         error, few, "fewer-than-2-nodes" if names else "no-nodes")


def pair_params(pairs: Sequence[PairKey], families: Sequence[str]
                ) -> tuple[list[tuple[str, ...]], list[str]]:
    """Pair fixture values and ids: ``node-1->node-2`` on a single-family cluster; on a
    dual-stack one every pair once per family, ``node-1->node-2/ipv4`` and ``.../ipv6``."""
    if len(families) < 2:
        return [tuple(p) for p in pairs], [f"{a}->{b}" for a, b in pairs]
    values = [(a, b, fam) for fam in families for a, b in pairs]
    return list(values), [f"{a}->{b}/{fam}" for a, b, fam in values]


def _parametrize(metafunc: pytest.Metafunc, name: str, values: list[Any], ids: list[str],
                 error: str | None, empty_reason: str, empty_id: str) -> None:
    if values:
        metafunc.parametrize(name, values, ids=ids, indirect=True)
        return
    reason = f"k8snet: {error}" if error else f"k8snet: {empty_reason}"
    metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                         ids=[empty_id], indirect=True)


# -- what the run actually tested ------------------------------------------------------------

class Tested:
    """Nodes and pairs that tests exercised (passed or failed, not skipped), from their
    reports: the controller's under xdist, where the reports land."""

    def __init__(self) -> None:
        self.nodes: set[str] = set()
        self.pairs: set[tuple[str, str, str]] = set()  # (src, dst, network)

    def note(self, nodes: Iterable[str], pairs: Iterable[tuple[str, str, str]]) -> None:
        for a, b, network in pairs:
            self.pairs.add((a, b, network))
            self.nodes.update((a, b))
        self.nodes.update(nodes)

    def pair_counts(self) -> dict[str, int]:
        """Ordered pairs tested: ``all`` (either network), ``pod`` and ``host``."""
        return {"all": len({(a, b) for a, b, _ in self.pairs}),
                **{net: len({(a, b) for a, b, n in self.pairs if n == net})
                   for net in ("pod", "host")}}
