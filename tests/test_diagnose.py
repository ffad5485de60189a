"""The judge as a pure function: measurement documents in, findings and verdicts out.

``tests/data/measure/*.json`` are results files captured from a 3-node lab with each
fault on node-2 (``--k8s-results``); the others are written by hand to put the judge in
front of evidence that conflicts, partial loss, failed probes and knock-ons.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import FAILED, PASSED, SKIPPED, Judgement, judge
from pytest_k8snet.report.view import ClusterView, group_diagnoses

DATA = Path(__file__).parent / "data" / "measure"

# fault on node-2 -> (tests that fail, cause of the finding they fail on, words of its text)
EXPECTED: dict[str, tuple[set[str], str, str]] = {
    "vxlan-blocked": ({"test_pod_ping", "test_udp_8472"}, "vxlan-blocked", "UDP 8472"),
    "underlay-mtu": ({"test_path_mtu", "test_large_packets", "test_large_packets_to_service"},
                     "mtu", "path MTU 1400 < expected 1450"),
    "ip-forward-off": ({"test_pod_ping", "test_node_sysctls"}, "ip-forward", "ip_forward=0"),
    "bridge-nf-off": ({"test_service", "test_node_sysctls"}, "bridge-nf",
                      "bridge-nf-call-iptables"),
    "egress-port-range": ({"test_egress"}, "egress-port-range",
                          "failures came from source ports below"),
    "dns-blocked": ({"test_dns"}, "dns", "no answer from cluster DNS"),
}


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / f"{name}.json").read_text()))


def failed(j: Judgement) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for v in j.verdicts.values():
        if v.outcome == FAILED:
            out.setdefault(v.test, set()).add(v.subject)
    return out


def texts(j: Judgement) -> dict[tuple[str, str], tuple[str, str]]:
    return {k: (v.outcome, v.message) for k, v in j.verdicts.items()}


def test_healthy_lab_has_no_findings() -> None:
    j = judge(load("healthy"))
    assert j.findings == ()
    # captured before the control-plane port and NodePort checks: those say "not measured"
    # and skip
    ports = {k: v for k, v in j.verdicts.items()
             if k[0] in ("test_control_plane_ports", "test_nodeport")}
    assert {v.outcome for v in ports.values()} == {SKIPPED}
    assert all("not measured" in v.message for v in ports.values())
    assert {v.outcome for k, v in j.verdicts.items() if k not in ports} == {PASSED}
    assert len(j.verdicts) == 51  # every suite test of a 3-node lab has a verdict


def ports_doc(states: dict[tuple[str, str, int], str]) -> dict[str, object]:
    """A 3-node document with only control-plane port measurements: (src, ip, port) -> state."""
    ips = {"node-1": "172.28.128.11", "node-2": "172.28.128.12", "node-3": "172.28.128.13"}
    entries: list[dict[str, object]] = []
    for src in ips:
        entries.append({"src": src, "kind": "tcp", "ip": "198.19.0.2", "port": 6443,
                        "peer": "the API server", "state": states.get((src, "api", 6443), "open")})
        for dst, ip in ips.items():
            if dst == src:
                continue
            for port, peer in ((10250, "the kubelet"), (2379, "etcd"), (2380, "etcd (peers)")):
                entries.append({"src": src, "kind": "tcp", "ip": ip, "port": port,
                                "peer": f"{peer} on {dst}",
                                "state": states.get((src, dst, port),
                                                    "open" if port == 10250 else "refused")})
        for kind in ("dns-udp", "dns-tcp"):
            entries.append({"src": src, "kind": kind, "ip": "10.96.0.10", "port": 53,
                            "peer": "the cluster DNS", "state": states.get((src, kind, 53), "open")})
    return {"nodes": list(ips), "pairs": [], "ports": entries, "thresholds": {"loss_pct": 5.0}}


def test_control_plane_ports_healthy_pass_and_say_what_had_no_listener() -> None:
    j = judge(ports_doc({}))
    v = j.verdict("test_control_plane_ports", "node-2")
    assert v.outcome == PASSED
    assert "no listener, skipped: tcp/2379 (etcd on node-2), tcp/2380" in v.message
    assert not [f for f in j.findings if f.cause == "control-plane-ports"]


def test_control_plane_ports_firewall_names_ports_peer_and_sources() -> None:
    dropped = {(src, "node-2", port): "timeout" for src in ("node-1", "node-3")
               for port in (10250, 2379, 2380)}
    j = judge(ports_doc(dropped))
    v = j.verdict("test_control_plane_ports", "node-2")
    assert v.outcome == FAILED
    assert "tcp/10250 (the kubelet on node-2 172.28.128.12) from node-1, node-3" in v.message
    assert "Open tcp/10250, tcp/2379, tcp/2380 into node-2" in v.message
    assert j.verdict("test_control_plane_ports", "node-1").outcome == PASSED
    assert j.verdict("test_control_plane_ports", "node-3").outcome == PASSED


def test_control_plane_ports_api_server_unreachable_from_one_node() -> None:
    j = judge(ports_doc({("node-3", "api", 6443): "timeout"}))
    v = j.verdict("test_control_plane_ports", "node-3")
    assert v.outcome == FAILED and "from node-3: tcp/6443 (the API server 198.19.0.2)" in v.message
    assert "Let node-3 reach tcp/6443" in v.message and "into node-3" not in v.message
    assert j.verdict("test_control_plane_ports", "node-1").outcome == PASSED


def test_cluster_dns_behind_a_failed_pair_is_a_knock_on_not_a_firewall() -> None:
    """vxlan-blocked on node-2 with the CoreDNS endpoints there: node-1's host-network DNS
    to the Service times out because of the overlay, which the port check must not blame on
    a firewall into node-1 (seen on the real cluster)."""
    doc = load("vxlan-blocked")
    ports = ports_doc({("node-1", "dns-tcp", 53): "timeout", ("node-3", "dns-udp", 53): "timeout"})
    doc["ports"] = ports["ports"]
    doc["dns_endpoints"] = {"10.244.1.10": "node-2", "10.244.1.11": "node-2"}
    j = judge(doc)
    for n in ("node-1", "node-3"):
        v = j.verdict("test_control_plane_ports", n)
        assert v.outcome == PASSED, v
        assert f"sits behind {n}->node-2, which already fails" in v.message
    assert not [f for f in j.findings if f.cause.startswith("control-plane")]


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_fails_its_tests_on_node_2_only(fault: str) -> None:
    doc = load(fault)
    tests, cause, words = EXPECTED[fault]
    j = judge(doc)
    bad = failed(j)
    assert set(bad) == tests
    for name, subjects in bad.items():
        if name != "test_large_packets_to_service":  # every node has backends on node-2
            assert all("node-2" in s for s in subjects), (name, subjects)
    failing = {j.verdict(t, s).finding for t, ss in bad.items() for s in ss}
    causes = {f.cause for f in j.findings if f.id in failing}
    assert cause in causes
    assert any(words in v.message for v in j.verdicts.values() if v.outcome == FAILED)
    main = next(f for f in j.findings if f.cause == cause)
    assert main.nodes == ("node-2",), main
    # evidence was taken from the finding's node during the run, and is in the document
    names = {i["name"] for i in doc["evidence"]["node-2"]}
    assert {"routes", "neighbours", "fdb", "firewall", "links"} <= names
    assert main.evidence and main.would_contradict and not main.contradicting


def test_pod_cidr_overlap_is_cluster_wide() -> None:
    j = judge(load("pod-cidr-overlap"))
    assert failed(j) == {"test_pod_cidr": {"node-1", "node-2", "node-3"}}
    assert "overlaps the Pod CIDR 172.28.0.0/16" in j.verdict("test_pod_cidr", "node-1").message


def test_vxlan_finding_carries_the_blocking_rule_as_evidence() -> None:
    doc = load("vxlan-blocked")
    firewall = next(i for i in doc["evidence"]["node-2"] if i["name"] == "firewall")
    assert "k8snet-fault:vxlan-blocked" in firewall["output"] and "[" in firewall["output"]


@pytest.mark.parametrize("fault", ["healthy", *sorted(EXPECTED)])
def test_judging_is_pure_and_ignores_entry_order(fault: str) -> None:
    doc = load(fault)
    first = judge(doc)
    shuffled = copy.deepcopy(doc)
    rng = random.Random(fault)
    for key in ("ping", "path_mtu", "throughput", "http", "dns", "egress", "service",
                "node_checks"):
        rng.shuffle(shuffled[key])
    assert doc == load(fault)  # the document is not touched
    assert texts(judge(shuffled)) == texts(first) == texts(judge(doc))


def restrict(doc: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """The document a run with fewer pairs (``--k8s-pairs ring`` / ``sample:K``) measures."""
    out = copy.deepcopy(doc)
    keep = set(pairs)
    out["pairs"] = pairs
    for key in ("ping", "path_mtu", "throughput"):
        out[key] = [e for e in out[key] if f"{e['src']}->{e['dst']}" in keep]
    out["http"] = [e for e in out["http"]
                   if e["dst"] == "service" or f"{e['src']}->{e['dst']}" in keep]
    return out


RING = ["node-1->node-2", "node-2->node-3", "node-3->node-1"]
SAMPLES = [["node-1->node-2"], ["node-3->node-1", "node-1->node-3"],
           ["node-2->node-1", "node-1->node-3", "node-3->node-2"]]


@pytest.mark.parametrize("fault", sorted(EXPECTED))
@pytest.mark.parametrize("pairs", [RING, *SAMPLES], ids=["ring", "sample1", "sample2", "sample3"])
def test_ring_and_sample_pairs_give_findings_never_keyerror(fault: str, pairs: list[str]) -> None:
    j = judge(restrict(load(fault), pairs))
    tests, cause, _ = EXPECTED[fault]
    node_tests = tests - {"test_pod_ping", "test_udp_8472", "test_path_mtu",
                          "test_large_packets"}
    pair_tests = tests - node_tests
    touches = [p for p in pairs if "node-2" in p]
    if node_tests - {"test_large_packets_to_service"} or (pair_tests and touches):
        assert failed(j), "a fault on a measured subject must give a finding"
        assert any(f.cause == cause for f in j.findings)
    for v in j.verdicts.values():
        assert v.outcome in (PASSED, FAILED, SKIPPED)
        if v.outcome == FAILED:
            f = j.finding(v.finding)
            assert f is not None
            if v.test not in tests:
                # A test that sees the fault through pairs this run did not measure may
                # fail, but never with a named cause it cannot back up.
                assert f.cause in ("unknown", "inconclusive"), v


def vxlan_doc() -> dict[str, Any]:
    return load("vxlan-blocked")


def test_ring_service_knock_on_points_at_a_measured_finding() -> None:
    """With a ring, node-1 -> node-2 is measured but node-3 -> node-2 is not: node-3's Service
    failures towards node-2's backends are still explained by the finding that names node-2."""
    j = judge(restrict(vxlan_doc(), RING))
    v = j.verdict("test_service", "node-3")
    assert v.outcome == SKIPPED and "Overlay port blocked" in v.message
    assert j.finding(v.finding) is not None


