"""Findings on a real lab: the same text whatever the order, selection or worker; evidence
in the results JSON, the JUnit XML and the HTML report (checked in headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults

from .conftest import needs_root

pytestmark = needs_root

REVERSE = '''
def pytest_collection_modifyitems(session, config, items):
    items.reverse()
'''


@pytest.fixture(scope="module")
def vxlan_lab() -> Iterator[labmod.Lab]:
    name = f"j{os.getpid()}"
    built = labmod.up(labmod.LabSpec(name=name))
    faults.add(built, "vxlan-blocked", ["node-2"])
    yield built
    labmod.down(name)


def run(lab: labmod.Lab, out: Path, *extra: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "reverse_order.py").write_text(REVERSE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(out), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite", "--k8s-lab-name",
         lab.name, "--k8s-results", str(out / "results.json"), "--junitxml",
         str(out / "junit.xml"), "-p", "no:cacheprovider", "-q", *extra],
        capture_output=True, text=True, timeout=600, cwd=out, env=env)
    doc = dict(json.loads((out / "results.json").read_text()))
    doc["_stdout"] = proc.stdout + proc.stderr
    return doc


def failure_texts(doc: dict[str, Any]) -> dict[str, str]:
    """Failed test (name[subject]) -> the message the engineer reads."""
    return {d["test"].split("::")[-1]: d["message"] for d in doc["diagnoses"]}


@pytest.fixture(scope="module")
def plain(vxlan_lab: labmod.Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    extra = ["--html", str(tmp_path_factory.getbasetemp() / "plain" / "report.html"),
             "--self-contained-html"]
    return run(vxlan_lab, tmp_path_factory.getbasetemp() / "plain", *extra)


def test_vxlan_findings_and_evidence_in_results(plain: dict[str, Any]) -> None:
    texts = failure_texts(plain)
    assert set(texts) == {f"{t}[{p}]" for t in ("test_pod_ping", "test_udp_8472")
                          for p in ("node-1->node-2", "node-2->node-1", "node-2->node-3",
                                    "node-3->node-2")}, plain["_stdout"]
    (finding,) = [f for f in plain["findings"] if f["cause"] == "vxlan-blocked"]
    assert finding["nodes"] == ["node-2"] and len(finding["pairs"]) == 4
    assert finding["evidence_nodes"] == ["node-2"]
    firewall = {i["name"]: i for i in plain["evidence"]["node-2"]}["firewall"]["output"]
    assert "k8snet-fault:vxlan-blocked" in firewall


def test_junit_points_at_the_evidence(plain: dict[str, Any],
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    xml = tmp_path_factory.getbasetemp() / "plain" / "junit.xml"
    for tc in ET.parse(xml).iter("testcase"):
        props = {str(p.get("name")): str(p.get("value")) for p in tc.iter("property")}
        if tc.find("failure") is not None:
            assert props["k8snet_finding"] == "vxlan-blocked:node-2"
            assert "evidence.node-2" in props["k8snet_evidence"]


@pytest.mark.parametrize("how", ["reversed", "-k", "xdist"])
def test_same_finding_text_in_any_order_selection_or_worker(
        vxlan_lab: labmod.Lab, plain: dict[str, Any], tmp_path: Path, how: str) -> None:
    extra = {"reversed": ["-p", "reverse_order"], "-k": ["-k", "test_udp_8472"],
             "xdist": ["-n", "2"]}[how]
    other = failure_texts(run(vxlan_lab, tmp_path / how, *extra))
    base = failure_texts(plain)
    assert other, how
    for test, text in other.items():
        assert text == base[test], (how, test)
    if how != "-k":
        assert set(other) == set(base)


def test_html_report_shows_the_evidence_in_chromium(
        plain: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(n)), None)
    if exe is None:
        pytest.skip("headless Chromium is not installed")
    report = tmp_path_factory.getbasetemp() / "plain" / "report.html"
    page = report.with_name("opened.html")
    # Open every collapsed evidence block, then say what the browser shows.
    page.write_text(report.read_text().replace("</body>", """<script>
window.addEventListener('load', function () {
  document.querySelectorAll('details.k8s-evidence, details.k8s-evidence-cmd').forEach(
    function (d) { d.open = true; });
  var ev = document.querySelector('details.k8s-evidence');
  var pre = document.createElement('pre'); pre.id = 'k8s-probe';
  pre.textContent = JSON.stringify({finding: ev && ev.dataset.finding,
    visible: !!ev && ev.offsetHeight > 0, text: ev ? ev.innerText : ''});
  document.body.appendChild(pre);
});
</script></body>"""))
    profile = page.parent / "profile"
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    found = re.search(r'<pre id="k8s-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stderr[-2000:]
    seen = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&quot;", '"').replace("&amp;", "&"))
    assert seen["finding"] == "vxlan-blocked:node-2" and seen["visible"]
    assert "k8snet-fault:vxlan-blocked" in seen["text"] and "would contradict" in seen["text"]
