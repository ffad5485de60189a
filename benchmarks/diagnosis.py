"""The diagnosis benchmark: random raw firewall faults in a plain lab or the lab's real
Kubernetes cluster, the built-in suite run on each, and a score for what the judge said.

Run as root with the project's venv:
``.venv/bin/python benchmarks/diagnosis.py --single 40 --double 20 --seed 1 [--nodes 3]
[--kubernetes [--recheck]] [--json OUT] [--save-results DIR]``.

Each run (plain, ``diagnosis_plain.py``): a fresh lab (``dg<pid>n<i>``), the fault's rules
injected with ``ip netns exec ... iptables``/``nft`` (``diagnosis_faults.py``), the suite
(``pytest --pyargs pytest_k8snet.suite --k8s-lab-name ... --k8s-results``) in a subprocess
with a timeout, the rules removed (and checked gone), the lab taken down, and the results
scored (``diagnosis_score.py``: one root per fault, right node and direction, right
protocol/port and mode, no inconclusive/unknown). A fresh lab per run costs ~1.5 s and
leaves nothing of one run (an iperf3 server still waiting, conntrack entries) to the next.
With ``--kubernetes`` (``diagnosis_kube.py``) one real cluster serves every run, the
faults are drawn from the classes that apply to it (``diagnosis_faults.kube_catalogue``),
and ``--recheck`` runs a healthy suite after each fault to show any state it left behind.
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
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import diagnosis_faults as faults
from diagnosis_kube import KubeBench
from diagnosis_plain import PlainBench
from diagnosis_runs import Run, load
from diagnosis_score import score
from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns as ns
from pytest_k8snet.lab.owner import RUN_ENV

LINE_WIDTH = 320  # one line per fault, however much the judge said


# -- what is printed ------------------------------------------------------------------------

def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _flat(text: str, width: int) -> str:
    """A judge's text on one line: its line breaks and runs of spaces collapsed."""
    return _clip(" ".join(text.split()), width)


def _after(run: Run) -> str:
    """What the healthy suite after the run said (``--recheck``), if it ran."""
    if run.after is None:
        return ""
    return " after:ok" if not run.after else f" after:LEAK({_flat(run.after, 120)})"


def line(run: Run) -> str:
    """One line: the fault(s), the verdict, each criterion, what the roots said."""
    sc = run.score
    head = (f"{run.index + 1:>3} {run.kind[0].upper()} "
            f"{' + '.join(f.describe() for f in run.faults):<40} {sc.status.upper():<9}")
    if sc.status == "no-effect":
        return _clip(f"{head} suite green, no test failed  {run.seconds:5.1f}s{_after(run)}",
                     LINE_WIDTH)
    if sc.status == "error":
        return _clip(f"{head} {_flat(sc.error, 160)}  {run.seconds:5.1f}s{_after(run)}",
                     LINE_WIDTH)
    crit = " ".join(f"{k}:{'ok' if sc.criteria.get(k) else 'FAIL'}" for k in "abcd")
    roots = "; ".join(
        f"{r.get('cause')} [{','.join(r.get('nodes') or []) or ','.join(r.get('pairs') or [])}]"
        f" {_flat(str(r.get('summary')), 90)}" for r in sc.roots[:3])
    more = f"; +{len(sc.roots) - 3} more" if len(sc.roots) > 3 else ""
    return _clip(f"{head} {crit} ({len(sc.roots)} root{'s' if len(sc.roots) != 1 else ''}) "
                 f"{run.seconds:5.1f}s{_after(run)} | {roots}{more}", LINE_WIDTH)


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
    leaks = [r for r in runs if r.after]
    if any(r.after is not None for r in runs):
        out.append(f"state left behind (healthy suite failed after the run): {len(leaks)}"
                   + "".join(f"\n  {' + '.join(f.describe() for f in r.faults)}: {r.after}"
                             for r in leaks))
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
        doc = load(Path(run.results)) if run.results else None
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
    p.add_argument("--runs", type=_run_numbers, help="only these runs of the seed's plan, by "
                   "the number --list prints (e.g. 27,53): faults measured again after a "
                   "probe changed")
    p.add_argument("--kubernetes", action="store_true",
                   help="one real cluster (k8snet-lab up --kubernetes) for every run")
    p.add_argument("--recheck", action="store_true",
                   help="with --kubernetes: a healthy suite after every fault")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    if args.rejudge:
        rejudged = rejudge(args.rejudge)
        for r in rejudged:
            print(line(r))
        print("\n".join(report(rejudged, time.monotonic() - t0, 0.0)))
        return 0
    nodes = [n["name"] for n in labmod.plan(labmod.LabSpec(nodes=args.nodes)).nodes]
    plan = faults.draw(args.seed, args.single, args.double, nodes, args.kubernetes)
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
    bench = (KubeBench(args.nodes, args.timeout, workdir, args.recheck) if args.kubernetes
             else PlainBench(args.nodes, args.timeout, workdir))
    runs: list[Run] = []
    interrupted = False
    try:
        bench.start()
        health = bench.health(len(plan))  # index past the plan: its own lab name
        if health.score.status != "no-effect" or health.exit_code != 0:
            print(f"the clean lab is not healthy ({health.score.status}, exit "
                  f"{health.exit_code}: {health.score.error or ', '.join(health.score.failed)}"
                  "): nothing measured (a loaded machine?)", flush=True)
            return 2
        print(f"clean {'cluster' if args.kubernetes else 'lab'} healthy: suite passed in "
              f"{health.suite_seconds:.1f} s; {len(plan)} runs, seed {args.seed}, "
              f"{args.nodes} nodes", flush=True)
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
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - t0
    if args.json:
        args.json.write_text(json.dumps({
            "seed": args.seed, "nodes": args.nodes, "kubernetes": args.kubernetes,
            "single": args.single,
            "double": args.double, "total_s": round(total, 1), "accuracy": accuracy(runs),
            "runs": [r.as_dict() for r in runs]}, indent=2))
    print("\n".join(report(runs, total, bench.up_down_s)))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