def test_partial_udp_loss_is_lossy_not_blocked() -> None:
    doc = load("healthy")
    t = doc["throughput"][0]
    pid = f"{t['src']}->{t['dst']}"
    samples = [{"mbps": 9.2, "loss_pct": 8.0, "packets": 1250, "error": None, "failure": None},
               {"mbps": 9.1, "loss_pct": 11.5, "packets": 3750, "error": None, "failure": None},
               {"mbps": 9.0, "loss_pct": 9.4, "packets": 3750, "error": None, "failure": None}]
    t.update(samples[0], attempts=samples)
    j = judge(doc)
    v = j.verdict("test_udp_8472", pid)
    f = j.finding(v.finding)
    assert v.outcome == FAILED and f is not None and f.cause == "udp-lossy"
    assert "8% of UDP datagrams lost in the best of 3 samples" in v.message
    assert "blocked" not in v.message.replace("no port is blocked", "")
    assert f.evidence[pid]["loss_pct"] == [8.0, 11.5, 9.4]


def test_loss_the_receiving_probe_dropped_at_its_own_socket_is_not_the_paths() -> None:
    """Measured on a 2-core host with a 64-node suite beside an 8-node one: the 8-node
    pods' iperf3 servers, starved, dropped ~10,000 datagrams each at their own full
    socket buffers (UDP RcvbufErrors), and the old judge called 11 pairs lossy."""
    doc = load("healthy")
    t = doc["throughput"][0]
    pid, dst = f"{t['src']}->{t['dst']}", t["dst"]
    samples = [{"mbps": 4.0, "loss_pct": 7.0, "packets": 500, "error": None, "failure": None},
               {"mbps": 4.0, "loss_pct": 6.0, "packets": 1500, "error": None, "failure": None}]
    t.update(samples[1], attempts=samples)
    lost = 35 + 90  # every sample's lost datagrams into dst
    doc["udp_receive_drops"] = {dst: lost}
    v = judge(doc).verdict("test_udp_8472", pid)
    assert v.outcome == PASSED and "RcvbufErrors" in v.message and "delivered" in v.message
    # Fewer drops than datagrams lost: some loss may be the path's, so it is still lossy,
    # with the receiver's counts in the evidence.
    doc["udp_receive_drops"] = {dst: lost - 1}
    j = judge(doc)
    v = j.verdict("test_udp_8472", pid)
    f = j.finding(v.finding)
    assert v.outcome == FAILED and f is not None and f.cause == "udp-lossy"
    assert f.evidence[pid][f"{dst}_socket_buffer_drops"] == lost - 1
    assert f.evidence[pid][f"datagrams_lost_into_{dst}"] == lost
    # Not read (an older document, or /proc/net/snmp unreadable): the loss stands.
    doc["udp_receive_drops"] = {dst: None}
    assert judge(doc).verdict("test_udp_8472", pid).outcome == FAILED


