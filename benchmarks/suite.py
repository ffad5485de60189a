"""Wall time of the built-in suite on 2-, 4- and 8-node labs, and how many probes it ran.

Target: 8 nodes (56 ordered pairs) in under 30 s on the 2-core machine. Run as root:
``python benchmarks/suite.py``. Lab build time is printed apart from the suite's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.run import RUN_KEY


class Counter:
    def __init__(self) -> None:
        self.probes = 0
        self.tests = 0

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call":
            self.tests += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cluster = session.config.stash[RUN_KEY].cluster_if_started
        self.probes = cluster.probe_count if cluster else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2,4,8")
    args = parser.parse_args()
    os.chdir(tempfile.mkdtemp())  # measure the suite, not this project's pytest config
    print(f"{'nodes':>5} {'pairs':>5} {'tests':>5} {'probes':>6} {'lab up (s)':>10} {'suite (s)':>9}")
    for n in (int(s) for s in args.sizes.split(",")):
        name = f"sbench{os.getpid()}n{n}"
        t = time.perf_counter()
        labmod.up(labmod.LabSpec(name=name, nodes=n))
        up_s = time.perf_counter() - t
        counter = Counter()
        try:
            t = time.perf_counter()
            code = pytest.main(["--pyargs", "pytest_k8snet.suite", "--k8s-lab-name", name,
                                "-p", "no:cacheprovider", "-p", "no:terminal"], plugins=[counter])
            suite_s = time.perf_counter() - t
        finally:
            labmod.down(name)
        print(f"{n:>5} {n * (n - 1):>5} {counter.tests:>5} {counter.probes:>6} {up_s:>10.2f} "
              f"{suite_s:>9.2f}" + ("" if code == 0 else f"  (exit {code})"), flush=True)


if __name__ == "__main__":
    main()
