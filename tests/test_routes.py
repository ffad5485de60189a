"""A missing route on a routed overlay (host-gw) is one ``no-route`` finding, never a firewall:
the route-lookup parser on real ``ip route get`` output, and the judge on a document
measured on a host-gw lab with ``route-missing`` on node-1 (its route to node-2's pods)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import FAILED, SKIPPED, judge
from pytest_k8snet.probes import nodecheck, routeget
from tests.judged import roots

DATA = Path(__file__).parent / "data" / "diagnosis"
GOLDEN = "hostgw-route-missing-node-1-to-node-2.json"
PEER = routeget.Peer("node-2", "10.244.1.2", "172.28.128.12", ("10.244.1.0/24",))

# Captured in a host-gw lab's node-1 (iproute2 6.1, Debian 12), `ip route get 10.244.1.2 2>&1`
# with the route present, removed (the default route takes it), replaced by an `unreachable`,
# `blackhole` and `prohibit` route, and with no default route either; and a local pod.
VIA_PEER = "10.244.1.2 via 172.28.128.12 dev eth0 src 172.28.128.11 uid 0 \n    cache \n"
VIA_GATEWAY = "10.244.1.2 via 172.28.128.254 dev eth0 src 172.28.128.11 uid 0 \n    cache \n"
LOCAL_BRIDGE = "10.244.0.2 dev cni0 src 10.244.0.1 uid 0 \n    cache \n"
VXLAN = "10.244.1.2 via 10.244.1.0 dev flannel.1 src 10.244.0.0 uid 0 \n    cache \n"
ERRORS = ("RTNETLINK answers: Network is unreachable\n", "RTNETLINK answers: No route to host\n",
          "RTNETLINK answers: Invalid argument\n", "RTNETLINK answers: Permission denied\n")


def test_a_route_via_the_peer_node() -> None:
    r = routeget.parse_one(PEER, VIA_PEER)
    assert (r.via, r.dev, r.src, r.error, r.kind) == ("172.28.128.12", "eth0", "172.28.128.11",
                                                       None, "unicast")


def test_a_route_via_the_default_gateway_is_routed_but_not_via_the_peer() -> None:
    r = routeget.parse_one(PEER, VIA_GATEWAY)
    assert (r.via, r.dev, r.error) == ("172.28.128.254", "eth0", None)


def test_an_on_link_route_has_no_gateway() -> None:
    r = routeget.parse_one(routeget.Peer("node-1", "10.244.0.2", "172.28.128.11"), LOCAL_BRIDGE)
    assert (r.via, r.dev, r.src, r.error) == (None, "cni0", "10.244.0.1", None)


@pytest.mark.parametrize("output", ERRORS)
def test_rtnetlink_errors_are_no_route(output: str) -> None:
    r = routeget.parse_one(PEER, output)
    assert r.error == output.strip() and r.via is None and r.dev is None


def test_the_framed_script_output_parses_back_per_peer() -> None:
    other = routeget.Peer("node-3", "10.244.2.2", "172.28.128.13")
    script = routeget.script([PEER, other])
    assert script.count("ip route get") == 2 and "10.244.1.0/24" in script
    # What that script printed on node-1 with route-missing to node-2 (and no routes at all
    # for node-3: no default route either).
    out = (f"{routeget.MARK} node-2 10.244.1.2 172.28.128.12 10.244.1.0/24\n{VIA_GATEWAY}"
           f"{routeget.MARK} node-3 10.244.2.2 172.28.128.13 -\n{ERRORS[0]}")
    a, b = routeget.parse(out)
    assert (a.peer, a.dst, a.peer_ip, a.peer_pod_cidrs, a.via) == (
        "node-2", "10.244.1.2", "172.28.128.12", ("10.244.1.0/24",), "172.28.128.254")
    assert (b.peer, b.peer_pod_cidrs, b.error) == ("node-3", (), ERRORS[0].strip())
    assert nodecheck.parse("node-1", "", "[]", None, out).routes == (a, b)
    assert nodecheck.parse("node-1", "", "[]").routes is None


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / GOLDEN).read_text())
    return doc


def test_a_missing_route_on_host_gw_is_one_finding_naming_node_peer_and_mode() -> None:
    j = judge(load())
    (root,) = roots(j)
    assert root.cause == "no-route" and root.nodes == ("node-1",), root
    assert (root.mode, root.protocol, root.direction) == ("route", "all", "out")
    assert root.summary.startswith("No route to node-2's pods (10.244.1.0/24) on node-1")
    assert "via 172.28.128.254" in root.summary and "not a firewall" in root.summary
    assert "flanneld host-gw" in root.fix and "firewall" not in root.fix.lower()
    assert set(root.pairs) == {"node-1->node-2", "node-2->node-1"}
    assert not [f for f in j.findings if f.cause in ("inconclusive", "unknown", "vxlan-blocked",
                                                      "pod-firewall")]
    failed = {k for k, v in j.verdicts.items() if v.outcome == FAILED}
    assert failed == {("test_pod_ping", "node-1->node-2"), ("test_pod_ping", "node-2->node-1")}
    # The pairs' other failures (path MTU, 1 MiB, the Service) skip behind it.
    behind = {k for k, v in j.verdicts.items() if v.outcome == SKIPPED and v.finding == root.id}
    assert {("test_path_mtu", "node-1->node-2"), ("test_large_packets", "node-2->node-1"),
            ("test_service", "node-1"), ("test_service", "node-2")} <= behind


def test_without_route_lookups_the_same_run_judges_as_before() -> None:
    """Old documents (no ``routes`` in node_checks) keep their old judgement."""
    doc = load()
    for c in doc["node_checks"]:
        del c["routes"]
    (root,) = roots(judge(doc))
    assert root.cause == "vxlan-blocked"


def test_a_firewall_on_the_same_pairs_is_no_missing_route() -> None:
    """Every lookup via the peer node (the routes are there): the pairs stay a firewall's."""
    doc = copy.deepcopy(load())
    for c in doc["node_checks"]:
        for r in c["routes"]:
            r["via"] = r["peer_ip"]
    assert [f.cause for f in roots(judge(doc))] == ["vxlan-blocked"]