def test_noise_that_a_remeasure_clears_passes() -> None:
    doc = load("healthy")
    t = doc["throughput"][0]
    samples = [{"mbps": 8.9, "loss_pct": 14.0, "packets": 1250, "error": None, "failure": None},
               {"mbps": 10.0, "loss_pct": 0.3, "packets": 3750, "error": None, "failure": None}]
    t.update(samples[1], attempts=samples)  # the decisive sample is the least lossy
    assert judge(doc).findings == ()


@pytest.mark.parametrize("failure, error", [
    ("interrupted", "interrupt - the client has terminated"),
    ("tool-missing", 'exec of "iperf3" failed: No such file or directory'),
    ("timeout", "iperf3 did not finish in time (exit 124)"),
    ("exec-error", "unreadable iperf3 JSON: Expecting value"),
])
def test_a_failed_probe_is_never_a_network_cause(failure: str, error: str) -> None:
    doc = load("healthy")
    t = doc["throughput"][0]
    pid = f"{t['src']}->{t['dst']}"
    bad = {"mbps": 0.0, "loss_pct": 100.0, "packets": 0, "error": error, "failure": failure}
    t.update(bad, attempts=[bad, bad, bad])
    j = judge(doc)
    v = j.verdict("test_udp_8472", pid)
    f = j.finding(v.finding)
    assert v.outcome == FAILED and f is not None and f.cause == "probe-failure"
    assert "says nothing about the network" in v.message
    assert "VXLAN" not in v.message and "8472 (VXLAN)" not in v.message


