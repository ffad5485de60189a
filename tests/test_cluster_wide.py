"""A configuration check summed up over every node (above --k8s-per-node-threshold it is
one test, ``[all-nodes]``), on a generated 40-node document: failing nodes grouped by what
is wrong, not one line per node's finding; a pass that did not check some nodes says so;
the benchmark's outcomes have the one id."""

from __future__ import annotations

from typing import Any

from pytest_k8snet import per_node
from pytest_k8snet.judge import FAILED, PASSED, SKIPPED, Finding, Judgement, Verdict, judge
from pytest_k8snet.judge.per_node import LISTED, cluster_verdict, outcomes

from .bigdoc import Faults, generate


def document(bridge_off: tuple[str, ...] = (), forward_off: tuple[str, ...] = ()
             ) -> dict[str, Any]:
    doc = generate(40, 20, Faults(cut=None))
    for entry in doc["node_checks"]:
        if entry["node"] in bridge_off:
            entry["sysctls"]["net.bridge.bridge-nf-call-iptables"] = "0"
        if entry["node"] in forward_off:
            entry["sysctls"]["net.ipv4.ip_forward"] = "0"
    return doc


def test_failing_nodes_are_grouped_by_what_is_wrong() -> None:
    doc = document(bridge_off=("node-5", "node-7", "node-15"), forward_off=("node-9",))
    j = judge(doc)
    cv = cluster_verdict(j, "test_node_sysctls", doc["nodes"])
    assert cv.outcome == FAILED and cv.total == 40 and cv.passed == 36
    lines = cv.message(j).splitlines()
    assert lines[0] == "4 of 40 nodes fail"
    # one line for the three bridge-nf nodes, the node's name not repeated in its text
    assert lines[1].startswith("node-5, node-7, node-15: net.bridge.bridge-nf-call-iptables "
                               "is 0. Run `modprobe br_netfilter`"), lines
    assert lines[2].startswith("node-9: net.ipv4.ip_forward=0"), lines
    assert len(lines) == 3
    finding, nodes, _ = cv.groups(j)[0]
    assert finding.id == "bridge-nf:node-5" and nodes == ["node-5", "node-7", "node-15"]
    props = cv.properties()
    assert props[:4] == [("nodes", 40), ("nodes_passed", 36), ("nodes_failed", 4),
                         ("nodes_skipped", 0)]
    assert ("failing_node", "node-9 ip-forward:node-9") in props
    assert sum(1 for k, _ in props if k == "failing_node") == 4


def test_many_failing_nodes_stay_a_short_message() -> None:
    many = tuple(f"node-{i}" for i in range(1, 31))
    doc = document(bridge_off=many)
    j = judge(doc)
    message = cluster_verdict(j, "test_node_sysctls", doc["nodes"]).message(j)
    assert message.splitlines()[1].startswith(
        ", ".join(many[:LISTED]) + f" and {30 - LISTED} more: net.bridge"), message
    assert len(message.splitlines()) == 2


def test_a_pass_and_a_skip_say_what_was_not_checked() -> None:
    doc = document()
    j = judge(doc)
    cv = cluster_verdict(j, "test_pod_cidr", doc["nodes"])
    assert cv.outcome == PASSED and cv.message(j) == ""
    cv = cluster_verdict(j, "test_pod_cidr", [*doc["nodes"], "node-99"])
    assert cv.outcome == PASSED and cv.message(j).startswith(
        "40 of 41 nodes pass; 1 skipped: not measured"), cv.message(j)
    cv = cluster_verdict(j, "test_pod_cidr", ["node-98", "node-99"])
    assert cv.outcome == SKIPPED and cv.message(j).startswith("all 2 nodes skipped: ")


def test_outcomes_give_the_cluster_wide_check_one_id() -> None:
    doc = document(forward_off=("node-3",))
    j = judge(doc)
    out = outcomes(j, doc, ["test_pod_ping"], ["test_dns", "test_node_sysctls"],
                   ["test_node_sysctls"], nodeid="{test}[{subject}]")
    assert out["test_node_sysctls[all-nodes]"] == FAILED
    assert not any(k.startswith("test_node_sysctls[node-") for k in out)
    assert sum(1 for k in out if k.startswith("test_dns[")) == 40
    assert len(out) == 40 + 40 + 1


def test_nodes_whose_messages_differ_only_in_the_test_they_point_to_are_one_group() -> None:
    findings = tuple(Finding(f"dns-knock:{n}", "dns", f"{n}: DNS fails from {n}'s pod: a "
                             f"knock-on of the overlay (see test_pod_ping[{n}->node-1])",
                             nodes=(n,)) for n in ("node-2", "node-3"))
    verdicts = {("test_dns", n): Verdict("test_dns", n, FAILED, "", f"dns-knock:{n}")
                for n in ("node-2", "node-3")}
    verdicts[("test_dns", "node-1")] = Verdict("test_dns", "node-1", PASSED)
    j = Judgement(findings, verdicts, ("test_dns",))
    cv = cluster_verdict(j, "test_dns", ["node-1", "node-2", "node-3"])
    lines = cv.message(j).splitlines()
    assert len(lines) == 2 and lines[0] == "2 of 3 nodes fail"
    # the test it points to by the id a run above the threshold has; the cause's fix next
    assert lines[1].startswith("node-2, node-3: DNS fails from the node's pod: a knock-on "
                               "of the overlay (see test_pod_ping[node-2]). "), lines


def test_test_ids_are_retargeted_to_the_ids_of_a_run_above_the_threshold() -> None:
    assert per_node.retarget("no pod connectivity, see test_pod_ping[node-2->node-1]; "
                             "see test_path_mtu[node-4->node-9/ipv6] and test_dns[node-5]") \
        == ("no pod connectivity, see test_pod_ping[node-2]; see test_path_mtu[node-4/ipv6] "
            "and test_dns[all-nodes]")
    assert per_node.retarget("a message without ids [x]") == "a message without ids [x]"
