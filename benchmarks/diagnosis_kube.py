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
from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns as ns


class KubeBench:
    """One real cluster and one suite process at a time; both always removed, also on a
    signal."""

    def __init__(self, nodes: int, timeout: float, workdir: Path, recheck: bool) -> None:
        self.nodes, self.workdir, self.recheck = nodes, workdir, recheck
        self.suite = Suite(timeout, workdir)
        self.name = f"dk{os.getpid()}"
        self.lab: labmod.Lab | None = None
        self.started = False  # from the first bring-up on: down() also removes a half-built one
        self.up_down_s = 0.0

    def start(self) -> None:
        """Bring the cluster up; once more if the first bring-up fails (on a loaded machine
        a kubelet can miss the registration deadline)."""
        t = time.monotonic()
        try:
            for attempt in (1, 2):
                self.started = True
                try:
                    self.lab = labmod.up(labmod.LabSpec(name=self.name, nodes=self.nodes,
                                                        kubernetes=True))
                    break
                except labmod.LabError as exc:
                    self._down()
                    if attempt == 2:
                        raise
                    print(f"cluster bring-up failed ({exc}); once more", flush=True)
        finally:
            self.up_down_s += time.monotonic() - t
        print(f"cluster {self.name} up in {time.monotonic() - t:.1f} s", flush=True)

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
        if self.lab is None:
            raise RuntimeError("the cluster is not up")
        results = self.workdir / f"run-{index:03d}.json"
        t = time.monotonic()
        run = Run(index, fs, Score("error", "not run"))
        try:
            run.rules = inject(self.lab, fs)
            run.exit_code, error, run.suite_seconds = self.suite.run(self.name, results)
        finally:
            clear(self.lab, fs)  # also on a signal: the cluster is taken down after
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
            self._down()

    def _down(self) -> None:
        if not self.started:
            return
        t = time.monotonic()
        self.lab, self.started = None, False
        labmod.down(self.name)
        self.up_down_s += time.monotonic() - t
        left = ns.list_netns(f"k8snet-{self.name}-")
        if left:
            print(f"warning: lab {self.name} left namespaces behind: {left}", flush=True)