def test_ping_tool_missing_is_a_probe_failure() -> None:
    doc = load("healthy")
    p = next(e for e in doc["ping"] if e["network"] == "pod")
    pid = f"{p['src']}->{p['dst']}"
    p.update(received=0, transmitted=0, loss_pct=100.0, error='exec of "ping" failed')
    doc["probe_failures"] = [{"measurement": "ping-pod-56", "key": pid, "failure": "tool-missing",
                              "node": p["src"], "network": "pod", "tool": "ping", "exit_code": 1,
                              "timed_out": False, "detail": 'exec of "ping" failed'}]
    j = judge(doc)
    f = j.finding(j.verdict("test_pod_ping", pid).finding)
    assert f is not None and f.cause == "probe-failure" and f.id == "probe-failure:ping:tool-missing"


def test_conflicting_evidence_names_no_cause() -> None:
    """Pod ping dead, node ping fine (looks like a blocked VXLAN port) but UDP through the
    same overlay crossed: the finding says what is known and what contradicts."""
    doc = vxlan_doc()
    for t in doc["throughput"]:
        if t["src"] == "node-1" and t["dst"] == "node-2":
            ok = {"mbps": 9.9, "loss_pct": 0.0, "packets": 1250, "error": None, "failure": None}
            t.update(ok, attempts=[ok])
    j = judge(doc)
    v = j.verdict("test_pod_ping", "node-1->node-2")
    f = j.finding(v.finding)
    assert f is not None and f.cause == "inconclusive"
    assert any("UDP through the overlay crossed" in c for c in f.contradicting)
    assert "Contradicting:" in v.message
    # the other three pairs still agree with each other: they keep their cause
    other = j.finding(j.verdict("test_pod_ping", "node-2->node-3").finding)
    assert other is not None and other.cause == "vxlan-blocked"


