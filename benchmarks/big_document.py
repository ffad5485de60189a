"""The judge and every report on a generated N-node measurement document (default 1,000
nodes in racks of 20, with a rack cut, a lossy node and an MTU node: tests/bigdoc.py).

Prints one figure per line: the document's size, the judge's time, each report's time and
size, peak RSS, and (with Chromium at /usr/bin/chromium) how long the HTML report takes to
load headless. Times are wall clock and CPU (the machine is shared: wall time includes
waiting for a core).

    python benchmarks/big_document.py [--nodes 1000] [--rack 20] [--out DIR] [--no-chromium]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_k8snet.judge import Judgement, judge  # noqa: E402
from pytest_k8snet.options import Settings  # noqa: E402
from pytest_k8snet.report import html, results, terminal  # noqa: E402
from pytest_k8snet.report.baseline import compare, load  # noqa: E402
from pytest_k8snet.report.results import RunReport  # noqa: E402
from pytest_k8snet.report.stream import write_results  # noqa: E402
from pytest_k8snet.judge.checks import CHECKS  # noqa: E402
from pytest_k8snet import per_node  # noqa: E402
from pytest_k8snet.judge.per_node import outcomes  # noqa: E402
from pytest_k8snet.suite import test_network as suite  # noqa: E402
from tests.bigdoc import generate  # noqa: E402

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"


def timed(label: str, fn: Callable[[], T]) -> T:
    wall, cpu = time.monotonic(), time.process_time()
    out = fn()
    print(f"{label}: {time.monotonic() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s "
          "CPU", flush=True)
    return out


class Facts:
    """The run as the reports see it (report/facts.py RunFacts), over the generated
    document: outcomes are the verdicts' under the per-node ids a run of that size gets."""

    def __init__(self, doc: dict[str, Any], judgement: Judgement, settings: Settings) -> None:
        self.doc, self.judgement, self.settings = doc, judgement, settings
        self.worker = None
        self.started = time.time()
        nodes = [c.name for c in CHECKS if c.subjects == "nodes"]
        threshold = settings.per_node_threshold
        self.outcomes = outcomes(judgement, doc,
                                 [c.name for c in CHECKS if c.subjects == "pairs"], nodes,
                                 [n for n in nodes if per_node.whole(
                                     getattr(suite, n), len(doc["nodes"]), threshold)])
        self.diagnoses: list[dict[str, Any]] = []

    def identity(self) -> dict[str, Any]:
        return {"kind": "generated", "name": "bigdoc", "nodes": len(self.doc["nodes"])}

    def coverage(self) -> dict[str, Any] | None:
        return None

    def measured(self) -> tuple[dict[str, Any] | None, Judgement | None]:
        return self.doc, self.judgement

    def raw_measurements(self) -> dict[str, Any]:
        return {}


class Tr:
    """A terminal writer into a string (terminal.Writer)."""

    def __init__(self) -> None:
        self.out = io.StringIO()

    def section(self, title: str, sep: str = "=", **markup: bool) -> None:
        self.out.write(f"{sep * 8} {title} {sep * 8}\n")

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None:
        self.out.write(content)

    def write_line(self, line: str | bytes, **markup: bool) -> None:
        self.out.write(f"{line!s}\n")

    def line(self, msg: str, **kw: bool) -> None:
        self.out.write(msg + "\n")


def chromium_load(page: Path) -> float | None:
    """Seconds for headless Chromium to load ``page`` and run its scripts (--dump-dom
    returns once the load event fired)."""
    if not os.access(CHROMIUM, os.X_OK):
        return None
    profile = tempfile.mkdtemp(prefix="k8snet-chromium-")
    try:
        t0 = time.monotonic()
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        "--dump-dom", page.as_uri()], check=True, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - t0
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rack", type=int, default=20)
    parser.add_argument("--out", default=None, help="where the reports go (a temp dir)")
    parser.add_argument("--no-chromium", action="store_true")
    args = parser.parse_args(argv)
    if args.rack < 2 or args.nodes < 3 * args.rack:
        parser.error(f"the rack cut needs 3 racks of at least 2 nodes: --nodes {args.nodes} "
                     f"--rack {args.rack} gives {args.nodes // max(1, args.rack)}")
    out = Path(args.out or tempfile.mkdtemp(prefix="k8snet-bigdoc-"))
    out.mkdir(parents=True, exist_ok=True)
    doc = timed("generate", lambda: generate(args.nodes, args.rack))
    print(f"nodes: {len(doc['nodes'])}, pairs: {len(doc['pairs'])}, ping entries: "
          f"{len(doc['ping'])}")
    total = time.monotonic()
    judgement = timed("judge", lambda: judge(doc))
    print(f"findings: {len(judgement.findings)}, verdicts: {len(judgement.verdicts)}")
    settings = Settings(
        kubeconfig=None, context=None, backend="auto", lab=False, lab_nodes=3, namespace=None,
        probe_image="", node_selector=(), pairs="all", expect_mtu=None, timeout=5.0,
        keep=False, results=str(out / "results.json"), baseline=None,
        baseline_tolerance=20.0, egress_url="http://198.18.0.10/", egress_attempts=50,
        run_id="bigdoc")
    facts = timed("per-node test outcomes", lambda: Facts(doc, judgement, settings))
    print(f"pytest items: {len(facts.outcomes)} ({len(facts.outcomes) / len(doc['nodes']):g} "
          "per node)")
    report = timed("results document", lambda: RunReport(results.build(facts, [])))
    timed("results file", lambda: write_results(report.doc, Path(settings.results or "")))
    print(f"results file size: {os.path.getsize(out / 'results.json') / 1e6:.1f} MB")
    # --k8s-baseline of a run of the same cluster: its results file read back, compared.
    before = timed("baseline: the results file read back", lambda: load(out / "results.json"))
    report.comparison = timed("baseline comparison", lambda: compare(before, report.doc, 20.0))
    report.doc["baseline"] = report.comparison.as_dict()  # as results.run_report does
    print(f"baseline: {report.comparison.compared} compared, "
          f"{len(report.comparison.regressions)} regressions")
    del before
    tr = Tr()
    timed("terminal summary", lambda: terminal.write(tr, report, baseline_given=True))
    print(f"terminal summary size: {len(tr.out.getvalue()) / 1e3:.1f} kB, "
          f"{tr.out.getvalue().count(chr(10))} lines")
    page = out / "report.html"
    body = timed("HTML section", lambda: html.render(report))
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}"
                    "</body></html>")
    print(f"HTML size: {page.stat().st_size / 1e6:.2f} MB")
    print(f"judge and every report: {time.monotonic() - total:.2f} s wall")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if not args.no_chromium:
        took = chromium_load(page)
        print("Chromium load: " + (f"{took:.2f} s" if took is not None else "no Chromium"))
    print(f"reports in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
