"""Tests that grow with nodes, not pairs, above ``--k8s-per-node-threshold``.

At 1,000 nodes a test per ordered pair is a million pytest items per pair test. Above the
threshold the suite's pair tests are parametrized by source node instead
(``test_pod_ping[node-17]``): the pair fixture gets the node paired with itself, which
says "every pair from this node", and the test reads the judge's verdicts of all of that
node's pairs at once (:func:`pytest_k8snet.judge.per_node.node_verdict`).

The suite's node checks go one step up the same way: above the threshold each is one
test for the whole cluster (``test_dns[all-nodes]``), failing with its failing nodes
grouped by what is wrong (:func:`pytest_k8snet.judge.per_node.cluster_verdict`). So a big
run has four items per node (its pair tests) and nine for the cluster: a thousand green
copies of "DNS resolves from node-17" say nothing that one test listing the failing nodes
does not, and the per-node verdicts stay in the results file and the HTML.

Below the threshold nothing changes: one test per pair (``node-1->node-2``), one per node
(``node-1``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ATTR = "k8snet_per_node"
WHOLE_ATTR = "k8snet_cluster_wide"
# The id and subject of a node check that stands for every node.
ALL_NODES = "all-nodes"


def per_node(fn: F) -> F:
    """Mark a pair test of the suite as one that goes per node above the threshold."""
    setattr(fn, ATTR, True)
    return fn


def cluster_wide(fn: F) -> F:
    """Mark a node check of the suite as one test for all nodes above the threshold (it
    takes ``k8s_node_subject``, not ``k8s_node``)."""
    setattr(fn, WHOLE_ATTR, True)
    return fn


def wanted(fn: object, nodes: int, threshold: int) -> bool:
    """Whether ``fn``'s pairs are parametrized per source node for ``nodes`` nodes."""
    return bool(getattr(fn, ATTR, False)) and nodes > threshold


def whole(fn: object, nodes: int, threshold: int) -> bool:
    """Whether ``fn`` is one test for all ``nodes`` nodes."""
    return bool(getattr(fn, WHOLE_ATTR, False)) and nodes > threshold


def params(names: Sequence[str], families: Sequence[str] = ()
           ) -> tuple[list[tuple[str, ...]], list[str]]:
    """The pair fixture's values (each node paired with itself: every pair from it) and
    ids (the node's name); on a dual-stack cluster one per family, as the pair tests'
    (``node-17/ipv4``, ``node-17/ipv6``)."""
    if len(families) < 2:
        return [(n, n) for n in names], list(names)
    return ([(n, n, fam) for fam in families for n in names],
            [f"{n}/{fam}" for fam in families for n in names])


# A suite test's id in a message: ``test_pod_ping[node-2->node-1]``.
TEST_ID = re.compile(r"\b(test_\w+)\[([^\]\s]+)\]")


def retarget(message: str) -> str:
    """``message`` with the suite's test ids it names (the judge's "see
    test_pod_ping[node-2->node-1]") as a run above the threshold has them: a pair's as
    its source node's (``test_pod_ping[node-2]``), a node's as ``[all-nodes]``."""
    def one(m: re.Match[str]) -> str:
        subject = m.group(2)
        if "->" not in subject:
            return f"{m.group(1)}[{ALL_NODES}]"
        src, _, rest = subject.partition("->")
        family = rest.partition("/")[2]
        return f"{m.group(1)}[{src}{'/' + family if family else ''}]"
    return TEST_ID.sub(one, message)


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
