"""The diagnosis benchmark: random raw firewall faults in a plain lab, the built-in suite run
on each, and a score for what the judge said about it.

Run as root with the project's venv:
``.venv/bin/python benchmarks/diagnosis.py --single 40 --double 20 --seed 1 [--nodes 3]
[--json OUT] [--save-results DIR]``.

Each run: a fresh lab (``dg<pid>n<i>``, under a second to build), the fault's rules
injected with ``ip netns exec ... iptables``/``nft`` (``diagnosis_faults.py``), the suite
(``pytest --pyargs pytest_k8snet.suite --k8s-lab-name ... --k8s-results``) in a subprocess
with a timeout, the rules removed (and checked gone), the lab taken down, and the results
scored (``diagnosis_score.py``: one root per fault, right node and direction, right
protocol/port and mode, no inconclusive/unknown). A fresh lab per run costs ~1.5 s and
leaves nothing of one run (an iperf3 server still waiting, conntrack entries) to the next.
Before the first fault, a clean lab must pass the whole suite, or nothing is measured.

Prints one line per run, the runs with no visible effect, a breakdown by class, the total
time, and last ``accuracy: single A/B (P%), double C/D (Q%)`` (runs with no visible effect
are left out of B and D: the suite cannot see them, the judge is not to blame).
``--json OUT`` writes every run's faults, rules, roots, verdicts and scores;
``--save-results DIR`` keeps each run's results document, and ``--rejudge OUT`` scores
those documents again with the current judge, in seconds and without a lab (the judge is
a pure function of the measurement document the results file holds).
Interrupt with Ctrl-C or SIGTERM at any time: the suite is stopped and the lab removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import diagnosis_faults as faults
from diagnosis_faults import Fault, Step
from diagnosis_score import Score, score
from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns as ns
from pytest_k8snet.lab.owner import RUN_ENV

LINE_WIDTH = 320  # one line per fault, however much the judge said


@dataclass
class Run:
    index: int
    faults: tuple[Fault, ...]
    score: Score
    seconds: float = 0.0
    suite_seconds: float = 0.0
    exit_code: int | None = None
    rules: list[str] = field(default_factory=list)
    results: str | None = None

    @property
    def kind(self) -> str:
        return "single" if len(self.faults) == 1 else "double"

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind,
                "faults": [f.as_dict() for f in self.faults], "rules": self.rules,
                "seconds": round(self.seconds, 2), "suite_seconds": round(self.suite_seconds, 2),
                "exit_code": self.exit_code, "results": self.results, **self.score.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        sc = Score(d["status"], d.get("error", ""), d.get("roots", []), d.get("bad", []),
                   d.get("failed", []), d.get("criteria", {}), d.get("matches", []))
        return cls(d["index"], tuple(Fault.from_dict(f) for f in d["faults"]), sc,
                   d.get("seconds", 0.0), d.get("suite_seconds", 0.0), d.get("exit_code"),
                   d.get("rules", []), d.get("results"))


# -- the lab and the suite ------------------------------------------------------------------

@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Cleanup that a second Ctrl-C must not cut short (it would leave a lab behind)."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def run_step(step: Step) -> None:
    ns.run(["ip", "netns", "exec", step.netns, *step.argv], input=step.input)


def leftover_rules(lab: labmod.Lab, fs: Sequence[Fault]) -> list[str]:
    """Any chain or table of ours still in the namespaces the faults touched."""
    left = []
    for netns_name in sorted({faults.netns_of(f, lab) for f in fs}):
        out = ns.run(["ip", "netns", "exec", netns_name, "iptables-save"], check=False).stdout
        out += ns.run(["ip", "netns", "exec", netns_name, "nft", "list", "tables"],
                      check=False).stdout
        left += [f"{netns_name}: {ln}" for ln in out.splitlines()
                 if "KBENCH-" in ln or "k8snet_bench_" in ln]
    return left


class Bench:
    """One lab and one suite process at a time; both always removed, also on a signal."""

    def __init__(self, nodes: int, timeout: float, workdir: Path) -> None:
        self.nodes, self.timeout, self.workdir = nodes, timeout, workdir
        self.lab: str | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.up_down_s = 0.0

    def suite(self, lab: str, results: Path) -> tuple[int | None, str, float]:
        """Run the suite on ``lab``: (exit code, error or '', seconds)."""
        log = results.with_suffix(".log")
        cmd = [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
               "--k8s-lab-name", lab, "--k8s-results", str(results), "-p", "no:cacheprovider",
               "-q"]
        t = time.monotonic()
        with open(log, "wb") as out:
            # Its own session: a terminal's Ctrl-C reaches us alone, and we stop its group.
            self.child = subprocess.Popen(cmd, cwd=self.workdir, stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
            try:
                code: int | None = self.child.wait(self.timeout)
                error = "" if code in (0, 1) else f"pytest exit {code}: " + _tail(log)
            except subprocess.TimeoutExpired:
                code, error = None, f"suite timed out after {self.timeout:g}s"
            finally:
                self.stop_child()
        return code, error, time.monotonic() - t

    def stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        if child.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, sig)  # its session's group: the id we started
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(wait)
                    break

    def up(self, name: str) -> labmod.Lab:
        t = time.monotonic()
        self.lab = name
        built = labmod.up(labmod.LabSpec(name=name, nodes=self.nodes))
        self.up_down_s += time.monotonic() - t
        return built

    def down(self) -> None:
        with shielded():
            self.stop_child()
            name, self.lab = self.lab, None
            if name is not None:
                t = time.monotonic()
                labmod.down(name)
                self.up_down_s += time.monotonic() - t
                left = ns.list_netns(f"k8snet-{name}-")
                if left:
                    print(f"warning: lab {name} left namespaces behind: {left}", flush=True)

    def one(self, index: int, fs: tuple[Fault, ...], keep: Path | None) -> Run:
        """Fault set ``fs`` on a fresh lab: inject, run the suite, remove, score."""
        name = f"dg{os.getpid()}n{index}"
        results = self.workdir / f"run-{index:03d}.json"
        t = time.monotonic()
        run = Run(index, fs, Score("error", "not run"))
        error = ""
        try:
            lab = self.up(name)
            for k, f in enumerate(fs):
                steps = faults.install(f, lab, k)
                run.rules += [s.text() for s in steps]
                for s in steps:
                    run_step(s)
            run.exit_code, error, run.suite_seconds = self.suite(name, results)
            with shielded():
                for k, f in enumerate(fs):
                    for s in faults.remove(f, lab, k):
                        run_step(s)
            left = leftover_rules(lab, fs)
            if left:
                raise RuntimeError(f"fault removal left rules behind: {left}")
        finally:
            self.down()
        doc = _load(results)
        run.score = score(doc, fs, error)
        if keep is not None and doc is not None:
            keep.mkdir(parents=True, exist_ok=True)
            run.results = str(shutil.copy(results, keep.resolve() / results.name))
        run.seconds = time.monotonic() - t
        return run


def _load(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return " / ".join(text[-lines:])


# -- what is printed ------------------------------------------------------------------------

def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _flat(text: str, width: int) -> str:
    """A judge's text on one line: its line breaks and runs of spaces collapsed."""
    return _clip(" ".join(text.split()), width)


