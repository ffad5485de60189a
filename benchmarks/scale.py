"""How the built-in suite scales: 8, 16, 32 (64 and 128) node labs, all pairs, default options.

Per size: lab up time, pairs, tests, failures (on a healthy lab every failure is a false
one), suite wall time, exec sessions (the backend's own counter if it has one, else the
``ip netns exec`` calls this script counts), dynamic neighbour entries left in the lab
(should be 0), the 1-minute load average at the end, the measurement's phases (from the
results file), and with ``--html`` the report's size and Chromium's time to load it. Then
how wall time grew against pair count from the smallest to each larger size (a ratio <= 1
means the suite grows no faster than the pairs it probes).

With ``--beside M`` a second lab of M nodes comes up on the same host and runs its own
suite (a separate pytest process) while each big suite runs: its tests, failures and time
are printed too (on a shared host a neighbour's lab must still pass).

Run as root: ``python benchmarks/scale.py [--sizes 8,16,32,64] [--runs 3] [--html]
[--beside 8]``.
Labs are named ``sbench<pid>n<N>`` (``--lab-prefix P``: ``P<N>``, e.g. ``b8``, ``b32``) and
removed after each size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.backends import Endpoint, ExecResult
from pytest_k8snet.backends.lab import LabBackend
from pytest_k8snet.lab import netns
from pytest_k8snet.run import RUN_KEY


class Probe:
    """A pytest plugin that counts outcomes and reads the cluster's counters at the end."""

    def __init__(self) -> None:
        self.tests = 0
        self.failed = 0
        self.probes = 0
        self.backend_execs: int | None = None

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.tests += 1
            self.failed += report.outcome == "failed"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cluster = session.config.stash[RUN_KEY].cluster_if_started
        if cluster is None:
            return
        self.probes = cluster.probe_count
        # Backends that count their exec sessions say so with a count above 0.
        if cluster.backend.exec_count > 0:
            self.backend_execs = cluster.backend.exec_count


class ExecCounter:
    """Counts LabBackend.run calls: each is one ``ip netns exec`` session."""

    def __init__(self) -> None:
        self.count = 0
        self._orig = LabBackend.run

    def __enter__(self) -> "ExecCounter":
        orig = self._orig

        def counting(backend: LabBackend, endpoint: Endpoint, argv: Sequence[str],
                     timeout: float) -> ExecResult:
            self.count += 1  # a race between threads may lose a count; close enough here
            return orig(backend, endpoint, argv, timeout)

        setattr(LabBackend, "run", counting)  # every backend made from now on counts
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(LabBackend, "run", self._orig)


def dynamic_neighbours(lab: labmod.Lab) -> int:
    count = 0
    for name in lab.all_netns():
        for family in ("-4", "-6"):
            out = netns.run(["ip", "-n", name, family, "neigh", "show", "nud", "all"],
                            check=False).stdout
            count += sum(1 for line in out.splitlines()
                         if line.strip() and not line.rstrip().endswith("PERMANENT"))
    return count


