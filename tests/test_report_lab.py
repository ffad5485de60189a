"""The reports end to end on a lab: a healthy baseline, ICMP loss into node-2's host
network, then VXLAN blocked on node-2.

Six suite runs on one 3-node lab (about a minute in all): a healthy run records the
baseline; a second healthy run compares itself with it (no regressions); a run of the
path MTU tests against a better baseline fails on regressions alone; with every 7th small
ICMP packet into node-2's host network dropped, runs with ``--k8s-loss-threshold`` 50 and 1
must show in every report exactly the pairs the tests failed on (the loss is shown, and
fails nothing under 50); with ``vxlan-blocked`` on node-2 a run under xdist (``-n 2``)
must fail on exactly the pairs involving node-2, in the terminal, the results file, JUnit
XML and the HTML report, which headless Chromium then renders.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults

from .conftest import needs_root, sh

pytestmark = needs_root

NODE2_PAIRS = {"node-1->node-2", "node-2->node-1", "node-2->node-3", "node-3->node-2"}
PASS_RGB = (200, 230, 201)  # k8snet.css --k8s-pass
FAIL_RGB = (229, 57, 53)    # k8snet.css --k8s-fail


@dataclass
class Run:
    code: int
    out: str
    dir: Path

    def results(self) -> dict[str, Any]:
        return dict(json.loads((self.dir / "results.json").read_text()))

    def junit_cases(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Test case name -> (outcome, properties) from the JUnit XML."""
        cases = {}
        for tc in ET.parse(self.dir / "junit.xml").iter("testcase"):
            props = {str(p.get("name")): str(p.get("value")) for p in tc.iter("property")}
            outcome = ("failed" if tc.find("failure") is not None else
                       "skipped" if tc.find("skipped") is not None else "passed")
            cases[str(tc.get("name"))] = (outcome, props)
        return cases


@dataclass
class Runs:
    healthy: Run
    again: Run
    regressed_only: Run
    lossy: dict[float, Run]  # --k8s-loss-threshold -> the run with ICMP loss into node-2
    fault: Run


# Every 7th small ICMP packet into node-2's host network is dropped (about 15%, and
# deterministic: of any 7 host pings into node-2, one is lost, so some pair always shows
# loss). Large packets pass, so the host path MTU search is not disturbed. Pod traffic
# crosses node-2 encapsulated (UDP) or forwarded, never as ICMP into its INPUT chain.
ICMP_LOSS = ["INPUT", "-p", "icmp", "-m", "length", "--length", "0:200", "-m", "statistic",
             "--mode", "nth", "--every", "7", "--packet", "0", "-j", "DROP"]
THRESHOLDS = (50.0, 1.0)


# test_egress is left out: in the lab its pod egress from one node sometimes loses 10-25%
# of connections (seen with another lab running on the machine); a flaky failure rate
# would be a baseline regression too. The comparison of failure rates is still covered
# here by the Service's, and by tests/test_report_render.py.
NOT_EGRESS = ("-k", "not test_egress")


