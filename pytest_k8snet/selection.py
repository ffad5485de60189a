"""Which nodes and pairs a run probes: probeable nodes, label selectors, pair modes."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

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
