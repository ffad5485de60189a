"""Which nodes and pairs a run probes: probeable nodes, the node selection hook and
label selectors, the k8snet marker, pair modes; and what the run then actually tested."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pytest

from .backends import Node

PairKey = tuple[str, str]
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