def test_a_lookup_with_no_route_at_all_is_a_missing_route() -> None:
    doc = copy.deepcopy(load())
    (n1,) = [c for c in doc["node_checks"] if c["node"] == "node-1"]
    (to2,) = [r for r in n1["routes"] if r["peer"] == "node-2"]
    to2.update(via=None, dev=None, src=None, error="RTNETLINK answers: Network is unreachable")
    (root,) = roots(judge(doc))
    assert root.id == "no-route:node-1" and "Network is unreachable" in root.summary


def test_a_tunnel_route_via_the_peers_vtep_is_a_working_shape() -> None:
    """On VXLAN the routes go via the peer's VTEP address (inside its pod CIDR) on flannel.1:
    that is the working shape, and the one lookup that leaves by the gateway is the fault."""
    r = routeget.parse_one(PEER, VXLAN)
    assert (r.via, r.dev, r.peer_ip) == ("10.244.1.0", "flannel.1", "172.28.128.12")
    doc = copy.deepcopy(load())
    for c in doc["node_checks"]:
        for look in c["routes"]:
            if look["via"] == look["peer_ip"]:
                look.update(via=look["peer_pod_cidrs"][0].split("/")[0], dev="flannel.1")
    (root,) = roots(judge(doc))
    assert root.id == "no-route:node-1", root
    for c in doc["node_checks"]:
        for look in c["routes"]:
            look.update(via=look["peer_pod_cidrs"][0].split("/")[0], dev="flannel.1")
    assert [f.cause for f in roots(judge(doc))] == ["vxlan-blocked"]


def test_with_no_working_pair_a_router_saying_unreachable_decides() -> None:
    """Nothing to compare the gateway hop with (only node-1's lookups, every pair of node-1
    failing): it is the missing route's only when the pings were answered "net unreachable"."""
    doc = copy.deepcopy(load())
    doc["node_checks"] = [c for c in doc["node_checks"] if c["node"] == "node-1"]
    for c in doc["node_checks"]:
        c["routes"] = [r for r in c["routes"] if r["peer"] == "node-2"]
    assert [f.cause for f in roots(judge(doc))] == ["vxlan-blocked"]
    (ping,) = [p for p in doc["ping"] if (p["src"], p["dst"], p["network"]) ==
               ("node-1", "node-2", "pod")]
    ping.update(errors=10, error_kind="net-unreachable", error_from="172.28.128.254")
    (root,) = roots(judge(doc))
    assert root.id == "no-route:node-1" and root.mode == "route"
    assert "answered net-unreachable by 172.28.128.254" in root.summary


def test_every_route_of_a_node_missing_is_one_finding_naming_every_peer() -> None:
    doc: dict[str, Any] = json.loads((DATA / "hostgw-route-missing-node-1-all.json").read_text())
    j = judge(doc)
    (root,) = roots(j)
    assert root.id == "no-route:node-1" and root.mode == "route"
    assert root.summary.startswith("No route to node-2's pods (10.244.1.0/24), node-3's pods "
                                   "(10.244.2.0/24) on node-1")
    assert set(root.pairs) == {"node-1->node-2", "node-2->node-1", "node-1->node-3",
                               "node-3->node-1"}
    assert [f.id for f in j.findings] == [root.id]
    assert {k[0] for k, v in j.verdicts.items() if v.outcome == FAILED} == {"test_pod_ping"}
