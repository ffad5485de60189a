"""The reports without a lab: the view, the baseline comparison, terminal and HTML rendering,
and JUnit properties through pytest (plain and under xdist) on tests that fake their probes."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_k8snet.report import baseline, html, html_tables, junit, terminal
from pytest_k8snet.judge import judge
from pytest_k8snet.options import DEFAULT_LOSS_THRESHOLD
from pytest_k8snet.report.results import RunReport
from pytest_k8snet.report.schema import SCHEMA, VERSION
from pytest_k8snet.report.view import ClusterView, causes_count, group_diagnoses

pytest_plugins = ["pytester"]


def make_doc(n: int = 3, cut: str | None = None, small_mtu: str | None = None,
             mbps: float = 9.99, egress_rate: float = 0.0, judged: bool = True
             ) -> dict[str, Any]:
    """A results document like a lab run's: ``cut`` loses the overlay (VXLAN blocked),
    ``small_mtu`` sits behind a 1400-byte underlay link; ``judged``: with the findings and
    verdicts the run's judgement gives it."""
    names = [f"node-{i}" for i in range(1, n + 1)]
    doc: dict[str, Any] = {
        "schema": SCHEMA, "version": VERSION, "plugin_version": "0.1.0",
        "time": "2026-01-01T00:00:00Z", "cluster": {"kind": "lab", "name": "t", "faults": []},
        "options": {}, "nodes": names, "expected_mtu": 1450, "ping": [], "path_mtu": [],
        "throughput": [], "http": [], "dns": [], "egress": [], "service": [],
        "node_checks": [], "diagnoses": [], "tests": {}, "baseline": None}
    for a in names:
        doc["egress"].append({"node": a, "network": "pod", "attempts": 50,
                              "failures": int(50 * egress_rate), "failure_rate": egress_rate,
                              "failed_ports": []})
        doc["node_checks"].append({"node": a, "sysctls": {
            "net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1",
            "net.ipv4.ip_local_port_range": "32768 60999"},
            "interfaces": [{"name": "eth0", "mtu": 1500, "addresses": []}]})
        for name in ("kubernetes.default.svc.cluster.local", "world.example.com"):
            doc["dns"].append({"node": a, "name": name, "rcode": "NOERROR",
                               "answers": ["10.96.0.1"], "query_ms": 1, "ok": True})
        for b in names:
            if a == b:
                continue
            broken = cut in (a, b)
            small = small_mtu in (a, b)
            pid = f"{a}->{b}"
            doc["ping"].append({"src": a, "dst": b, "network": "pod",
                                "loss_pct": 100.0 if broken else 0.0,
                                "rtt_ms": None if broken else 0.1, "transmitted": 3,
                                "received": 0 if broken else 3})
            doc["ping"].append({"src": a, "dst": b, "network": "host", "loss_pct": 0.0,
                                "rtt_ms": 0.05, "transmitted": 3, "received": 3})
            doc["path_mtu"].append({"src": a, "dst": b, "network": "pod",
                                    "bytes": 0 if broken else 1400 if small else 1450,
                                    "expected": 1450, "first_lost": None, "probes": 11})
            doc["throughput"].append({"src": a, "dst": b, "network": "pod",
                                      "mbps": 0.0 if broken else mbps,
                                      "loss_pct": 100.0 if broken else 0.0,
                                      "packets": 0 if broken else 1000,
                                      "error": "unable to connect" if broken else None})
            if broken:
                doc["diagnoses"].append({"cause": "vxlan-blocked", "nodes": [cut], "pairs": [pid],
                                         "message": f"{pid}: pod-to-pod ping lost 100% while "
                                         "node-to-node ping works: UDP 8472 is dropped",
                                         "test": f"t.py::test_pod_ping[{pid}]"})
            elif small:
                doc["diagnoses"].append({"cause": "mtu", "nodes": [], "pairs": [pid],
                                         "message": f"{pid}: path MTU 1400 < expected 1450",
                                         "test": f"t.py::test_path_mtu[{pid}]"})
    if judged:
        doc.setdefault("thresholds", {"loss_pct": DEFAULT_LOSS_THRESHOLD})
        j = judge(doc)
        doc["findings"] = [f.as_dict() for f in j.findings]
        doc["verdicts"] = [v.as_dict() for v in j.verdicts.values()]
        for d in doc["diagnoses"]:  # as the suite records them: naming the verdict's finding
            test, _, pid = d["test"].partition("::")[2].partition("[")
            d["finding"] = j.verdict(test, pid.rstrip("]")).finding
    return doc