def test_local_backends_failing_with_bridge_nf_on_is_inconclusive() -> None:
    doc = load("bridge-nf-off")
    for c in doc["node_checks"]:
        c["sysctls"]["net.bridge.bridge-nf-call-iptables"] = "1"
    j = judge(doc)
    v = j.verdict("test_service", "node-2")
    f = j.finding(v.finding)
    assert v.outcome == FAILED and f is not None and f.cause == "inconclusive"
    assert f.contradicting == ("net.bridge.bridge-nf-call-iptables=1 on node-2",)


def test_dns_knock_on_names_the_failed_pair() -> None:
    """node-1's only DNS endpoint runs on node-2, and node-1 -> node-2 has no pod connectivity:
    DNS on node-1 is a knock-on of that finding, and says which pair."""
    doc = vxlan_doc()
    doc["dns_endpoints"] = {"10.244.1.9": "node-2"}
    for r in doc["dns"]:
        if r["node"] == "node-1":
            r.update(rcode="TIMEOUT", answers=[], ok=False)
    j = judge(doc)
    v = j.verdict("test_dns", "node-1")
    f = j.finding(v.finding)
    assert v.outcome == SKIPPED and f is not None
    assert f.root == "vxlan-blocked:node-2" and f.pairs == ("node-1->node-2",)
    assert "node-1->node-2" in v.message and "knock-on" in v.message
    # DNS on node-3 answers: nothing to say there
    assert j.verdict("test_dns", "node-3").outcome == PASSED


def test_dns_without_endpoint_knowledge_is_its_own_finding() -> None:
    j = judge(load("dns-blocked"))
    f = j.finding(j.verdict("test_dns", "node-2").finding)
    assert f is not None and f.root is None and f.nodes == ("node-2",)


def test_unmeasured_subject_skips() -> None:
    j = judge(load("healthy"))
    assert j.verdict("test_pod_ping", "node-1->node-9").outcome == SKIPPED


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_summary_headline_names_exactly_the_findings_nodes_and_pairs(fault: str) -> None:
    doc = load(fault)
    j = judge(doc)
    doc["findings"] = [f.as_dict() for f in j.findings]
    doc["diagnoses"] = [{"cause": j.finding(v.finding).cause,  # type: ignore[union-attr]
                         "finding": v.finding, "message": v.message, "nodes": [], "pairs": []}
                        for v in j.verdicts.values() if v.outcome == FAILED]
    groups = ClusterView(doc).groups
    assert groups
    for g in groups:
        assert g.finding is not None
        if not g.pairs:
            assert all(n in g.headline for n in g.nodes), g.headline
        for n in g.involving:
            assert all(n in p.split("->") for p in g.pairs), g.headline
        if g.pairs and not g.involving:
            assert all(p in g.headline for p in g.pairs[:6]), g.headline
        assert g.evidence, "the finding's nodes' evidence is attached for the HTML report"


def test_headline_never_names_a_node_outside_its_pairs() -> None:
    """The old bug: the nodes that appear most often, above an example pair with none."""
    pairs = ["node-13->node-1", "node-15->node-2", "node-16->node-3", "node-13->node-4"]
    diags = [{"cause": "vxlan-blocked", "pairs": [p], "nodes": p.split("->"), "message": p}
             for p in pairs]
    (g,) = group_diagnoses(diags)
    assert g.involving == []
    assert g.headline == ("Overlay port blocked: 4 pairs: node-13->node-1, node-13->node-4, "
                          "node-15->node-2, node-16->node-3")


