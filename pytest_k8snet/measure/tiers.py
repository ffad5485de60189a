"""Two tiers of probes for big clusters: cheap probes on every pair, expensive ones on a
covering sample.

The expensive probes (1 MiB over HTTP, UDP throughput) cost a transfer each; on N nodes
there are N(N-1) pairs. A covering sample keeps what they are for (does every node send
and receive bulk traffic, does the overlay carry UDP both ways) at O(N): every node is
source ``k`` times and destination ``k`` times, through ``k`` rotations of the node list
spread around it, so that a group of neighbouring nodes (a rack listed in order) also
sends to far ones. Every pair the cheap tier flagged is added, so a pair that drops
pings or large packets always gets its transfer measured too and the judge sees both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine
    from .readiness import Readings

PairKey = tuple[str, str]

DEFAULT_COVER = 3


def shifts(n: int, k: int) -> list[int]:
    """``k`` distinct rotations in 1..n-1, spread evenly around the ring (fewer if n is small)."""
    if n < 2 or k < 1:
        return []
    if k >= n - 1:
        return list(range(1, n))
    out: list[int] = []
    for j in range(1, k + 1):
        s = max(1, min(n - 1, round(j * n / (k + 1))))
        while s in out:  # two rounds may meet on a small ring: take the next free one
            s = s % (n - 1) + 1
        out.append(s)
    return out


def covering_sample(names: Sequence[str], k: int = DEFAULT_COVER) -> list[PairKey]:
    """Ordered pairs in which every node is source ``k`` times and destination ``k``
    times (every pair when there are no more than ``k + 1`` nodes). Deterministic for a
    node list, so every xdist worker computes the same sample."""
    n = len(names)
    return [(names[i], names[(i + s) % n]) for s in shifts(n, k) for i in range(n)]


def expensive_pairs(pairs: Sequence[PairKey], names: Sequence[str], flagged: Iterable[PairKey],
                    k: int = DEFAULT_COVER) -> list[PairKey]:
    """The pairs of ``pairs`` (the run's selection, in its order) the expensive tier
    measures: the covering sample of ``names`` and every ``flagged`` pair."""
    wanted = set(covering_sample(names, k)) | set(flagged)
    return [p for p in pairs if p in wanted]


# -- on a run's engine ---------------------------------------------------------------------

def cover_of(mode: str, nodes: int, per_node_threshold: int) -> int | None:
    """K of the covering sample ``--k8s-expensive-pairs`` asks for on ``nodes`` nodes, or
    None for every pair (``all``, and ``auto`` at or below the per-node threshold)."""
    if mode == "all" or (mode == "auto" and nodes <= per_node_threshold):
        return None
    return DEFAULT_COVER if mode == "auto" else int(mode.split(":", 1)[1])


def flagged(engine: "Engine", readings: "Readings") -> set[PairKey]:
    """Pairs the cheap tier found trouble on: pod pings lost or answered by an error, or a
    DF path MTU below the expected one (both measured once per run, so this costs nothing)."""
    from . import mtu, reachability  # measured before the expensive tier, cached

    out = {k for k, r in reachability.pings(engine, "pod", 56).items()
           if r.loss_pct or r.error or r.errors}
    expected = mtu.expected_mtu(engine, readings)
    out |= {k for k, r in mtu.path_mtus(engine, readings, "pod").items() if r.bytes < expected}
    return out


def expensive(engine: "Engine", readings: "Readings") -> list[PairKey]:
    """The pairs the expensive probes measure on this run, decided once (every xdist
    worker reads the same list): all selected pairs, or the covering sample and the
    flagged pairs (see the module docstring)."""
    def compute() -> dict[str, Any]:
        pairs = engine.pairs()
        s = engine.settings
        k = cover_of(s.expensive_pairs, len(engine.node_names), s.per_node_threshold)
        if k is None:
            return {"mode": "all", "pairs": list(pairs)}
        return {"mode": f"cover:{k}",
                "pairs": expensive_pairs(pairs, engine.node_names, flagged(engine, readings), k)}

    return [(str(a), str(b)) for a, b in engine.cache.once("expensive-pairs", compute)["pairs"]]
