"""A generated 60-node document (three racks of 20, tests/bigdoc.py) judged: a rack cut
off from another reads as one finding naming both groups, and the lossy and MTU nodes
stay findings of their own."""

from __future__ import annotations

import pytest

from pytest_k8snet.judge import FAILED, SKIPPED, Judgement, judge
from pytest_k8snet.judge.groups import find_cut, span

from .bigdoc import Faults, generate
from .judged import roots


@pytest.fixture(scope="module")
def judged() -> Judgement:
    return judge(generate(60, 20))


def test_the_rack_cut_is_one_finding_naming_both_groups(judged: Judgement) -> None:
    found = {f.id: f for f in roots(judged)}
    assert sorted(found) == ["mtu:node-46", "pod-lossy:node-31",
                             "underlay-cut:node-1..node-20|node-41..node-60"]
    cut = found["underlay-cut:node-1..node-20|node-41..node-60"]
    assert cut.cause == "underlay"
    assert cut.summary.startswith("node-1..node-20 (20 nodes) and node-41..node-60 (20 nodes) "
                                  "cannot reach each other: ")
    assert len(cut.pairs) == 800 and "all 800 pairs between the two groups" in cut.summary
    assert cut.evidence["groups"] == {"a": [f"node-{i}" for i in range(1, 21)],
                                      "b": [f"node-{i}" for i in range(41, 61)],
                                      "both_ways": True}
    v = judged.verdicts[("test_pod_ping", "node-20->node-41")]
    assert v.outcome == FAILED and v.finding == cut.id
    # Within a group, and from the cut groups to the third rack, nothing fails.
    assert judged.verdicts[("test_pod_ping", "node-1->node-2")].outcome != FAILED
    assert judged.verdicts[("test_pod_ping", "node-1->node-21")].outcome != FAILED


def test_what_the_cut_takes_is_its_knock_on(judged: Judgement) -> None:
    """The ring's node-60 -> node-1 kubelet and NodePort connects cross the cut."""
    for test in ("test_control_plane_ports", "test_nodeport"):
        v = judged.verdicts[(test, "node-1")]
        f = judged.finding(v.finding)
        assert v.outcome == SKIPPED and f is not None
        assert f.root == "underlay-cut:node-1..node-20|node-41..node-60"
        assert "node-1..node-20, node-41..node-60" in f.summary
    v = judged.verdicts[("test_path_mtu", "node-1->node-41")]
    assert v.outcome == SKIPPED and "no pod connectivity" in v.message


def test_the_lossy_and_mtu_nodes_stay_their_own(judged: Judgement) -> None:
    lossy = judged.finding("pod-lossy:node-31")
    mtu = judged.finding("mtu:node-46")
    assert lossy is not None and lossy.nodes == ("node-31",) and lossy.mode == "loss"
    assert len(lossy.pairs) == 2 * 59
    # node-46 is in rack 3: its 40 pairs with rack 1 are the cut's, and its 2 with the
    # lossy node-31 the loss's (a lost DF ping there says nothing about size).
    assert mtu is not None and mtu.nodes == ("node-46",) and len(mtu.pairs) == 2 * 59 - 42
    assert judged.verdicts[("test_path_mtu", "node-45->node-46")].finding == mtu.id


def test_a_one_way_cut_names_its_direction() -> None:
    doc = generate(40, 10, Faults(cut=(1, 2), lossy=0, mtu=0))
    back = {f"node-{i}" for i in range(11, 21)}, {f"node-{i}" for i in range(1, 11)}
    for p in doc["ping"] + doc["ping_pod_to_node"] + doc["path_mtu"]:
        if p["src"] in back[0] and p["dst"] in back[1]:  # rack 2 reaches rack 1 again
            p.update(received=3, loss_pct=0.0, bytes=1450, first_lost=None)
    found = roots(judge(doc))
    assert [f.id for f in found] == ["underlay-cut:node-1..node-10|node-11..node-20"]
    assert found[0].summary.startswith("node-1..node-10 (10 nodes) cannot reach "
                                       "node-11..node-20 (10 nodes) (the other way works)")


def test_cut_shapes() -> None:
    order = {f"n{i}": i for i in range(8)}
    both = [f"n{a}->n{b}" for a in (0, 1) for b in (4, 5)] + \
        [f"n{b}->n{a}" for a in (0, 1) for b in (4, 5)]
    cut = find_cut(both, order)
    assert cut is not None and (cut.a, cut.b, cut.both) == (("n0", "n1"), ("n4", "n5"), True)
    # One node cut off from everyone is the node-shaped finding's, not a cut.
    assert find_cut([f"n0->n{b}" for b in range(1, 8)]
                    + [f"n{b}->n0" for b in range(1, 8)], order) is None
    # A missing pair breaks the shape.
    assert find_cut(both[1:], order) is None
    assert span(["n0", "n1", "n2", "n5", "n6"], order) == "n0..n2, n5, n6"
