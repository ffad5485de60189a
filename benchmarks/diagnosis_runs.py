"""What the diagnosis benchmark's lab modes share: a run's record, the suite as a child
process, the faults' rules switched on and off, and cleanup a second Ctrl-C cannot cut short.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diagnosis_faults as faults
from diagnosis_faults import Fault, Step
from diagnosis_score import Score, score
from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns as ns


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
    # --recheck: the failing tests of a healthy suite right after this run's rules were gone
    # ("" passed; None: not checked). Anything here is state a fault left behind.
    after: str | None = None

    @property
    def kind(self) -> str:
        return "single" if len(self.faults) == 1 else "double"

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind,
                "faults": [f.as_dict() for f in self.faults], "rules": self.rules,
                "seconds": round(self.seconds, 2), "suite_seconds": round(self.suite_seconds, 2),
                "exit_code": self.exit_code, "results": self.results, "after": self.after,
                **self.score.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        sc = Score(d["status"], d.get("error", ""), d.get("roots", []), d.get("bad", []),
                   d.get("failed", []), d.get("criteria", {}), d.get("matches", []))
        return cls(d["index"], tuple(Fault.from_dict(f) for f in d["faults"]), sc,
                   d.get("seconds", 0.0), d.get("suite_seconds", 0.0), d.get("exit_code"),
                   d.get("rules", []), d.get("results"), d.get("after"))


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Cleanup that a second Ctrl-C must not cut short (it would leave a lab behind)."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _run_step(step: Step) -> None:
    ns.run(["ip", "netns", "exec", step.netns, *step.argv], input=step.input)


def inject(lab: labmod.Lab, fs: Sequence[Fault]) -> list[str]:
    """Switch every fault of ``fs`` on; the rules as text, for the record."""
    rules: list[str] = []
    for k, f in enumerate(fs):
        steps = faults.install(f, lab, k)
        rules += [s.text() for s in steps]
        for s in steps:
            _run_step(s)
    return rules


def clear(lab: labmod.Lab, fs: Sequence[Fault]) -> None:
    """Switch every fault of ``fs`` off, and fail if any chain or table of ours is left."""
    with shielded():
        for k, f in enumerate(fs):
            for s in faults.remove(f, lab, k):
                _run_step(s)
    left = leftover_rules(lab, fs)
    if left:
        raise RuntimeError(f"fault removal left rules behind: {left}")


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


class Suite:
    """The built-in suite in a child process with a timeout; stopped with its whole process
    group, also when a signal unwinds the benchmark."""

    def __init__(self, timeout: float, workdir: Path) -> None:
        self.timeout, self.workdir = timeout, workdir
        self.child: subprocess.Popen[bytes] | None = None

    def run(self, lab: str, results: Path) -> tuple[int | None, str, float]:
        """Run the suite on ``lab``: (exit code, error or '', seconds)."""
        log = results.with_suffix(".log")
        cmd = [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
               "--k8s-lab-name", lab, "--k8s-results", str(results), "-p", "no:cacheprovider",
               "-q"]
        results.unlink(missing_ok=True)  # a re-used name must not score an older document
        t = time.monotonic()
        with open(log, "wb") as out:
            # Its own session: a terminal's Ctrl-C reaches us alone, and we stop its group.
            self.child = subprocess.Popen(cmd, cwd=self.workdir, stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
            try:
                code: int | None = self.child.wait(self.timeout)
                error = "" if code in (0, 1) else f"pytest exit {code}: " + tail(log)
            except subprocess.TimeoutExpired:
                code, error = None, f"suite timed out after {self.timeout:g}s"
            finally:
                self.stop()
        return code, error, time.monotonic() - t

    def stop(self) -> None:
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


def scored(run: Run, results: Path, error: str, keep: Path | None) -> None:
    """Score ``run`` on its results document, and keep a copy of it in ``keep``."""
    doc = load(results)
    run.score = score(doc, run.faults, error)
    if keep is not None and doc is not None:
        keep.mkdir(parents=True, exist_ok=True)
        run.results = str(shutil.copy(results, keep.resolve() / results.name))


def load(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return " / ".join(text[-lines:])