def line(run: Run) -> str:
    """One line: the fault(s), the verdict, each criterion, what the roots said."""
    sc = run.score
    head = (f"{run.index + 1:>3} {run.kind[0].upper()} "
            f"{' + '.join(f.describe() for f in run.faults):<40} {sc.status.upper():<9}")
    if sc.status == "no-effect":
        return _clip(f"{head} suite green, no test failed  {run.seconds:5.1f}s", LINE_WIDTH)
    if sc.status == "error":
        return _clip(f"{head} {_flat(sc.error, LINE_WIDTH)}  {run.seconds:5.1f}s", LINE_WIDTH)
    crit = " ".join(f"{k}:{'ok' if sc.criteria.get(k) else 'FAIL'}" for k in "abcd")
    roots = "; ".join(
        f"{r.get('cause')} [{','.join(r.get('nodes') or []) or ','.join(r.get('pairs') or [])}]"
        f" {_flat(str(r.get('summary')), 90)}" for r in sc.roots[:3])
    more = f"; +{len(sc.roots) - 3} more" if len(sc.roots) > 3 else ""
    return _clip(f"{head} {crit} ({len(sc.roots)} root{'s' if len(sc.roots) != 1 else ''}) "
                 f"{run.seconds:5.1f}s | {roots}{more}", LINE_WIDTH)


