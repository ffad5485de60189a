"""The diagnosis benchmark on plain labs: a fresh lab per run (``dg<pid>n<i>``, ~1.5 s to
build and remove), so nothing of one run (an iperf3 server still waiting, conntrack
entries) reaches the next."""

from __future__ import annotations

import os
import time
from pathlib import Path

from diagnosis_faults import Fault
from diagnosis_runs import Run, Suite, clear, inject, scored, shielded
from diagnosis_score import Score
from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns as ns


class PlainBench:
    """One lab and one suite process at a time; both always removed, also on a signal."""

    def __init__(self, nodes: int, timeout: float, workdir: Path) -> None:
        self.nodes, self.workdir = nodes, workdir
        self.suite = Suite(timeout, workdir)
        self.lab: str | None = None
        self.up_down_s = 0.0

    def start(self) -> None:
        """Nothing to start: every run builds its own lab."""

    def health(self, index: int) -> Run:
        return self.one(index, (), None)

    def one(self, index: int, fs: tuple[Fault, ...], keep: Path | None) -> Run:
        """Fault set ``fs`` on a fresh lab: inject, run the suite, remove, score."""
        name = f"dg{os.getpid()}n{index}"
        results = self.workdir / f"run-{index:03d}.json"
        t = time.monotonic()
        run = Run(index, fs, Score("error", "not run"))
        try:
            lab = self._up(name)
            run.rules = inject(lab, fs)
            run.exit_code, error, run.suite_seconds = self.suite.run(name, results)
            clear(lab, fs)
        finally:
            self.close()
        scored(run, results, error, keep)
        run.seconds = time.monotonic() - t
        return run

    def _up(self, name: str) -> labmod.Lab:
        t = time.monotonic()
        self.lab = name
        built = labmod.up(labmod.LabSpec(name=name, nodes=self.nodes))
        self.up_down_s += time.monotonic() - t
        return built

    def close(self) -> None:
        with shielded():
            self.suite.stop()
            name, self.lab = self.lab, None
            if name is not None:
                t = time.monotonic()
                labmod.down(name)
                self.up_down_s += time.monotonic() - t
                left = ns.list_netns(f"k8snet-{name}-")
                if left:
                    print(f"warning: lab {name} left namespaces behind: {left}", flush=True)