NODE2_PAIRS = {"node-1->node-2", "node-2->node-1", "node-2->node-3", "node-3->node-2"}


# -- view and grouping ----------------------------------------------------------------------------

def test_view_marks_the_failing_pairs() -> None:
    view = ClusterView(make_doc(cut="node-2"))
    pod = {c.id: c.status for c in view.pair_cells("pod")}
    assert {p for p, s in pod.items() if s == "fail"} == NODE2_PAIRS
    assert {p for p, s in pod.items() if s == "pass"} == {"node-1->node-3", "node-3->node-1"}
    assert {c.status for c in view.pair_cells("host")} == {"pass"}
    assert view.nodes == ["node-1", "node-2", "node-3"]


@pytest.mark.parametrize("kwargs, headline", [
    ({"cut": "node-2"}, "Overlay port blocked: 4 pairs involving node-2"),
    ({"small_mtu": "node-2"}, "MTU: 4 pairs involving node-2"),
    ({"small_mtu": "node-3", "n": 5}, "MTU: 8 pairs involving node-3"),
])
def test_diagnoses_group_by_cause(kwargs: dict[str, Any], headline: str) -> None:
    groups = group_diagnoses(make_doc(**kwargs)["diagnoses"])
    assert [g.headline for g in groups] == [headline]


def test_node_level_diagnoses_name_their_nodes() -> None:
    groups = group_diagnoses([
        {"cause": "ip-forward", "nodes": ["node-2"], "pairs": [], "message": "x"},
        {"cause": "mtu", "nodes": [], "pairs": ["node-1->node-2"], "message": "y"},
        {"cause": "mtu", "nodes": [], "pairs": ["node-1->node-2"], "message": "z"}])
    assert [g.headline for g in groups] == ["MTU: node-1->node-2 (2 findings)",
                                            "IP forwarding off: node-2"]


# -- pass and fail are the judgement's, never the numbers' ---------------------------------------

def judged_doc(doc: dict[str, Any]) -> dict[str, Any]:
    doc.setdefault("thresholds", {"loss_pct": DEFAULT_LOSS_THRESHOLD})
    j = judge(doc)
    doc["findings"] = [f.as_dict() for f in j.findings]
    doc["verdicts"] = [v.as_dict() for v in j.verdicts.values()]
    return doc


def lossy_doc(threshold: float, host_loss: float = 15.0, udp_loss: float = 0.0
              ) -> dict[str, Any]:
    """Loss into node-2: ``host_loss`` % of node-to-node pings, ``udp_loss`` % of UDP
    through the overlay; judged with ``--k8s-loss-threshold threshold``."""
    doc = make_doc(judged=False)
    doc["thresholds"] = {"loss_pct": threshold}
    for e in doc["ping"]:
        if e["network"] == "host" and e["dst"] == "node-2":
            e.update(loss_pct=host_loss, transmitted=20, received=round(20 - host_loss / 5))
    for e in doc["throughput"]:
        if e["dst"] == "node-2":
            e["loss_pct"] = udp_loss
    return judged_doc(doc)


def statuses(view: ClusterView, network: str) -> dict[str, str]:
    return {c.id: c.status for c in view.pair_cells(network)}


