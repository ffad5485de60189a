"""Pair tests that grow with nodes, not pairs, above ``--k8s-per-node-threshold``.

At 1,000 nodes a test per ordered pair is a million pytest items per pair test. Above the
threshold the suite's pair tests are parametrized by source node instead
(``test_pod_ping[node-17]``): the pair fixture gets the node paired with itself, which
says "every pair from this node", and the test reads the judge's verdicts of all of that
node's pairs at once (:func:`pytest_k8snet.judge.per_node.node_verdict`). Below it
nothing changes: one test per pair, ids ``node-1->node-2``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ATTR = "k8snet_per_node"


def per_node(fn: F) -> F:
    """Mark a pair test of the suite as one that goes per node above the threshold."""
    setattr(fn, ATTR, True)
    return fn


def wanted(fn: object, nodes: int, threshold: int) -> bool:
    """Whether ``fn``'s pairs are parametrized per source node for ``nodes`` nodes."""
    return bool(getattr(fn, ATTR, False)) and nodes > threshold


def params(names: Sequence[str], families: Sequence[str] = ()
           ) -> tuple[list[tuple[str, ...]], list[str]]:
    """The pair fixture's values (each node paired with itself: every pair from it) and
    ids (the node's name); on a dual-stack cluster one per family, as the pair tests'
    (``node-17/ipv4``, ``node-17/ipv6``)."""
    if len(families) < 2:
        return [(n, n) for n in names], list(names)
    return ([(n, n, fam) for fam in families for n in names],
            [f"{n}/{fam}" for fam in families for n in names])


def is_node_subject(src: str, dst: str) -> bool:
    """A pair parameter that stands for every pair from ``src``."""
    return src == dst


# The document's pairs by source, indexed once per document (a per-node test asks for its
# node's, thousands of times on a big cluster).
_BY_SOURCE: dict[int, dict[str, list[tuple[str, str]]]] = {}


def pairs_from(doc: dict[str, Any], src: str) -> list[tuple[str, str]]:
    """The pairs of ``doc`` (its ``pairs`` ids) whose source is ``src``."""
    index = _BY_SOURCE.get(id(doc))
    if index is None:
        index = {}
        for pid in doc.get("pairs") or ():
            a, _, b = str(pid).partition("->")
            index.setdefault(a, []).append((a, b.split("/", 1)[0]))
        _BY_SOURCE.clear()  # one run's document at a time
        _BY_SOURCE[id(doc)] = index
    return index.get(src, [])
