"""The diagnosis benchmark on the lab's real Kubernetes cluster (``--kubernetes``).

One cluster for every run (``dk<pid>``, 20-40 s to bring up: one per fault would double
the benchmark's time): for each fault set the rules are injected into the cluster's node
namespaces, switch and gateway, the suite runs, the rules are removed and checked gone.
The suite deploys its probe pods and removes them again on every run, so what a fault
could leave behind is in the cluster itself.

One fault does leave something (seed 7, ``--recheck`` after each of 24 faults): rules
that take all of a node's pod traffic (FORWARD, ``all``) also cut the CoreDNS replica
on that node from the API server; its watches end ("http2: client connection lost") and
stay down for a while after the rules are gone, so it answers NXDOMAIN for the next
run's new probe Service (and caches that for 30 s). After such a fault (after every fault
with ``recheck``) the healthy suite runs until it passes before the next fault.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from diagnosis_faults import Fault
from diagnosis_runs import Run, Suite, clear, inject, scored, shielded
from diagnosis_score import Score
from one_lab import OneLab

SETTLE_CHECKS = 4  # healthy suites after a leaking fault before the cluster counts as broken
SETTLE_PAUSE_S = 10.0  # between them: CoreDNS's watches come back with client-go's backoff


def leaks(f: Fault) -> bool:
    """Whether ``f`` can leave the cluster unhealthy after its rules are gone: it takes
    a CoreDNS replica's way to the API server when the replica runs on its node."""
    return f.where == "forward" and f.proto == "all"


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
        if self.recheck or any(leaks(f) for f in fs):
            run.after = self.settle(index)
        return run

    def settle(self, index: int) -> str:
        """Healthy suites until one passes: '' if the first did, else what the first
        failed and how long the cluster took to heal. Raises if it does not heal (every
        later run would measure a broken cluster)."""
        t = time.monotonic()
        first = ""
        for check in range(SETTLE_CHECKS):
            if check:
                time.sleep(SETTLE_PAUSE_S)
            after = self.health(index)
            if after.score.status == "no-effect" and after.exit_code == 0:
                if not first:
                    return ""
                return f"{first}; healthy after {check + 1} checks, {time.monotonic() - t:.0f} s"
            failed = (after.score.error if after.score.status == "error"
                      else " ".join(after.score.failed))
            first = first or failed
        raise RuntimeError(f"the cluster did not heal after run {index + 1}: {first}; "
                           f"{SETTLE_CHECKS} healthy suites failed")

    def close(self) -> None:
        with shielded():
            self.suite.stop()
            self.cluster.down()

    @property
    def up_down_s(self) -> float:
        return self.cluster.up_down_s