def test_loss_below_the_threshold_is_shown_not_failed() -> None:
    """The old bug: 15% ping loss into node-2's host network with --k8s-loss-threshold 50,
    every test passed while the summary said ``host network: ... 1 failing``."""
    doc = lossy_doc(50.0, udp_loss=10.0)
    assert "failed" not in {v["outcome"] for v in doc["verdicts"]}
    view = ClusterView(doc)
    assert set(statuses(view, "pod").values()) == set(statuses(view, "host").values()) == {
        "pass"}
    tr = FakeTerminal()
    terminal.write(tr, RunReport(doc))
    assert "pod network: 6 pairs probed, 0 failing" in tr.text
    assert "host network: 6 pairs probed, 0 failing" in tr.text
    assert "  node-1       -    15%   0.05" in tr.text  # the loss is still shown
    markup = html.render(RunReport(doc))
    assert 'data-status="fail"' not in markup and 'class="k8s-bad"' not in markup
    assert "k8s-bad" not in markup.split('id="k8s-matrix-host"')[1].split("</table>")[0]
    assert "10%" in markup  # the UDP loss, shown in its table


def test_loss_above_the_threshold_fails_exactly_the_judged_pairs() -> None:
    doc = lossy_doc(5.0, udp_loss=10.0)
    failed = {v["subject"] for v in doc["verdicts"] if v["outcome"] == "failed"}
    assert failed == {"node-1->node-2", "node-3->node-2"}
    view = ClusterView(doc)
    assert {p for p, st in statuses(view, "pod").items() if st == "fail"} == failed
    # No test fails on the host network's 15%: its cells pass.
    assert set(statuses(view, "host").values()) == {"pass"}
    assert view.cell("pod", "node-1", "node-2").problems == ["UDP: 10% lost"]  # type: ignore
    tr = FakeTerminal()
    terminal.write(tr, RunReport(doc))
    assert "pod network: 6 pairs probed, 2 failing" in tr.text
    assert "host network: 6 pairs probed, 0 failing" in tr.text
    p = parse(html.render(RunReport(doc)))
    assert {c["data-pair"] for c in p.cells if c.get("data-status") == "fail"} == failed
    rows = html_tables.throughput_table(view).split("<tr")
    assert {r for r in rows if 'class="k8s-bad"' in r.split(">")[0]} == {
        r for r in rows if "node-1-&gt;node-2" in r or "node-3-&gt;node-2" in r}


def test_host_cells_fail_on_an_underlay_finding() -> None:
    doc = make_doc(cut="node-2", judged=False)
    for e in doc["ping"]:
        if e["network"] == "host" and "node-2" in (e["src"], e["dst"]):
            e.update(loss_pct=100.0, received=0, rtt_ms=None)
    view = ClusterView(judged_doc(doc))
    assert {p for p, st in statuses(view, "host").items() if st == "fail"} == NODE2_PAIRS
    assert {p for p, st in statuses(view, "pod").items() if st == "fail"} == NODE2_PAIRS
    cell = view.cell("host", "node-1", "node-2")
    assert cell is not None and cell.problems == ["ping: 100% lost, Nodes cannot reach each other"]


def test_a_document_without_verdicts_is_not_judged() -> None:
    doc = make_doc(judged=False)
    for e in doc["ping"]:
        e["loss_pct"] = 40.0
    view = ClusterView(doc)
    assert set(statuses(view, "pod").values()) == {"unjudged"}
    tr = FakeTerminal()
    terminal.write(tr, RunReport(doc))
    assert "pod network: 6 pairs probed, not judged" in tr.text
    markup = html.render(RunReport(doc))
    assert 'data-status="fail"' not in markup and 'data-status="pass"' not in markup
    assert 'data-status="unjudged"' in markup and "6 pairs, not judged" in markup
    assert "k8s-bad" not in markup.split("</style>")[1]
    # The failures its tests recorded still mark their pairs.
    view = ClusterView(make_doc(cut="node-2", judged=False))
    assert {p for p, st in statuses(view, "pod").items() if st == "fail"} == NODE2_PAIRS


# -- baseline comparison --------------------------------------------------------------------------