def suite(lab: str, out: Path, *extra: str) -> Run:
    out.mkdir(parents=True)
    if "-k" not in extra:
        extra = (*extra, *NOT_EGRESS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
         "--k8s-lab-name", lab, "-p", "no:cacheprovider", "-q",
         "--k8s-results", str(out / "results.json"),
         "--junitxml", str(out / "junit.xml"), "--html", str(out / "report.html"),
         "--self-contained-html", *extra],
        capture_output=True, text=True, timeout=300, cwd=out)
    return Run(proc.returncode, proc.stdout + proc.stderr, out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    name = f"h{os.getpid()}"
    base = tmp_path_factory.mktemp("runs")
    lab = labmod.up(labmod.LabSpec(name=name))
    try:
        healthy = suite(name, base / "healthy")
        again = suite(name, base / "again", "--k8s-baseline",
                      str(base / "healthy" / "results.json"))
        # A baseline whose path MTUs were 10 bytes bigger: every test passes, the run fails.
        better = healthy.results()
        for e in better["path_mtu"]:
            e["bytes"] += 10
        (base / "better.json").write_text(json.dumps(better))
        regressed_only = suite(name, base / "regressed-only", "--k8s-baseline",
                               str(base / "better.json"), "-k", "test_path_mtu")
        lossy = {}
        rule = sh(lab, "node-2", "iptables", "-I", *ICMP_LOSS)
        assert rule.returncode == 0, rule.stderr
        try:
            for threshold in THRESHOLDS:
                lossy[threshold] = suite(name, base / f"lossy-{threshold:g}",
                                         "--k8s-loss-threshold", f"{threshold:g}")
        finally:
            sh(lab, "node-2", "iptables", "-D", *ICMP_LOSS)
        faults.add(lab, "vxlan-blocked", ["node-2"])
        lab.save()  # as `k8snet-lab fault add` does: the run's cluster identity lists it
        fault = suite(name, base / "fault", "-n", "2", "--k8s-baseline",
                      str(base / "healthy" / "results.json"))
    finally:
        labmod.down(name)
    return Runs(healthy, again, regressed_only, lossy, fault)


# -- baseline ---------------------------------------------------------------------------------

def test_baseline_run_fails_naming_exactly_the_regressed_pairs(runs: Runs) -> None:
    assert runs.healthy.code == 0, runs.healthy.out
    assert runs.again.code == 0, runs.again.out
    assert "0 regressions" in runs.again.out and "run FAILED" not in runs.again.out
    assert runs.again.results()["baseline"]["regressions"] == []

    out = runs.fault.out
    assert runs.fault.code == 1, out
    doc = runs.fault.results()
    regressions = doc["baseline"]["regressions"]
    pairs = {f"{r['src']}->{r['dst']}" for r in regressions if r["src"]}
    assert pairs == NODE2_PAIRS, regressions
    by_kind = {k: {f"{r['src']}->{r['dst']}" for r in regressions if r["kind"] == k}
               for k in ("pair", "path_mtu", "throughput")}
    assert by_kind == {"pair": NODE2_PAIRS, "path_mtu": NODE2_PAIRS, "throughput": NODE2_PAIRS}
    # Terminal: before and after side by side, the pairs, and why the run fails.
    assert re.search(r"pair now failing\s+node-1->node-2 \(pod\)\s+0% loss, rtt [\d.]+ ms\s+"
                     r"100% loss", out), out
    listed = re.search(r"pairs that regressed: (.*)", out)
    assert listed and set(listed.group(1).split(", ")) == NODE2_PAIRS, out
    assert re.search(rf"k8snet: run FAILED: {len(regressions)} regressions against the "
                     r"baseline .*healthy/results.json", out), out


def test_a_run_that_only_regresses_still_fails(runs: Runs) -> None:
    run = runs.regressed_only
    assert run.code == 1, run.out
    assert re.search(r"^6 passed, \d+ deselected in ", run.out, re.M), run.out
    assert "k8snet: run FAILED: 6 regressions against the baseline" in run.out
    assert re.search(r"path MTU shrank\s+node-1->node-2 \(pod\)\s+1460 bytes\s+1450 bytes",
                     run.out), run.out
    page = (run.dir / "report.html").read_text()
    assert 'id="k8s-run-fails"' in page and page.count('data-kind="path_mtu"') == 6


# -- results file -----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["healthy", "fault"], ids=["plain", "xdist"])
def test_results_file_schema(runs: Runs, which: str) -> None:
    run: Run = getattr(runs, which)
    doc = run.results()
    assert doc["schema"] == "pytest-k8snet/results" and doc["version"] == 1
    assert doc["plugin_version"] and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", doc["time"])
    assert doc["cluster"]["kind"] == "lab" and doc["cluster"]["name"].startswith("h")
    assert doc["cluster"]["nodes"] == 3  # the backend's identity, from a worker under xdist
    assert doc["options"]["pairs"] == "all" and doc["options"]["results"]
    assert doc["nodes"] == ["node-1", "node-2", "node-3"] and doc["expected_mtu"] == 1450
    fixed = {"ping": {"src", "dst", "network", "loss_pct", "rtt_ms"},
             "path_mtu": {"src", "dst", "network", "bytes"},
             "throughput": {"src", "dst", "mbps", "loss_pct"},
             "diagnoses": {"cause", "nodes", "pairs", "message"}}
    for section, fields in fixed.items():
        assert all(fields <= set(e) for e in doc[section]), section
    assert {(e["network"]) for e in doc["ping"]} == {"pod", "host"} and len(doc["ping"]) == 12
    assert len(doc["path_mtu"]) == 6 and len(doc["throughput"]) == 6
    assert doc["dns"] and doc["node_checks"] and doc["service"]
    assert len(doc["tests"]) >= 42
    if which == "healthy":
        assert doc["diagnoses"] == [] and {e["bytes"] for e in doc["path_mtu"]} == {1450}
        assert doc["cluster"]["faults"] == []
    else:
        assert doc["cluster"]["faults"] == [{"name": "vxlan-blocked", "node": "node-2",
                                             "value": None}]
        assert {d["cause"] for d in doc["diagnoses"]} >= {"vxlan-blocked"}
        failing = {f"{e['src']}->{e['dst']}" for e in doc["ping"]
                   if e["network"] == "pod" and e["loss_pct"] > 0}
        assert failing == NODE2_PAIRS


# -- JUnit ------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["healthy", "fault"], ids=["plain", "xdist"])
def test_junit_properties(runs: Runs, which: str) -> None:
    run: Run = getattr(runs, which)
    cases = run.junit_cases()
    assert len(cases) >= 42

    def pair_cases(test: str) -> dict[str, tuple[str, dict[str, str]]]:
        return {k[len(test) + 1:-1]: v for k, v in cases.items() if k.startswith(test + "[")}

    pings, pmtus, udps = (pair_cases(t) for t in ("test_pod_ping", "test_path_mtu",
                                                  "test_udp_8472"))
    assert len(pings) == len(pmtus) == len(udps) == 6
    doc = run.results()

    def entry(section: str, pid: str) -> dict[str, Any]:
        src, dst = pid.split("->")
        (e,) = [e for e in doc[section] if (e["src"], e["dst"], e.get("network", "pod"))
                == (src, dst, "pod")]
        return dict(e)

    # The properties are the results document's numbers (one source), in every worker.
    for pid, (outcome, props) in pings.items():
        src, dst = pid.split("->")
        assert (props["src"], props["dst"], props["network"]) == (src, dst, "pod")
        assert float(props["loss_pct"]) == entry("ping", pid)["loss_pct"]
        if outcome == "passed":
            assert float(props["rtt_ms"]) > 0 and "cause" not in props
    for pid, (outcome, props) in pmtus.items():
        assert props["path_mtu"] == str(entry("path_mtu", pid)["bytes"])
        if outcome == "passed":
            assert props["path_mtu"] == "1450" and float(props["rtt_ms"]) > 0
    for pid, (outcome, props) in udps.items():
        udp = entry("throughput", pid)
        assert float(props["throughput_mbps"]) == round(float(udp["mbps"] or 0), 2)
        assert float(props["loss_pct"]) == udp["loss_pct"]
        # Completed from the document, not from what this process measured before.
        assert props["path_mtu"] == str(entry("path_mtu", pid)["bytes"])
        if outcome == "passed":
            assert props["path_mtu"] == "1450" and float(props["rtt_ms"]) > 0
    if which == "healthy":
        assert {o for o, _ in cases.values()} == {"passed"}
        assert all(float(p["throughput_mbps"]) > 5 for _, p in udps.values())
        return
    failed = {pid for pid, (o, _) in pings.items() if o == "failed"}
    assert failed == NODE2_PAIRS
    for pid in NODE2_PAIRS:
        assert pings[pid][1]["cause"] == udps[pid][1]["cause"] == "vxlan-blocked"
        assert pings[pid][1]["loss_pct"] == "100.0" and udps[pid][0] == "failed"
    assert all("cause" in p for o, p in cases.values() if o == "failed")


# -- one threshold for the tests and every report ---------------------------------------------

PAIR_TESTS = ("test_pod_ping", "test_path_mtu", "test_udp_8472", "test_large_packets")
CELL = re.compile(r'data-pair="([^"]+)" data-network="(\w+)" data-status="(\w+)"')


def failing_in_terminal(out: str, network: str) -> int:
    found = re.search(rf"^{network} network: 6 pairs probed, (\d+) failing$", out, re.M)
    assert found, out
    return int(found.group(1))


@pytest.mark.parametrize("threshold", THRESHOLDS, ids=["threshold-50", "threshold-1"])
def test_reports_fail_exactly_the_pairs_the_tests_failed(runs: Runs, threshold: float) -> None:
    """The old bug: 15% ICMP loss into node-2's host network with --k8s-loss-threshold 50
    gave ``48 passed`` while the summary said ``host network: 6 pairs probed, 1 failing``
    and colored pairs red in the HTML. Whatever fails, every report names exactly that."""
    run = runs.lossy[threshold]
    doc = run.results()
    assert doc["thresholds"] == {"loss_pct": threshold}
    host_loss = {f"{e['src']}->{e['dst']}": e["loss_pct"] for e in doc["ping"]
                 if e["network"] == "host"}
    assert any(loss > 0 for pid, loss in host_loss.items() if "node-2" in pid), host_loss
    cases = run.junit_cases()
    # The tests: JUnit and the results file agree on every outcome.
    by_name = {nodeid.split("::", 1)[1]: outcome for nodeid, outcome in doc["tests"].items()}
    assert {name: o for name, (o, _) in cases.items()} == by_name
    failed_pairs = {name.split("[", 1)[1][:-1] for name, (o, _) in cases.items()
                    if o == "failed" and name.split("[", 1)[0] in PAIR_TESTS}
    judged = {v["subject"] for v in doc["verdicts"]
              if v["outcome"] == "failed" and v["test"] in PAIR_TESTS}
    assert judged == failed_pairs
    assert run.code == (1 if "failed" in by_name.values() else 0), run.out
    # The terminal, and the HTML matrices: the pod pairs that failed, no host pair (no test
    # fails on node-to-node loss alone), whatever the host pings lost.
    assert failing_in_terminal(run.out, "pod") == len(failed_pairs)
    assert failing_in_terminal(run.out, "host") == 0
    page = (run.dir / "report.html").read_text()
    cells = [(html.unescape(p), n, st) for p, n, st in CELL.findall(page)]
    assert len(cells) == 12
    assert {p for p, n, st in cells if n == "pod" and st == "fail"} == failed_pairs
    assert {st for p, n, st in cells if n == "host"} == {"pass"}
    assert {p for p, n, st in cells if n == "pod" and st == "pass"} == {
        p for p, n, _ in cells if n == "pod"} - failed_pairs
    if threshold == 50.0:
        assert failed_pairs == set() and run.code == 0, run.out
        assert set(by_name.values()) <= {"passed", "skipped"}
        assert 'data-status="fail"' not in page


# -- HTML in Chromium -------------------------------------------------------------------------

def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browse(tmp_path: Path, url: str, *args: str) -> str:
    exe = chromium()
    assert exe is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={profile}", "--window-size=1400,2400", "--virtual-time-budget=3000",
         *args, url], capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# Injected after the report's own scripts: what the browser computed, as JSON in the DOM.
