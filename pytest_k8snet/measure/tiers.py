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
