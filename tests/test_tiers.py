"""The expensive tier's covering sample (measure/tiers.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from pytest_k8snet.measure import tiers


def names(n: int) -> list[str]:
    return [f"node-{i}" for i in range(1, n + 1)]


@pytest.mark.parametrize("n,k", [(4, 3), (5, 3), (33, 3), (128, 3), (1000, 3), (10, 5), (7, 1)])
def test_every_node_is_source_and_destination_k_times(n: int, k: int) -> None:
    sample = tiers.covering_sample(names(n), k)
    want = min(k, n - 1)
    assert len(sample) == len(set(sample)) == n * want
    assert all(a != b for a, b in sample)
    assert set(Counter(a for a, _ in sample).values()) == {want}
    assert set(Counter(b for _, b in sample).values()) == {want}


def test_few_nodes_get_every_pair() -> None:
    nodes = names(4)
    assert sorted(tiers.covering_sample(nodes, 3)) == sorted(
        (a, b) for a in nodes for b in nodes if a != b)
    assert tiers.covering_sample(names(1), 3) == []


def test_the_rotations_reach_far_nodes_not_only_neighbours() -> None:
    # A rack of 20 consecutive nodes must send to nodes outside it, far around the ring.
    assert tiers.shifts(1000, 3) == [250, 500, 750]
    rack = set(names(20))
    sample = tiers.covering_sample(names(1000), 3)
    assert all(b not in rack for a, b in sample if a in rack)


def test_flagged_pairs_are_added_and_the_selection_bounds_the_sample() -> None:
    nodes = names(40)
    selected = [(a, b) for a in nodes for b in nodes if a != b]
    flagged = [("node-1", "node-2"), ("node-7", "node-30")]
    got = tiers.expensive_pairs(selected, nodes, flagged)
    assert set(flagged) <= set(got)
    assert len(got) == 40 * 3 + 2
    assert got == [p for p in selected if p in set(got)]  # the selection's order
    ring = [(nodes[i], nodes[(i + 1) % 40]) for i in range(40)]
    assert set(tiers.expensive_pairs(ring, nodes, flagged)) <= set(ring)


def test_the_sample_is_the_same_for_the_same_nodes() -> None:
    assert tiers.covering_sample(names(77), 3) == tiers.covering_sample(names(77), 3)