def test_baseline_names_the_pairs_that_regressed() -> None:
    c = baseline.compare(make_doc(), make_doc(cut="node-2"), 20.0, "base.json")
    assert set(c.regressed_pairs) == NODE2_PAIRS
    kinds = {(r.kind, r.pair) for r in c.regressions}
    for pair in NODE2_PAIRS:
        assert {("pair", pair), ("path_mtu", pair), ("throughput", pair)} <= kinds
    assert not c.improvements and c.not_compared == 0
    back = baseline.compare(make_doc(cut="node-2"), make_doc(), 20.0)
    assert not back.regressions and len(back.improvements) == 12


def test_baseline_identical_runs_have_no_regressions() -> None:
    c = baseline.compare(make_doc(), make_doc(), 20.0)
    assert c.regressions == [] and c.compared == 6 * 2 + 6 + 6 + 3


@pytest.mark.parametrize("after, tolerance, regressed", [
    (8.5, 20.0, False),   # 15% down: within the tolerance
    (7.5, 20.0, True),    # 25% down
    (7.5, 30.0, False),
    (12.0, 20.0, False),  # faster
])
def test_baseline_throughput_tolerance(after: float, tolerance: float, regressed: bool) -> None:
    c = baseline.compare(make_doc(mbps=10.0), make_doc(mbps=after), tolerance)
    assert bool([r for r in c.regressions if r.kind == "throughput"]) is regressed
    assert len(c.regressions) == (6 if regressed else 0)


def test_baseline_shrunk_path_mtu_and_risen_failure_rate() -> None:
    c = baseline.compare(make_doc(), make_doc(small_mtu="node-3", egress_rate=0.04), 20.0)
    mtu = [r for r in c.regressions if r.kind == "path_mtu"]
    assert {r.pair for r in mtu} == {"node-1->node-3", "node-3->node-1", "node-2->node-3",
                                     "node-3->node-2"}
    assert mtu[0].before == 1450 and mtu[0].after == 1400 and "-50" in mtu[0].message
    rates = [r for r in c.regressions if r.kind == "failure_rate"]
    assert {r.node for r in rates} == {"node-1", "node-2", "node-3"}
    assert rates[0].shown(rates[0].after) == "4%"
    assert not [r for r in c.regressions if r.kind == "pair"]


def test_baseline_pairs_in_one_run_only_are_not_compared() -> None:
    c = baseline.compare(make_doc(n=4), make_doc(n=3), 20.0)
    assert not c.regressions and c.not_compared > 0