def chromium_load_seconds(html: Path | None) -> float | None:
    """Wall time for headless Chromium to load, run and dump the report (None: no Chromium).
    ``None`` as the page loads about:blank: Chromium's own start-up, to subtract."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        return None
    t = time.perf_counter()
    proc = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=60000", "--dump-dom",
                           html.as_uri() if html else "about:blank"],
                          capture_output=True, timeout=300)
    return time.perf_counter() - t if proc.returncode == 0 else None


def run_once(name: str, n: int, html: Path | None, log: Path) -> dict[str, Any]:
    probe = Probe()
    results = log.with_suffix(".json")
    args = ["--pyargs", "pytest_k8snet.suite", "-p", "no:cacheprovider", "-q",
            "--k8s-results", str(results)]
    if html is not None:
        args += ["--html", str(html), "--self-contained-html"]
    env_lab = os.environ.get("K8SNET_LAB_NAME")
    os.environ["K8SNET_LAB_NAME"] = name
    try:
        with ExecCounter() as counter, open(log, "w") as out, contextlib.redirect_stdout(out):
            t = time.perf_counter()
            code = pytest.main(args, plugins=[probe])
            seconds = time.perf_counter() - t
    finally:
        if env_lab is None:
            os.environ.pop("K8SNET_LAB_NAME", None)
        else:
            os.environ["K8SNET_LAB_NAME"] = env_lab
    execs = probe.backend_execs if probe.backend_execs is not None else counter.count
    return {"code": int(code), "seconds": seconds, "tests": probe.tests, "failed": probe.failed,
            "probes": probe.probes, "execs": execs,
            "execs_from": "backend" if probe.backend_execs is not None else "counted",
            "phases": phases(results)}


def phases(results: Path) -> str:
    """Where the measurement's time went (the results file's ``timings_s``), and the rest
    of the run (collection, judge, reports) as ``other``."""
    try:
        doc = json.loads(results.read_text())
    except (OSError, ValueError):
        return "(no results file)"
    timings = {k: float(v) for k, v in (doc.get("timings_s") or {}).items()}
    shown = " ".join(f"{k} {v:.1f}" for k, v in timings.items() if v >= 0.05)
    return f"measured {float(doc.get('measured_s') or 0):.1f} s: {shown}"


class Beside:
    """A second, smaller lab whose suite runs in its own process while the big one runs."""

    def __init__(self, name: str, nodes: int, work: Path) -> None:
        self.name, self.nodes, self.work = name, nodes, work
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> "Beside":
        labmod.up(labmod.LabSpec(name=self.name, nodes=self.nodes))
        return self

    def start(self, delay: float) -> None:
        """Start the neighbour's suite ``delay`` seconds from now, in the background (the big
        suite's measurement is under way by then)."""
        log = self.work / f"beside-{self.name}.xml"
        self.proc = subprocess.Popen(
            ["sh", "-c", f"sleep {delay}; exec \"$0\" \"$@\"", sys.executable, "-m", "pytest",
             "--pyargs", "pytest_k8snet.suite", "-p", "no:cacheprovider", "-q",
             "--k8s-lab-name", self.name, "--junitxml", str(log)],
            cwd=self.work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def result(self) -> str:
        assert self.proc is not None
        out, _ = self.proc.communicate(timeout=900)
        tail = [line for line in out.splitlines() if line.strip()][-1:] or ["(no output)"]
        return (f"  beside: {self.nodes}-node lab {self.name}: exit {self.proc.returncode}, "
                f"{tail[0].strip()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        labmod.down(self.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,16,32")
    parser.add_argument("--runs", type=int, default=1, help="suite runs per size")
    parser.add_argument("--html", action="store_true", help="also write and time the HTML report")
    parser.add_argument("--beside", type=int, default=0, metavar="M",
                        help="run an M-node lab's suite on the same host during each run")
    parser.add_argument("--beside-delay", type=float, default=10.0,
                        help="seconds after a big suite starts that the neighbour's starts")
    parser.add_argument("--lab-prefix", default="",
                        help="name the labs PREFIX<N> (default sbench<pid>n<N>)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="k8snet-scale-"))
    os.chdir(work)  # measure the suite, not this project's pytest configuration
    rows: list[tuple[int, float]] = []
    print(f"{'nodes':>5} {'pairs':>5} {'up s':>6} {'run':>3} {'tests':>5} {'failed':>6} "
          f"{'suite s':>8} {'execs':>6} {'execs/N':>7} {'neigh':>5} {'html':>9} {'load s':>6}",
          flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        name = f"{args.lab_prefix}{n}" if args.lab_prefix else f"sbench{os.getpid()}n{n}"
        t = time.perf_counter()
        lab = labmod.up(labmod.LabSpec(name=name, nodes=n))
        up_s = time.perf_counter() - t
        try:
            for i in range(args.runs):
                html = work / f"report-{n}-{i}.html" if args.html else None
                with contextlib.ExitStack() as stack:
                    beside = None
                    if args.beside:
                        beside = stack.enter_context(Beside(
                            f"{args.lab_prefix or 'sb'}{os.getpid() % 10000}b{args.beside}",
                            args.beside, work))
                        beside.start(args.beside_delay)
                    r = run_once(name, n, html, work / f"suite-{n}-{i}.log")
                    beside_line = beside.result() if beside else None
                neigh = dynamic_neighbours(lab)
                size = f"{html.stat().st_size / 1e6:.1f} MB" if html and html.exists() else "-"
                load = chromium_load_seconds(html) if html and html.exists() else None
                print(f"{n:>5} {n * (n - 1):>5} {up_s:>6.2f} {i + 1:>3} {r['tests']:>5} "
                      f"{r['failed']:>6} {r['seconds']:>8.1f} {r['execs']:>6} "
                      f"{r['execs'] / n:>7.1f} {neigh:>5} {size:>9} "
                      f"{'-' if load is None else f'{load:.1f}':>6}"
                      f"  ({r['execs_from']} execs, exit {r['code']}, load "
                      f"{os.getloadavg()[0]:.1f})", flush=True)
                print(f"      phases (s): {r['phases']}", flush=True)
                if beside_line:
                    print(beside_line, flush=True)
                rows.append((n, r["seconds"]))
        finally:
            labmod.down(name)
    if len({n for n, _ in rows}) > 1:
        base_n, base_s = rows[0]
        for n, seconds in rows:
            if n == base_n:
                continue
            pair_growth = (n * (n - 1)) / (base_n * (base_n - 1))
            time_growth = seconds / base_s
            print(f"{base_n}->{n} nodes: pairs x{pair_growth:.1f}, wall time x{time_growth:.1f}, "
                  f"ratio {time_growth / pair_growth:.2f}")
    if args.html:
        blank = chromium_load_seconds(None)
        if blank is not None:
            print(f"Chromium itself (about:blank): {blank:.1f} s of each load time")
    print(f"reports and logs in {work}")


if __name__ == "__main__":
    main()