def breakdown(runs: Sequence[Run]) -> list[str]:
    """Per class (place and protocol/port, single faults): how often it passed, which
    criteria failed, and the causes of its roots."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        if r.kind == "single":
            f = r.faults[0]
            groups.setdefault(f"{f.where} {f.label}", []).append(r)
    out = []
    for key, rs in sorted(groups.items()):
        status = Counter(r.score.status for r in rs)
        crit = Counter(k for r in rs if r.score.status == "fail"
                       for k, ok in r.score.criteria.items() if not ok)
        causes = Counter(str(root.get("cause")) for r in rs for root in r.score.roots)
        out.append(f"  {key:<20} {status['pass']}/{len(rs) - status['no-effect']} pass"
                   + (f", {status['no-effect']} no effect" if status["no-effect"] else "")
                   + (f", {status['error']} error" if status["error"] else "")
                   + (f"; failed {' '.join(f'{k}x{n}' for k, n in sorted(crit.items()))}"
                      if crit else "")
                   + (f"; roots: {', '.join(f'{c}x{n}' for c, n in causes.most_common())}"
                      if causes else ""))
    return out


def accuracy(runs: Sequence[Run]) -> str:
    parts = []
    for kind in ("single", "double"):
        rs = [r for r in runs if r.kind == kind and r.score.status != "no-effect"]
        ok = sum(r.score.status == "pass" for r in rs)
        pct = f"{round(100 * ok / len(rs))}%" if rs else "n/a"
        parts.append(f"{kind} {ok}/{len(rs)} ({pct})")
    return "accuracy: " + ", ".join(parts)


def report(runs: Sequence[Run], total_s: float, up_down_s: float) -> list[str]:
    out = []
    quiet = [r for r in runs if r.score.status == "no-effect"]
    out.append(f"no visible effect: {len(quiet)}" + "".join(
        f"\n  {' + '.join(f.describe() for f in r.faults)}" for r in quiet))
    errors = [r for r in runs if r.score.status == "error"]
    if errors:
        out.append(f"errors: {len(errors)}" + "".join(
            f"\n  {' + '.join(f.describe() for f in r.faults)}: {r.score.error}"
            for r in errors))
    out.append("by class (single faults):")
    out += breakdown(runs)
    suite_s = sum(r.suite_seconds for r in runs)
    out.append(f"total time: {total_s:.0f} s for {len(runs)} runs (suite {suite_s:.0f} s, "
               f"mean {suite_s / max(1, len(runs)):.1f} s; lab up and down {up_down_s:.0f} s)")
    out.append(accuracy(runs))
    return out


# -- the command ----------------------------------------------------------------------------

def rejudge(path: Path) -> list[Run]:
    """Every run of an earlier ``--json`` dump scored again, its saved results document
    judged by the judge installed now."""
    from pytest_k8snet.judge import judge

    runs = []
    for d in json.loads(path.read_text())["runs"]:
        run = Run.from_dict(d)
        doc = _load(Path(run.results)) if run.results else None
        if doc is not None:
            j = judge(doc)
            doc["findings"] = [f.as_dict() for f in j.findings]
            doc["verdicts"] = [v.as_dict() for v in j.verdicts.values()]
            run.score = score(doc, run.faults)
        runs.append(run)
    return runs


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: the lab comes down


def _run_numbers(text: str) -> set[int]:
    try:
        numbers = {int(x) for x in text.split(",")}
    except ValueError:
        numbers = set()
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"not run numbers as --list prints them: {text!r}")
    return numbers


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--single", type=int, default=40, help="runs with one fault")
    p.add_argument("--double", type=int, default=20, help="runs with two faults")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--timeout", type=float, default=300.0, help="per suite run, seconds")
    p.add_argument("--json", type=Path, help="write every run's details here")
    p.add_argument("--save-results", type=Path, help="keep each run's results document here")
    p.add_argument("--rejudge", type=Path, help="score an earlier --json dump's saved results "
                   "again with the current judge (no lab)")
    p.add_argument("--list", action="store_true", help="print the runs a seed draws and exit")
    p.add_argument("--runs", type=_run_numbers, help="only these runs of the seed's plan, by the number --list "
                   "prints (e.g. 27,53): a fault measured again after a probe changed")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    if args.rejudge:
        rejudged = rejudge(args.rejudge)
        for r in rejudged:
            print(line(r))
        print("\n".join(report(rejudged, time.monotonic() - t0, 0.0)))
        return 0
    nodes = [n["name"] for n in labmod.plan(labmod.LabSpec(nodes=args.nodes)).nodes]
    plan = faults.draw(args.seed, args.single, args.double, nodes)
    if args.list:
        for i, fs in enumerate(plan):
            print(f"{i + 1:>3} {' + '.join(f.describe() for f in fs)}")
        return 0
    ns.require_root()
    ns.require_tools()
    # `k8snet-lab down --all` then finds these labs as the caller's, even after a crash.
    os.environ.setdefault(RUN_ENV, f"diagnosis-bench-{os.getpid()}")
    signal.signal(signal.SIGTERM, _on_term)
    # Also when started in the background, where the shell sets SIGINT to ignored: an
    # interrupt must stop the runs and remove the lab, never be lost.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="k8snet-diagnosis-"))
    bench = Bench(args.nodes, args.timeout, workdir)
    runs: list[Run] = []
    interrupted = False
    try:
        health = bench.one(len(plan), (), None)  # index past the plan: its own lab name
        if health.score.status != "no-effect" or health.exit_code != 0:
            print(f"the clean lab is not healthy ({health.score.status}, exit "
                  f"{health.exit_code}: {health.score.error or ', '.join(health.score.failed)}"
                  "): nothing measured (a loaded machine?)", flush=True)
            return 2
        print(f"clean lab healthy: suite passed in {health.suite_seconds:.1f} s; {len(plan)} "
              f"runs, seed {args.seed}, {args.nodes} nodes", flush=True)
        only = {n - 1 for n in args.runs} if args.runs else None
        for i, fs in enumerate(plan):
            if only is not None and i not in only:
                continue
            run = bench.one(i, fs, args.save_results)
            runs.append(run)
            print(line(run), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted after {len(runs)} runs", flush=True)
    finally:
        bench.down()
        shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - t0
    if args.json:
        args.json.write_text(json.dumps({
            "seed": args.seed, "nodes": args.nodes, "single": args.single,
            "double": args.double, "total_s": round(total, 1), "accuracy": accuracy(runs),
            "runs": [r.as_dict() for r in runs]}, indent=2))
    print("\n".join(report(runs, total, bench.up_down_s)))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