def test_baseline_file_must_be_a_results_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_doc()))
    assert baseline.load(good)["schema"] == SCHEMA
    for name, text, words in [("a.json", "{not json", "not JSON"),
                              ("b.json", '{"x": 1}', "not a pytest-k8snet results file"),
                              ("c.json", json.dumps({"schema": SCHEMA, "version": 99}),
                               "newer than")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(baseline.BaselineError, match=words):
            baseline.load(tmp_path / name)
        with pytest.raises(pytest.UsageError, match=words):
            baseline.check_option(str(tmp_path / name))


# -- terminal -------------------------------------------------------------------------------------

class FakeTerminal:
    def __init__(self) -> None:
        self.text = ""

    def section(self, title: str, sep: str = "=", **markup: bool) -> None:
        self.text += f"== {title} ==\n"

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None:
        self.text += content

    def write_line(self, line: str | bytes, **markup: bool) -> None:
        self.text += f"{line!s}\n"

    def line(self, msg: str, **kw: bool) -> None:
        self.text += msg + "\n"


def test_terminal_summary_matrices_diagnoses_and_baseline() -> None:
    after = make_doc(cut="node-2")
    report = RunReport(after, baseline.compare(make_doc(), after, 20.0, "base.json"))
    tr = FakeTerminal()
    terminal.write(tr, report, baseline_given=True)
    out = tr.text
    assert "== k8snet cluster summary ==" in out
    assert "  node-1       -   100%   1450" in out          # the pod matrix
    assert "  node-3    0.05   0.05      -" in out          # the host matrix
    assert "pod network: 6 pairs probed, 4 failing" in out
    assert "Overlay port blocked: 4 pairs involving node-2" in out
    assert re.search(r"pair now failing\s+node-1->node-2 \(pod\)\s+0% loss, rtt 0.1 ms\s+"
                     r"100% loss", out)
    assert "pairs that regressed: node-1->node-2, node-2->node-1, node-2->node-3, " \
           "node-3->node-2" in out
    assert out.rstrip().endswith("k8snet: run FAILED: 12 regressions against the baseline "
                                 "base.json")


def test_terminal_big_cluster_lists_failing_pairs_instead_of_a_matrix() -> None:
    tr = FakeTerminal()
    terminal.write(tr, RunReport(make_doc(n=14, cut="node-7")))
    assert "pod network: 182 pairs probed, 26 failing" in tr.text
    assert "  node-1->node-7: ping: 100% lost" in tr.text
    assert "... 6 more" in tr.text
    assert not [line for line in tr.text.splitlines() if re.match(r"\s+node-1\s+node-2", line)]


def test_terminal_says_nothing_without_cluster_data() -> None:
    tr = FakeTerminal()
    empty = {k: ([] if isinstance(v, list) else v) for k, v in make_doc().items()}
    terminal.write(tr, RunReport(empty))
    assert tr.text == ""


# -- HTML -----------------------------------------------------------------------------------------

class Cells(HTMLParser):
    """Collects matrix cells and checks that the markup nests properly."""

    VOID = {"input", "br", "img", "meta", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.cells: list[dict[str, str]] = []
        self.matrices: list[dict[str, str]] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "td" and "k8s-cell" in a.get("class", ""):
            self.cells.append(a)
        if tag == "table" and "k8s-matrix" in a.get("class", ""):
            self.matrices.append(a)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def parse(markup: str) -> Cells:
    p = Cells()
    p.feed(markup)
    p.close()
    assert p.stack == []
    assert len(p.ids) == len(set(p.ids)), "duplicate ids"
    return p


def test_html_section_small_cluster() -> None:
    after = make_doc(cut="node-2")
    markup = html.render(RunReport(after, baseline.compare(make_doc(), after, 20.0, "b.json")))
    p = parse(markup)
    pod = [c for c in p.cells if c.get("data-network") == "pod" and "data-pair" in c]
    # this run's pod matrix and the baseline's and this run's side by side
    assert len(pod) == 18
    now = pod[:6]
    assert {c["data-pair"] for c in now if c["data-status"] == "fail"} == NODE2_PAIRS
    tip = next(c["data-tip"] for c in now if c["data-pair"] == "node-1->node-2")
    assert tip.startswith("node-1 → node-2 (pod network): FAIL\nDiagnosis, Overlay port blocked")
    # Each measurement carries its test's verdict: the path MTU test skips on a pair without
    # pod connectivity (the ping test owns it), the UDP test fails on the blocked overlay.
    assert "\n– path MTU: 0 bytes (expected 1450)" in tip
    assert "\n✗ UDP 8472: 0 Mbit/s, 100% lost (unable to connect)" in tip
    assert "Overlay port blocked: 4 pairs involving node-2" in markup
    assert "run FAILED: 12 regressions" in markup and 'id="k8s-regressions"' in markup
    assert not [m for m in p.matrices if "k8s-compact" in m.get("class", "")]
    assert "<script>" in markup and "k8s-float-tip" in markup


def test_html_matrix_stays_compact_at_32_nodes() -> None:
    markup = html.render(RunReport(make_doc(n=32, cut="node-16", small_mtu="node-3")))
    p = parse(markup)
    assert [m["data-nodes"] for m in p.matrices] == ["32", "32"]
    assert all("k8s-compact" in m["class"] for m in p.matrices)
    pod = [c for c in p.cells if c.get("data-network") == "pod" and "data-pair" in c]
    assert len(pod) == 32 * 31
    assert sum(c["data-status"] == "fail" for c in pod) == 2 * 31 + 2 * 30
    assert 'id="k8s-m-rtt" checked' in markup  # one metric per cell by default
    assert len(markup) < 3_000_000
    # long tables show their failing rows first and fold the rest
    assert markup.count('<details class="k8s-more">') >= 2


def test_html_extras_for_a_failed_pair_test() -> None:
    diag = json.dumps({"cause": "mtu", "nodes": [], "pairs": ["a->b"], "message": "a->b: small"})
    extras = html.extras_for({"src": "a", "dst": "b", "network": "pod", "path_mtu": 1400,
                              "k8snet_diagnosis": diag}, ["raw <ping> output"], failed=True)
    assert [x["format_type"] for x in extras] == ["html", "text"]
    assert "path MTU 1400 bytes" in str(extras[0]["content"])
    assert "cause: mtu" in str(extras[0]["content"])
    assert "small" not in str(extras[0]["content"])  # the message: pytest-html's log has it
    assert "raw" not in str(extras[0]["content"])  # the log and the text extra have it
    assert extras[1]["content"] == "raw <ping> output" and extras[1]["name"] == "probe output"


# -- JUnit properties -----------------------------------------------------------------------------

def test_junit_properties_completed_from_the_document() -> None:
    doc = {"ping": [{"src": "a", "dst": "b", "network": "pod", "loss_pct": 0.0, "rtt_ms": 0.2},
                    {"src": "a", "dst": "b", "network": "host", "loss_pct": 9.0, "rtt_ms": 0.1}],
           "path_mtu": [{"src": "a", "dst": "b", "network": "pod", "bytes": 1450}]}
    props: list[tuple[str, object]] = [("src", "a"), ("dst", "b"), ("network", "pod"),
                                       ("path_mtu", 1450)]
    assert junit.completed(props, doc) == [("rtt_ms", 0.2), ("loss_pct", 0.0)]
    assert junit.completed([("src", "a"), ("dst", "b"), ("network", "pod"), ("rtt_ms", 1.0),
                            ("loss_pct", 0.0)], doc) == [("path_mtu", 1450)]
    assert junit.completed([("src", "a"), ("dst", "b"), ("network", "host")], doc) == [
        ("rtt_ms", 0.1), ("loss_pct", 9.0)]
    assert junit.completed([("src", "a"), ("dst", "service"), ("network", "pod")], doc) == []
    assert junit.completed([("src", "b"), ("dst", "a"), ("network", "pod")], doc) == []


FAKE_SUITE = '''
import pytest
from pytest_k8snet import Diagnosis
from pytest_k8snet.report.junit import record
from pytest_k8snet.suite.test_network import fail

PAIRS = [("node-1", "node-2"), ("node-2", "node-1"), ("node-1", "node-3")]

@pytest.mark.parametrize("src, dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_pair(request, src, dst):
    broken = "node-2" in (src, dst)
    record(request, src=src, dst=dst, network="pod", rtt_ms=None if broken else 0.25,
           loss_pct=100.0 if broken else 0.0, path_mtu=1450, throughput_mbps=9.5)
    if broken:
        fail(request, Diagnosis("vxlan-blocked", f"{src}->{dst}: blocked", ("node-2",),
                                (f"{src}->{dst}",)), raw="ping: 0/3")
'''


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_junit_properties_and_cause(pytester: pytest.Pytester, xdist: bool) -> None:
    pytester.makepyfile(test_fake=FAKE_SUITE)
    xml = pytester.path / "junit.xml"
    args = ["-p", "no:cacheprovider", "--junitxml", str(xml)] + (["-n", "2"] if xdist else [])
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == 1, result.stdout.str()
    cases = {str(tc.get("name")): tc for tc in ET.parse(xml).iter("testcase")}
    assert set(cases) == {"test_pair[node-1->node-2]", "test_pair[node-2->node-1]",
                          "test_pair[node-1->node-3]"}
    for name, tc in cases.items():
        props = {str(p.get("name")): str(p.get("value")) for p in tc.iter("property")}
        assert {"src", "dst", "network", "loss_pct", "path_mtu", "throughput_mbps"} <= set(props)
        if "node-2" in name:
            assert tc.find("failure") is not None
            assert props["cause"] == "vxlan-blocked" and props["loss_pct"] == "100.0"
            assert "rtt_ms" not in props
            assert json.loads(props["k8snet_diagnosis"])["pairs"] == [name[10:-1]]
        else:
            assert tc.find("failure") is None and "cause" not in props
            assert props["rtt_ms"] == "0.25" and props["path_mtu"] == "1450"


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_the_summary_says_where_the_results_file_went(pytester: pytest.Pytester,
                                                      xdist: bool) -> None:
    """One line, from the controller, naming the file by its absolute path; none without
    --k8s-results."""
    pytester.makepyfile(test_fake=FAKE_SUITE)
    (pytester.path / "out").mkdir()
    args = ["-p", "no:cacheprovider", "--k8s-results", "out/r.json", *(["-n", "2"] if xdist
                                                                       else [])]
    result = pytester.runpytest_subprocess(*args)
    path = (pytester.path / "out" / "r.json").resolve()
    lines = [line for line in result.outlines if "results written" in line]
    assert lines == [f"k8snet: results written to {path}"], result.stdout.str()
    assert json.loads(path.read_text())["schema"] == SCHEMA
    quiet = pytester.runpytest_subprocess(*args[:2])
    assert "results written" not in quiet.stdout.str()


def test_unusable_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    (pytester.path / "old.json").write_text('{"schema": "something else"}')
    result = pytester.runpytest("--k8s-baseline", "old.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*not a pytest-k8snet results file*"])


def test_no_cluster_no_report_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--html", "r.html",
                                "--k8s-results", "r.json")
    assert result.ret == 0
    assert "k8snet cluster summary" not in result.stdout.str()
    assert 'id="k8snet"' not in (pytester.path / "r.html").read_text()
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["schema"] == SCHEMA and doc["ping"] == [] and doc["baseline"] is None
    assert doc["tests"] == {"test_no_cluster_no_report_section.py::test_plain": "passed"}