def test_node_port_timeout_is_the_networks_only_when_other_runs_finished() -> None:
    """Before the CNI holds 8472, iperf3 runs node to node on it; with the port blocked its
    UDP handshake gets no answer and the client waits past its deadline. That counts as
    blocked only because other iperf3 runs finished in time (the machine was not starved)."""
    doc = load("healthy")
    t = doc["throughput"][0]
    pid = f"{t['src']}->{t['dst']}"
    t["node_port"] = {"port": 8472, "mbps": 0.0, "loss_pct": 100.0, "packets": 0,
                      "error": "iperf3 did not finish in time (exit 124)", "failure": "timeout",
                      "port_busy": False}
    v = judge(doc).verdict("test_udp_8472", pid)
    assert v.outcome == FAILED and f"{pid}: node to node on UDP 8472 itself fails" in v.message
    starved = copy.deepcopy(doc)
    for e in starved["throughput"]:
        for a in [e, *e["attempts"]]:
            a.update(error="iperf3 did not finish in time (exit 124)", failure="timeout",
                     packets=0)
    v = judge(starved).verdict("test_udp_8472", pid)
    assert "VXLAN" not in v.message and "says nothing about the network" in v.message


def test_host_probe_not_admitted_skips_only_host_checks_quoting_the_denial() -> None:
    doc = load("healthy")
    denial = 'pods "k8snet-host-node-2" is forbidden: violates PodSecurity "baseline:latest"'
    doc["host_unavailable"] = {"node-2": denial}
    j = judge(doc)
    for test in ("test_node_sysctls", "test_pod_cidr"):
        v = j.verdict(test, "node-2")
        assert v.outcome == SKIPPED and denial in v.message, v
    assert j.verdict("test_pod_ping", "node-1->node-2").outcome == PASSED
    assert j.verdict("test_node_sysctls", "node-1").outcome == PASSED


def test_a_probe_image_lacking_a_tool_is_not_a_node_or_network_cause() -> None:
    doc = load("healthy")
    doc["readiness"]["node-2"] = ["probe image localhost/x:1 lacks iperf3 (in the host and "
                                  "pod-network probes): not a network fault"]
    j = judge(doc)
    v = j.verdict("test_nodes_ready", "node-2")
    assert v.outcome == FAILED
    f = j.finding(v.finding)
    assert f is not None and f.cause == "probe-failure"
    assert "Make iperf3 runnable" in v.message
    assert not [f for f in j.findings if f.cause in ("vxlan-blocked", "node-not-ready")]


def test_no_egress_target_skips_egress_and_says_external_dns_was_not_checked() -> None:
    doc = load("healthy")
    doc["egress"] = []
    doc["dns"] = [e for e in doc["dns"] if "world" not in str(e.get("name"))]
    doc["targets"] = {**doc["targets"], "external_name": "",
                      "external_skip": "the egress target 198.18.0.10 is an IP address",
                      "egress_skip": "no egress target (--k8s-egress-url is empty)"}
    j = judge(doc)
    v = j.verdict("test_egress", "node-1")
    assert v.outcome == SKIPPED and "no egress target" in v.message
    d = j.verdict("test_dns", "node-1")
    assert d.outcome == PASSED and "external DNS not checked" in d.message


def test_an_image_that_cannot_be_pulled_is_named_as_such_not_as_a_cni_problem() -> None:
    doc = load("healthy")
    doc["readiness"]["node-1"] = [
        "pod-network probe k8snet-probe-node-1 on node-1: ErrImagePull: image reg/x:1: not found",
        "pod-network probe does not run commands: probe pod k8snet-probe-node-1 is not ready"]
    j = judge(doc)
    v = j.verdict("test_nodes_ready", "node-1")
    assert v.outcome == FAILED
    assert "image reg/x:1 could not be pulled (ErrImagePull): not found" in v.message
    assert "--k8s-probe-image" in v.message
    assert "CNI" not in v.message and "FailedCreatePodSandBox" not in v.message