PROBE = """<script>
window.addEventListener('load', function () {
  var cells = Array.from(document.querySelectorAll('#k8s-matrix-pod td.k8s-cell[data-pair]'));
  var out = {cells: cells.map(function (c) {
      var r = c.getBoundingClientRect();
      return {pair: c.dataset.pair, status: c.dataset.status, text: c.innerText,
              bg: getComputedStyle(c).backgroundColor, tip: c.dataset.tip,
              x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height};
    }),
    headlines: Array.from(document.querySelectorAll('.k8s-diag-head')).map(function (e) {
      return e.innerText; }),
    banner: (document.getElementById('k8s-run-fails') || {}).innerText || null,
    regressions: document.querySelectorAll('#k8s-regressions tbody tr').length,
    results_rows: document.querySelectorAll('#results-table tbody.results-table-row').length};
  if (HOVER) {
    var cell = document.querySelector('#k8s-matrix-pod td.k8s-cell[data-pair="node-1->node-2"]');
    cell.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    var tip = document.getElementById('k8s-float-tip');
    out.tooltip = {text: tip.innerText, visible: !tip.hidden && tip.offsetWidth > 0};
  }
  var pre = document.createElement('pre');
  pre.id = 'k8s-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""

PIXELS = """<!doctype html><html><body><pre id="px">pending</pre><script>
var img = new Image();
img.onload = function () {
  var c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
  var g = c.getContext('2d'); g.drawImage(img, 0, 0);
  document.getElementById('px').textContent = JSON.stringify({w: img.width, h: img.height,
    px: POINTS.map(function (p) { return Array.from(g.getImageData(p[0], p[1], 1, 1).data); })});
};
img.src = 'data:image/png;base64,PNG';
</script></body></html>"""


def probe(tmp_path: Path, report: Path, hover: bool) -> dict[str, Any]:
    page = tmp_path / ("hover.html" if hover else "probe.html")
    page.write_text(report.read_text().replace(
        "</body>", PROBE.replace("HOVER", "true" if hover else "false") + "</body>"))
    dom = browse(tmp_path, page.as_uri(), "--dump-dom")
    found = re.search(r'<pre id="k8s-probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-3000:]
    return dict(json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">")
                           .replace("&quot;", '"').replace("&amp;", "&")))


def pixels(tmp_path: Path, png: Path, points: list[tuple[int, int]]) -> dict[str, Any]:
    page = tmp_path / "pixels.html"
    page.write_text(PIXELS.replace("POINTS", json.dumps(points))
                    .replace("PNG", base64.b64encode(png.read_bytes()).decode()))
    dom = browse(tmp_path, page.as_uri(), "--dump-dom")
    found = re.search(r'<pre id="px">(.*?)</pre>', dom, re.S)
    assert found and found.group(1) != "pending", dom[-2000:]
    return dict(json.loads(found.group(1)))


def rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed "
                    "(apt-get install -y chromium)")
def test_html_report_in_chromium(runs: Runs, tmp_path: Path) -> None:
    report = runs.fault.dir / "report.html"
    seen = probe(tmp_path, report, hover=False)
    cells = {c["pair"]: c for c in seen["cells"]}
    assert set(cells) == NODE2_PAIRS | {"node-1->node-3", "node-3->node-1"}
    for pair, c in cells.items():
        broken = pair in NODE2_PAIRS
        assert c["status"] == ("fail" if broken else "pass"), c
        assert rgb(c["bg"]) == (FAIL_RGB if broken else PASS_RGB), c
        assert ("100% loss" in c["text"]) is broken and ("MTU 1450" in c["text"]) is not broken
    tip = cells["node-1->node-2"]["tip"]
    assert "Diagnosis, Overlay port blocked: " in tip and "UDP 8472" in tip
    assert "Overlay port blocked: 4 pairs involving node-2" in " ".join(seen["headlines"])
    assert seen["banner"] and "run FAILED" in seen["banner"]
    assert seen["regressions"] == len(runs.fault.results()["baseline"]["regressions"])
    assert seen["results_rows"] >= 42  # pytest-html's own table still renders

    # The screenshot shows those colors where the cells are.
    shot = tmp_path / "report.png"
    browse(tmp_path, (tmp_path / "probe.html").as_uri(), f"--screenshot={shot}")
    picks = [cells["node-2->node-1"], cells["node-3->node-1"]]
    got = pixels(tmp_path, shot, [(int(c["x"]) + 3, int(c["y"]) + 3) for c in picks])
    assert (got["w"], got["h"]) == (1400, 2400)
    assert [tuple(p[:3]) for p in got["px"]] == [FAIL_RGB, PASS_RGB]

    # Hovering a failing cell shows its diagnosis.
    hovered = probe(tmp_path, report, hover=True)
    assert hovered["tooltip"]["visible"]
    assert hovered["tooltip"]["text"].startswith("node-1 → node-2 (pod network): FAIL")
    assert "Overlay port blocked" in hovered["tooltip"]["text"]
    browse(tmp_path, (tmp_path / "hover.html").as_uri(), f"--screenshot={tmp_path / 'hover.png'}")
    assert (tmp_path / "hover.png").stat().st_size > 10_000


def test_html_report_without_xdist_has_the_cluster_section(runs: Runs) -> None:
    """The healthy runs (no xdist) render the section from in-process measurements."""
    page = (runs.again.dir / "report.html").read_text()
    assert page.count('data-status="pass"') >= 12 and 'data-status="fail"' not in page
    assert "No regressions against the baseline." in page
    assert 'id="k8s-matrix-host"' in page


def test_html_report_says_each_failure_message_once(runs: Runs) -> None:
    """pytest-html shows a failed test's message as its log: the k8snet extra under it must
    not say it again."""
    page = (runs.fault.dir / "report.html").read_text()
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, "no pytest-html data in the report"
    rows = {row["testId"]: row for entries in json.loads(html.unescape(blob.group(1)))
            ["tests"].values() for row in entries}
    messages = {d["test"]: d["message"] for d in runs.fault.results()["diagnoses"]}
    assert len(messages) >= 4, runs.fault.out  # the pairs of node-2, at least
    for test, message in messages.items():
        row = rows[test]
        shown = row["log"] + "".join(str(x["content"]) for x in row["extras"]
                                     if x["format_type"] == "html")
        assert html.unescape(shown).count(message) == 1, (test, shown)


@pytest.mark.parametrize("which", ["healthy", "fault"])  # fault: under xdist (-n 2)
def test_terminal_says_where_the_results_file_went(runs: Runs, which: str) -> None:
    run = getattr(runs, which)
    said = [line for line in run.out.splitlines() if "results written" in line]
    assert said == [f"k8snet: results written to {(run.dir / 'results.json').resolve()}"], \
        run.out
