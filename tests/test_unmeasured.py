"""A run that measured nothing (probe pods that never started, a run stopped before its
measurement): every report says so once, as one cause, and no message is cut mid-word.
Pure: documents and API objects built here, no lab (the real-cluster run is in
tests/test_realkube.py)."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_k8snet.backends import kube as kb
from pytest_k8snet.judge import FAILED, PASSED, SKIPPED, judge
from pytest_k8snet.measure.document import document
from pytest_k8snet.report import html, terminal
from pytest_k8snet.report.results import RunReport, run_report
from pytest_k8snet.text import ELLIPSIS, shorten, shorten_start

from .test_report_render import FakeTerminal

IMAGE = "registry.example.com/platform/netshoot:v0.13"
# containerd's words for a registry that does not answer: the end is what matters.
PULL_ERROR = (f'failed to pull and unpack image "{IMAGE}": failed to resolve reference '
              f'"{IMAGE}": failed to do request: Head "https://registry.example.com/v2/'
              'platform/netshoot/manifests/v0.13": dial tcp 203.0.113.5:443: i/o timeout')
DATA = Path(__file__).parent / "data" / "measure"
BACK_OFF = f'Back-off pulling image "{IMAGE}": ErrImagePull: {PULL_ERROR}'


# -- no message cut mid-word ----------------------------------------------------------------

@pytest.mark.parametrize("limit", [10, 25, 40, 79, 200])
def test_shorten_cuts_at_a_word_boundary_with_an_ellipsis(limit: int) -> None:
    words = PULL_ERROR.split()
    short = shorten(PULL_ERROR, limit)
    assert len(short) <= limit and short.endswith(ELLIPSIS)
    kept = short[:-len(ELLIPSIS)].split()
    assert kept == words[:len(kept)], short  # whole words only, the last one too
    tail = shorten_start(PULL_ERROR, limit)
    assert len(tail) <= limit and tail.startswith(ELLIPSIS)
    end = tail[len(ELLIPSIS):].split()
    assert end == words[len(words) - len(end):], tail
    assert shorten(PULL_ERROR, len(PULL_ERROR)) == PULL_ERROR


def test_an_image_pull_error_is_kept_in_full() -> None:
    """The kubelet's message for an image it cannot pull goes into the node's problem (and
    so the results file) whole: cut, ``i/o timeout`` read ``i/o t...``."""
    pod = {"metadata": {"name": "k8snet-probe-node-1"}, "spec": {"nodeName": "node-1"},
           "status": {"phase": "Pending", "containerStatuses": [{
               "name": "probe", "image": IMAGE, "state": {"waiting": {
                   "reason": "ImagePullBackOff", "message": BACK_OFF}}}]}}
    assert len(BACK_OFF) > kb.DETAIL_CHARS  # longer than any other API message is kept
    problems = kb.pod_problems(pod, [])
    assert problems == [f"pod-network probe k8snet-probe-node-1 on node-1: ImagePullBackOff: "
                        f"image {IMAGE}: {BACK_OFF}"]
    long_event: dict[str, Any] = {
        "involvedObject": {"kind": "Pod", "name": "k8snet-probe-node-1"}, "type": "Warning",
        "reason": "FailedMount", "message": "x" * 10 + " " + PULL_ERROR * 2}
    other = kb.pod_problems({**pod, "status": {"phase": "Pending"}}, [long_event])
    assert other[0].endswith(ELLIPSIS) and "  " not in other[0]
    assert other[0][:-len(ELLIPSIS)].split()[-1] in PULL_ERROR.split()


# -- the judge: one image, one cause --------------------------------------------------------

MEASURED = ("ping", "path_mtu", "throughput", "http", "dns", "egress", "service",
            "node_checks", "ports")


def unpulled(*nodes: str) -> dict[str, Any]:
    """The measurement document of a kube run whose probe image could not be pulled on
    ``nodes`` (all three when none are given), readiness as the kube backend words it; with
    no probe running anywhere nothing else is measured (measure/document.py)."""
    doc = json.loads((DATA / "healthy.json").read_text())
    doc.pop("cluster")  # the run's identity is the results file's, not the measurement's
    for n in nodes or doc["nodes"]:
        doc["readiness"][n] = [
            f"pod-network probe k8snet-probe-{n} on {n}: ImagePullBackOff: image {IMAGE}: "
            f"{BACK_OFF}",
            f"host-network probe k8snet-host-{n} on {n}: ImagePullBackOff: image {IMAGE}: "
            f"{BACK_OFF}",
            f"pod-network probe does not run commands: probe pod k8snet-probe-{n} is not ready "
            "(Pending, ImagePullBackOff)"]
    if not nodes:
        doc.update({k: [] for k in MEASURED})
        doc.update(expected_mtu=None, encapsulation={}, pod_mtu={}, probe_failures=[],
                   evidence={})
    return doc


def test_an_image_no_node_could_pull_is_one_cause_with_its_whole_error() -> None:
    j = judge(unpulled())
    pulls = [f for f in j.findings if f.cause == "image-pull"]
    assert len(pulls) == 1 and len(j.findings) == 1, [f.id for f in j.findings]
    f = pulls[0]
    assert f.nodes == ("node-1", "node-2", "node-3")
    assert f.message.startswith(f"Probe pods did not start on any node: image {IMAGE} could "
                                f"not be pulled (ImagePullBackOff): {PULL_ERROR}. Check "
                                "--k8s-probe-image"), f.message
    ready = [v for v in j.verdicts.values() if v.test == "test_nodes_ready"]
    assert [v.outcome for v in ready] == [FAILED] * 3
    assert {v.finding for v in ready} == {f.id} and {v.message for v in ready} == {f.message}
    others = [v for v in j.verdicts.values() if v.test != "test_nodes_ready"]
    assert others and {v.outcome for v in others} == {SKIPPED}
    assert all("probes cannot run" in v.message for v in others), \
        {v.message for v in others if "probes cannot run" not in v.message}
    assert j.evidence_nodes() == []  # nothing runs on those nodes to take evidence with


def test_an_image_some_nodes_could_not_pull_names_them() -> None:
    j = judge(unpulled("node-1", "node-3"))
    (f,) = [f for f in j.findings if f.cause == "image-pull"]
    assert f.summary.startswith(f"Probe pods did not start on node-1, node-3: image {IMAGE}")
    assert j.verdict("test_nodes_ready", "node-2").outcome == PASSED


# -- the measurement: nothing where no probe runs -------------------------------------------

class NoProbeRuns:
    """A cluster whose probe pods never started: readiness says so on every node, and any
    measurement asked for fails the test (it could only fail on its own)."""

    node_names = ["node-1", "node-2", "node-3"]
    families = ("ipv4",)  # measured in one IP family (Cluster.families)
    settings = SimpleNamespace(expect_mtu=None, pairs="all", loss_threshold=5.0)
    targets = SimpleNamespace(pod_cidrs=("10.244.0.0/16",), service_cidr="10.96.0.0/12",
                              service_ip="10.96.0.1", egress_url="", external_name="",
                              external_skip="", egress_skip="")
    backend = SimpleNamespace(endpoint_unavailable=lambda node, network: None,
                              dns_endpoints=lambda: [])

    def __init__(self) -> None:
        self.measurements: dict[str, Any] = {}

    def readiness(self) -> dict[str, list[str]]:
        return {n: [f"pod-network probe k8snet-probe-{n} on {n}: ErrImagePull: image {IMAGE}: "
                    f"{PULL_ERROR}"] for n in self.node_names}

    def unusable(self, node: str) -> str | None:
        return self.readiness()[node][0]

    def pairs(self) -> list[tuple[str, str]]:
        return [(a, b) for a in self.node_names for b in self.node_names if a != b]

    def noted_failures(self) -> list[dict[str, Any]]:
        return []

    def service_backends(self) -> list[str]:  # the API's, not a probe's
        return []

    def __getattr__(self, name: str) -> Any:
        def measured(*args: Any) -> Any:
            raise AssertionError(f"{name} measured although no probe runs anywhere")
        return measured


def test_nothing_is_measured_where_no_probe_runs() -> None:
    doc = document(NoProbeRuns())  # type: ignore[arg-type]
    assert all(doc[k] == [] for k in MEASURED), {k: doc[k] for k in MEASURED if doc[k]}
    assert doc["expected_mtu"] is None and doc["expected_mtu_source"] is None
    assert doc["encapsulation"] == {} and doc["probe_failures"] == []
    assert set(doc["readiness"]) == {"node-1", "node-2", "node-3"}
    assert doc["pairs"] and list(doc["timings_s"]) == ["readiness"]


# -- the reports: said once, as one cause, no matrix ----------------------------------------

class Facts:
    """The run as the reports see it (report/facts.RunFacts): ``doc`` measured and judged,
    each failed verdict recorded by its suite test as the suite records it; or, with
    ``doc`` None, only the measurement caches ``raw`` and the tests' ``outcomes``."""

    def __init__(self, doc: dict[str, Any] | None, raw: dict[str, Any] | None = None,
                 outcomes: dict[str, str] | None = None) -> None:
        self.settings = SimpleNamespace(baseline=None, results=None, as_dict=dict)
        self.worker = None
        self.started = 0.0
        self._doc, self._raw = doc, raw or {}
        self._judgement = judge(doc) if doc is not None else None
        self.diagnoses: list[dict[str, Any]] = []
        self.outcomes = dict(outcomes or {})
        for v in (self._judgement.verdicts.values() if self._judgement else []):
            test = f"test_network.py::{v.test}[{v.subject}]"
            self.outcomes[test] = v.outcome
            f = self._judgement.finding(v.finding) if self._judgement else None
            if v.outcome == FAILED and f is not None:
                self.diagnoses.append({"cause": f.cause, "nodes": list(f.nodes),
                                       "pairs": list(f.pairs), "message": v.message,
                                       "test": test, "finding": f.id})

    def identity(self) -> dict[str, Any]:
        return {"kind": "kube", "server": "https://127.0.0.1:6443", "nodes": 3}

    def coverage(self) -> dict[str, Any]:
        why = {n: f"pod-network probe does not run commands: probe pod k8snet-probe-{n} is "
                  "not ready (Pending, ImagePullBackOff)" for n in ("node-1", "node-2", "node-3")}
        return {"target": {"target": "Kubernetes cluster (kubeconfig k)", "simulated": False},
                "selected": 3, "tested_nodes": sorted(why) if self._doc else [],
                "tested_pairs": {"all": 0, "pod": 0, "host": 0}, "left_out": {},
                "probed_despite": {}, "unreachable": why if self._doc else {}}

    def measured(self) -> tuple[dict[str, Any] | None, Any]:
        return self._doc, self._judgement

    def raw_measurements(self) -> dict[str, Any]:
        return self._raw