# -- the encapsulation the nodes' links show, and the MTU the pods' own interfaces have -----

PROBE_DATA = Path(__file__).parent / "data"


def with_encapsulation(doc: dict[str, Any], capture: str) -> dict[str, Any]:
    """``doc`` with every node's links as in ``tests/data/<capture>`` (ip -d -o link show)."""
    from pytest_k8snet.probes.nodecheck import parse_links

    doc = copy.deepcopy(doc)
    enc = parse_links((PROBE_DATA / capture).read_text()).as_dict()
    doc["encapsulation"] = {n: copy.deepcopy(enc) for n in doc["nodes"]}
    return doc


def test_no_udp_encapsulation_skips_the_udp_check_saying_what_was_detected() -> None:
    j = judge(with_encapsulation(load("healthy"), "ip_link_calico_ipip.txt"))
    udp = {k: v for k, v in j.verdicts.items() if k[0] == "test_udp_8472"}
    assert len(udp) == 6 and {v.outcome for v in udp.values()} == {SKIPPED}
    assert all("no UDP encapsulation detected" in v.message and "ipip tunl0" in v.message
               for v in udp.values())
    # flannel's VXLAN on 8472 (the lab's links) is tested as before
    lab = judge(with_encapsulation(load("healthy"), "ip_link_lab_flannel.txt"))
    assert lab.findings == () and {v.outcome for k, v in lab.verdicts.items()
                                   if k[0] == "test_udp_8472"} == {PASSED}


def test_the_overlay_finding_names_the_detected_port_not_8472() -> None:
    j = judge(with_encapsulation(load("vxlan-blocked"), "ip_link_calico_vxlan.txt"))
    f = next(f for f in j.findings if f.cause == "vxlan-blocked")
    assert "UDP 4789 (VXLAN)" in f.message and "8472" not in f.message
    # node to node on the detected port (a capture with the CNI's port free)
    doc = with_encapsulation(load("vxlan-blocked"), "ip_link_cilium_geneve.txt")
    for t in doc["throughput"]:
        if "node-2" in (t["src"], t["dst"]):
            t["node_port"] = {"port": 6081, "error": "unable to connect to server",
                              "failure": "network", "loss_pct": 100.0, "mbps": 0.0,
                              "packets": 0, "port_busy": False}
    v = judge(doc).verdicts[("test_udp_8472", "node-1->node-2")]
    assert v.outcome == FAILED and "node to node on UDP 6081 itself fails" in v.message
    assert "llow UDP 6081 (Geneve) between all nodes" in v.message


def test_bridge_netfilter_is_required_only_where_pods_are_bridged() -> None:
    doc = load("healthy")
    doc["node_checks"][1]["sysctls"].pop("net.bridge.bridge-nf-call-iptables")  # node-2
    routed = judge(with_encapsulation(doc, "ip_link_calico_vxlan.txt"))
    v = routed.verdicts[("test_node_sysctls", "node-2")]
    assert v.outcome == PASSED and "not bridged" in v.message and routed.findings == ()
    bridged = judge(with_encapsulation(doc, "ip_link_lab_flannel.txt"))
    v = bridged.verdicts[("test_node_sysctls", "node-2")]
    assert v.outcome == FAILED and "br_netfilter not loaded" in v.message
    assert judge(doc).verdicts[("test_node_sysctls", "node-2")].outcome == FAILED  # unknown


def test_pod_cidr_ignores_the_common_cni_interfaces() -> None:
    doc = load("healthy")
    cni = [("kube-ipvs0", "10.96.0.10/32"), ("kube-ipvs0", "10.96.100.1/32"),
           ("tunl0", "10.244.0.1/32"), ("vxlan.calico", "10.244.0.64/32"),
           ("cbr0", "10.244.0.1/24"), ("cilium_host", "10.244.0.90/32"),
           ("kube-bridge", "10.244.0.1/24"), ("weave", "10.244.0.2/16"),
           ("nodelocaldns", "10.96.0.10/32"), ("wg0", "10.244.0.3/32"),
           ("lxc_health", "10.244.0.4/32"), ("docker0", "10.244.200.1/24")]
    for name, addr in cni:
        doc["node_checks"][0]["interfaces"].append({"name": name, "mtu": 1450,
                                                    "addresses": [addr]})
    j = judge(doc)
    assert j.verdicts[("test_pod_cidr", "node-1")].outcome == PASSED, j.findings
    doc["node_checks"][0]["interfaces"].append({"name": "ens6", "mtu": 1500,
                                                "addresses": ["10.244.3.7/24"]})
    v = judge(doc).verdicts[("test_pod_cidr", "node-1")]
    assert v.outcome == FAILED and "10.244.3.0/24" in v.message and "ipvs" not in v.message