def test_egress_table_names_resolution_not_source_ports() -> None:
    """Attempts that never resolved the name say so: their source ports point at nothing
    (a firewall on low ports would be the wrong fix)."""
    resolved = make_doc(egress_rate=1.0, judged=False)
    for e in resolved["egress"]:
        e.update(failed_ports=[32912, 60608], errors=["Resolving timed out after 2000 ms"])
    text = html_tables.egress_table(ClusterView(judged_doc(resolved)))
    assert "every attempt failed resolving the name" in text
    assert "failed source ports" not in text
    for e in resolved["egress"]:
        e.update(errors=["Connection timed out after 2000 ms"])
    text = html_tables.egress_table(ClusterView(judged_doc(resolved)))
    assert "failed source ports 32912-60608" in text


def test_knock_ons_sit_inside_their_roots_box() -> None:
    """vxlan-blocked on node-2 of the lab's real cluster, both CoreDNS replicas on node-1:
    DNS, egress and the Service fail only because of the overlay. The HTML shows one box
    with them inside it, and both reports count one cause and its knock-ons."""
    from tests.test_diagnose import load

    doc = judged_doc(load("kube-vxlan-blocked-dns-on-node-1"))
    doc["diagnoses"] = [{"cause": "", "finding": v["finding"], "message": v["message"],
                         "test": f"{v['test']}[{v['subject']}]"}
                        for v in doc["verdicts"] if v["outcome"] == "failed"]
    view = ClusterView(doc)
    (group,) = view.groups
    assert group.cause == "vxlan-blocked"
    assert {"dns-knock-on:node-2", "egress-knock-on:node-2"} <= {
        str(k["id"]) for k in group.knock_ons}
    text = html.diagnoses(view)
    assert text.count('class="k8s-diag"') == 1, text
    assert f"{len(group.knock_ons)} knock-ons, fixed with it" in text
    assert causes_count(view.groups) == f"1 cause, {len(group.knock_ons)} knock-ons"
    assert "Diagnoses: 1 cause, " in text
