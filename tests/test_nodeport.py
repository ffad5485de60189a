"""test_nodeport on documents measured on a 3-node lab (tests/data/measure/nodeport-*, each
says in ``note`` which fault or raw firewall rule was on), and the port probe's parser on
the NodePort lines it printed there."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import FAILED, PASSED, SKIPPED, judge
from pytest_k8snet.measure.document import sections
from pytest_k8snet.probes import ports
from tests.judged import roots

DATA = Path(__file__).parent / "data"
NAME = "test_nodeport"
NODES = ("node-1", "node-2", "node-3")


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / "measure" / f"nodeport-{name}.json").read_text()))


def test_healthy_every_node_passes() -> None:
    j = judge(load("healthy"))
    assert [j.verdict(NAME, n).outcome for n in NODES] == [PASSED] * 3
    assert not j.findings


def test_an_old_document_skips_not_measured() -> None:
    doc = load("healthy")
    del doc["nodeports"]
    j = judge(doc)
    for n in NODES:
        v = j.verdict(NAME, n)
        assert v.outcome == SKIPPED and "not measured" in v.message


# document -> (direction, mode, the nodes whose test fails, words of the message)
CASES: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "host-firewall-node-2": ("in", "drop", ("node-2",), "time out (dropped, no answer) into "
                             "node-2: its NodePort tcp/30080 from node-1, node-3"),
    "tcp30080-reject-in-node-2": ("in", "reject", ("node-2",), "are refused (rejected: reset "
                                  "or ICMP unreachable) into node-2"),
    # node-2's way out: every other node's NodePort fails from node-2, one rule at node-2
    "tcp30080-drop-out-node-2": ("out", "drop", NODES, "from node-2: the NodePort tcp/30080 "
                                 "on node-1, node-3 (every other node)"),
    "tcp30080-reject-out-node-2": ("out", "reject", NODES, "are refused"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_closed_nodeport_range_is_one_located_finding(name: str) -> None:
    direction, mode, failing, words = CASES[name]
    j = judge(load(name))
    f = j.finding("nodeport:node-2")
    assert f is not None and f.root is None
    assert (f.cause, f.nodes, f.direction, f.protocol, f.port, f.mode) == (
        "nodeport-blocked", ("node-2",), direction, "tcp", "30080", mode)
    assert words in f.summary
    assert "30000-32767" in f.summary and "30000-32767/tcp" in f.fix
    for n in NODES:
        v = j.verdict(NAME, n)
        assert (v.outcome == FAILED) == (n in failing), (n, v)
        if n in failing:
            assert v.finding == f.id and "node-2" in v.message and "30080" in v.message
    assert not [x for x in j.findings if x.cause in ("unknown", "inconclusive")]


def test_host_firewall_fails_its_control_plane_ports_and_its_nodeport_only() -> None:
    j = judge(load("host-firewall-node-2"))
    failed = {k for k, v in j.verdicts.items() if v.outcome == FAILED}
    assert failed == {("test_control_plane_ports", "node-2"), (NAME, "node-2")}
    assert {f.id for f in roots(j)} == {"control-plane-ports:node-2", "nodeport:node-2"}


def test_a_node_that_forwards_nothing_makes_its_nodeport_a_knock_on() -> None:
    """node-2's NodePort leads to its own pods through its forwarding: ip_forward=0 there
    times the NodePort out, which follows from the forwarding finding."""
    doc = load("ip-forward-off-node-2")
    assert {e["state"] for e in doc["nodeports"] if e["peer"].endswith("node-2")} == {"timeout"}
    j = judge(doc)
    v = j.verdict(NAME, "node-2")
    assert v.outcome == SKIPPED and "a knock-on of IP forwarding off" in v.message
    k = j.finding(v.finding)
    root = j.finding(k.root) if k is not None and k.root is not None else None
    assert root is not None and root.cause == "ip-forward"
    assert [j.verdict(NAME, n).outcome for n in ("node-1", "node-3")] == [PASSED] * 2


def test_no_http_answer_fails_without_blaming_a_firewall() -> None:
    doc = load("healthy")
    for e in doc["nodeports"]:
        if e["peer"] == "the NodePort on node-3":
            e["state"] = "error"
    j = judge(doc)
    v = j.verdict(NAME, "node-3")
    assert v.outcome == FAILED and "no HTTP answer to node-1, node-2" in v.message
    f = j.finding(v.finding)
    assert f is not None and f.cause == "unknown"


def test_the_probe_parser_reads_nodeport_lines_from_the_lab() -> None:
    """Printed from node-1's host network with a REJECT of the NodePort range on node-2's
    FORWARD and a DROP of it in node-3's mangle PREROUTING."""
    checks = [ports.PortCheck("tcp", "172.28.128.12", 10250, "the kubelet on node-2"),
              ports.PortCheck("nodeport", "172.28.128.12", 30080, "the NodePort on node-2"),
              ports.PortCheck("nodeport", "172.28.128.13", 30080, "the NodePort on node-3")]
    found = ports.parse(checks, (DATA / "ports_nodeport.txt").read_text())
    assert [(c.kind, c.state) for c in found] == [
        ("tcp", "open"), ("nodeport", "refused"), ("nodeport", "timeout")]
    # One exec, two sections: the control-plane port stays in ports, the NodePorts move.
    doc = sections({"ports": {"node-1": found}})
    assert [e["port"] for e in doc["ports"]] == [10250]
    assert [(e["src"], e["peer"], e["state"]) for e in doc["nodeports"]] == [
        ("node-1", "the NodePort on node-2", "refused"),
        ("node-1", "the NodePort on node-3", "timeout")]


def test_the_probe_wants_an_http_answer_not_only_a_connect() -> None:
    """Run for real on localhost: an HTTP server is ``open``; a listener that accepts and
    closes without a word is ``error``; a closed port is ``refused``."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    mute = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    threading.Thread(target=http.serve_forever, daemon=True).start()
    threading.Thread(target=lambda: mute.accept()[0].close(), daemon=True).start()
    try:
        checks = [ports.PortCheck("nodeport", "127.0.0.1", p, "x") for p in
                  (http.server_address[1], mute.getsockname()[1], closed_port)]
        out = subprocess.run(ports.argv(checks, 2, "n"), capture_output=True, text=True,
                             timeout=30, check=False).stdout
    finally:
        http.shutdown()
        http.server_close()
        mute.close()
    assert [c.state for c in ports.parse(checks, out)] == ["open", "error", "refused"]