def test_path_mtu_at_the_pods_own_interface_mtu_blames_the_pod_mtu_not_the_underlay() -> None:
    # --k8s-expect-mtu 1500 on the lab's 1450 overlay: every search stops at eth0's 1450
    doc = load("healthy")
    doc.update(expected_mtu=1500, expected_mtu_source="flag",
               pod_mtu={n: 1450 for n in doc["nodes"]})
    for e in doc["path_mtu"]:
        e.update(expected=1500, first_lost=1451)
    j = judge(doc)
    v = j.verdicts[("test_path_mtu", "node-1->node-2")]
    assert v.outcome == FAILED and "pods' own interface MTU" in v.message
    assert "underlay link drops" not in v.message and "not the underlay" in v.message
    assert "--k8s-expect-mtu 1450" in v.message  # the fix names both ways out
    assert {f.cause for f in j.findings} == {"pod-mtu"}
    # a path MTU below the pods' own MTU is still the underlay's
    under = load("underlay-mtu")
    under["pod_mtu"] = {n: 1450 for n in under["nodes"]}
    assert {f.cause for f in judge(under).findings if f.pairs} >= {"mtu"}
    assert "pod-mtu" not in {f.cause for f in judge(under).findings}


def test_a_default_expected_mtu_is_said_in_the_path_mtu_verdicts() -> None:
    doc = load("healthy")
    doc.update(expected_mtu_source="default 1500 (no pod MTU could be read)", pod_mtu={})
    v = judge(doc).verdicts[("test_path_mtu", "node-1->node-2")]
    assert v.outcome == PASSED and "is a default" in v.message
    under = load("underlay-mtu")
    under["expected_mtu_source"] = "default 1500 (no pod MTU could be read)"
    failed_ = [v for v in judge(under).verdicts.values()
               if v.test == "test_path_mtu" and v.outcome == FAILED]
    assert failed_ and all("no pod interface MTU could be read" in v.message for v in failed_)
    # a measured expectation says nothing extra
    measured = load("healthy")
    measured.update(expected_mtu_source="pod interface")
    assert judge(measured).verdicts[("test_path_mtu", "node-1->node-2")].message == ""


def test_an_ipv6_path_mtu_message_counts_48_header_bytes() -> None:
    doc = load("underlay-mtu")
    for e in doc["path_mtu"]:
        e["headers"] = 48  # the search ran against IPv6 pod addresses
    v = judge(doc).verdicts[("test_path_mtu", "node-1->node-2")]
    assert v.outcome == FAILED and "1402-byte DF ping lost, 1352 passes" in v.message
    ipv4 = judge(load("underlay-mtu")).verdicts[("test_path_mtu", "node-1->node-2")]
    assert "1422-byte DF ping lost, 1372 passes" in ipv4.message


def test_local_backends_failing_on_routed_pods_do_not_blame_bridge_netfilter() -> None:
    # bridge-nf-off's Service symptom on a node whose pods are not bridged (Calico): the
    # missing sysctl is no finding there, and the Service failure does not name it
    doc = with_encapsulation(load("bridge-nf-off"), "ip_link_calico_vxlan.txt")
    j = judge(doc)
    assert "bridge-nf" not in {f.cause for f in j.findings}
    assert j.verdict("test_node_sysctls", "node-2").outcome == PASSED
    v = j.verdict("test_service", "node-2")
    f = j.finding(v.finding)
    assert v.outcome == FAILED and f is not None and f.cause == "inconclusive"
    assert "not bridged" in f.contradicting[0] and "=1" not in f.contradicting[0]
