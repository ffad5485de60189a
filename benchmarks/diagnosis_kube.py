"""The diagnosis benchmark on the lab's real Kubernetes cluster (``--kubernetes``).

One cluster for every run (``dk<pid>``, 20-40 s to bring up: one per fault would double
the benchmark's time): for each fault set the rules are injected into the cluster's node
namespaces, switch and gateway, the suite runs, the rules are removed and checked gone.
The suite deploys its probe pods and removes them again on every run, so what a fault
could leave behind is in the cluster itself (conntrack, kube-proxy, CoreDNS, a node's
state): ``recheck`` runs a healthy suite after every fault to see it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from diagnosis_faults import Fault
from diagnosis_runs import Run, Suite, clear, inject, scored, shielded
from diagnosis_score import Score
from one_lab import OneLab


class KubeBench:
    """One real cluster and one suite process at a time; both always removed, also on a
    signal."""

    def __init__(self, nodes: int, timeout: float, workdir: Path, recheck: bool) -> None:
        self.workdir, self.recheck = workdir, recheck
        self.suite = Suite(timeout, workdir)
        self.name = f"dk{os.getpid()}"
        self.cluster = OneLab(self.name, nodes, kubernetes=True)

    def start(self) -> None:
        self.cluster.up()

    def health(self, index: int) -> Run:
        """The suite on the cluster with no fault."""
        run = Run(index, (), Score("error", "not run"))
        results = self.workdir / f"health-{index:03d}.json"
        run.exit_code, error, run.suite_seconds = self.suite.run(self.name, results)
        scored(run, results, error, None)
        run.seconds = run.suite_seconds
        return run

    def one(self, index: int, fs: tuple[Fault, ...], keep: Path | None) -> Run:
        """Fault set ``fs`` on the cluster: inject, run the suite, remove, score."""
        lab = self.cluster.lab
        if lab is None:
            raise RuntimeError("the cluster is not up")
        results = self.workdir / f"run-{index:03d}.json"
        t = time.monotonic()
        run = Run(index, fs, Score("error", "not run"))
        try:
            run.rules = inject(lab, fs)
            run.exit_code, error, run.suite_seconds = self.suite.run(self.name, results)
        finally:
            clear(lab, fs)  # also on a signal: the cluster is taken down after
        scored(run, results, error, keep)
        run.seconds = time.monotonic() - t
        if self.recheck:
            after = self.health(index)
            run.after = (after.score.error if after.score.status == "error"
                         else " ".join(after.score.failed))
        return run

    def close(self) -> None:
        with shielded():
            self.suite.stop()
            self.cluster.down()

    @property
    def up_down_s(self) -> float:
        return self.cluster.up_down_s