def summary_of(facts: Facts) -> tuple[str, RunReport]:
    tr = FakeTerminal()
    tr.config = SimpleNamespace(stash={}, invocation_params=SimpleNamespace(args=()))
    terminal.summary(tr, facts)  # type: ignore[arg-type]
    return tr.text, run_report(tr.config, facts)  # type: ignore[arg-type]


def test_probes_that_never_started_are_said_once_as_one_cause() -> None:
    out, report = summary_of(Facts(unpulled()))
    cause = f"Probe pods did not start on any node: image {IMAGE} could not be pulled"
    assert out.count(cause) == 1 and out.count(PULL_ERROR) == 1, out
    assert "diagnoses (1 cause):" in out and "(3 tests failed on it)" in out
    assert "kube (server https://127.0.0.1:6443), 3 nodes: nothing measured" in out
    # Nothing that reads as a measurement: no matrix, no pair count, no MTU, no loss.
    for words in ("pairs probed", "node-1 node-2", "%", "expected MTU", "overlay:",
                  "unreachable", "does not run commands"):
        assert words not in out, (words, out)
    assert "tested: 3 nodes of 3 selected and 0 node pairs" in out
    # The results file: one finding, its error whole, nothing measured.
    doc = report.doc
    assert [f["cause"] for f in doc["findings"]] == ["image-pull"]
    assert PULL_ERROR in doc["findings"][0]["message"]
    assert all(doc[k] == [] for k in MEASURED) and not report.has_measurements
    # HTML: one line and the one cause; no matrix and no table of "not measured" rows.
    markup = html.render(report)
    visible = unescape(re.sub(r"<details.*?</details>|<style>.*?</style>|<script>.*?</script>",
                              "", markup, flags=re.S))
    assert visible.count(cause) == 1 and visible.count(PULL_ERROR) == 1, visible
    assert 'id="k8s-nothing-measured">Nothing measured<' in markup
    assert "Diagnoses: 1 cause<" in markup
    assert "k8s-matrix" not in visible and "not measured in this run" not in markup


def test_a_run_stopped_before_any_test_shows_no_measurement() -> None:
    """Interrupted while measuring (``-n 2`` and Ctrl-C): the caches the workers left are a
    measurement cut short that no test looked at; the summary shows none of it."""
    from pytest_k8snet.probes.ping import PingResult

    cut = {"ping-pod-56": {("node-1", "node-2"): PingResult(
        "10.244.1.2", 56, False, 0, 0, 100.0, None, None, None, error="interrupted")}}
    out, report = summary_of(Facts(None, raw=cut))
    assert not report.has_cluster_data and report.doc["ping"] == []
    assert "pairs probed" not in out and "100%" not in out
    assert "tested: 0 nodes of 3 selected and 0 node pairs" in out
    # A run whose own tests measured without a document still shows what they measured.
    _, tested = summary_of(Facts(None, raw=cut, outcomes={"t.py::test_mine": "passed"}))
    assert tested.doc["ping"] and tested.has_measurements
