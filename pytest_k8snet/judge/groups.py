"""Failing pairs that are exactly "every pair between two groups of nodes": a cut.

A rack whose uplink to another rack is gone (a switch, a router, an ACL between them)
fails every pair from one group to the other and nothing else: hundreds of pairs, no node
in all of them, so the node-shaped places (:mod:`.localize`) find nothing. Said pair by
pair it is unreadable; said as two groups it is one fault a person can go and fix.

Only a cut with at least two nodes on each side is one: one node cut off from everyone
is the node-shaped finding's (``node-3 is in every failing pair``), and a cluster of
three nodes cannot hold two groups of two, so small clusters read as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MIN_SIDE = 2


@dataclass(frozen=True)
class Cut:
    """Every pair from ``a`` to ``b`` fails (and from ``b`` to ``a`` when ``both``)."""

    a: tuple[str, ...]
    b: tuple[str, ...]
    both: bool

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.a + self.b


def _ends(pid: str) -> tuple[str, str]:
    a, _, b = pid.partition("->")
    return a, b


def find_cut(pairs: Iterable[str], order: Mapping[str, int]) -> Cut | None:
    """The cut that fails exactly ``pairs``, or None when they are not one.

    Linear in the pairs: sources are grouped by the set of destinations they fail to;
    one group (one way) or two groups that mirror each other (both ways) is a cut.
    """
    dsts: dict[str, set[str]] = {}
    for pid in pairs:
        a, b = _ends(pid)
        dsts.setdefault(a, set()).add(b)
    by_targets: dict[frozenset[str], list[str]] = {}
    for src, reached in dsts.items():
        by_targets.setdefault(frozenset(reached), []).append(src)
    groups = list(by_targets.items())

    def ordered(nodes: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(nodes, key=lambda n: (order.get(n, len(order)), n)))

    if len(groups) == 1:
        only, srcs = groups[0]
        if len(srcs) >= MIN_SIDE and len(only) >= MIN_SIDE and not only & set(srcs):
            return Cut(ordered(srcs), ordered(only), both=False)
        return None
    if len(groups) == 2:
        (t1, s1), (t2, s2) = groups
        if t1 == frozenset(s2) and t2 == frozenset(s1) and min(len(s1), len(s2)) >= MIN_SIDE:
            one, two = ordered(s1), ordered(s2)
            # The group holding the cluster's first node is named first.
            return Cut(one, two, True) if order.get(one[0], 0) <= order.get(two[0], 0) \
                else Cut(two, one, True)
    return None


def span(nodes: Sequence[str], order: Mapping[str, int]) -> str:
    """``node-1..node-20`` for nodes that follow each other in the cluster's order, runs
    joined by commas: ``node-1..node-20, node-41..node-60``."""
    runs: list[list[str]] = []
    for n in nodes:
        if runs and n in order and runs[-1][-1] in order \
                and order[n] == order[runs[-1][-1]] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}, {r[1]}" if len(r) == 2
                     else f"{r[0]}..{r[-1]}" for r in runs)


def describe(cut: Cut, order: Mapping[str, int]) -> str:
    """``node-1..node-20 (20 nodes) and node-41..node-60 (20 nodes) cannot reach each
    other`` (or ``... cannot reach ...`` one way)."""
    a = f"{span(cut.a, order)} ({len(cut.a)} nodes)"
    b = f"{span(cut.b, order)} ({len(cut.b)} nodes)"
    return (f"{a} and {b} cannot reach each other" if cut.both
            else f"{a} cannot reach {b} (the other way works)")


def names(nodes: Sequence[str], order: Mapping[str, int], limit: int = 8) -> str:
    """The nodes by name, as runs (:func:`span`) once there are more than ``limit``."""
    return ", ".join(nodes) if len(nodes) <= limit else span(nodes, order)
