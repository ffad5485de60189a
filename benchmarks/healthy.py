"""The healthy gate (issue 15): N runs of the built-in suite on a healthy lab while
``stress-ng --cpu 2`` takes the machine's CPUs, and every run must pass.

Run as root with the project's venv::

    .venv/bin/python benchmarks/healthy.py [--runs 20] [--nodes 3] [--kubernetes]
        [--cni flannel|lab] [--flannel-backend vxlan|host-gw] [--proxy-mode iptables|nftables]
        [--name NAME] [--keep DIR]

One lab (or with ``--kubernetes`` one real cluster) serves every run. Prints one line per
run (passed and failed tests, wall time; for a failing run its failing tests and the
judge's root findings from ``--k8s-results``), and last
``healthy: P/N runs with 0 failures (stress-ng --cpu 2)``. ``--keep DIR`` keeps the
results document of every failing run. stress-ng is stopped and the lab taken down on
exit, Ctrl-C and SIGTERM. Exit status 1 if any run failed, 2 if nothing could be measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from diagnosis_runs import Suite, load, shielded
from diagnosis_score import roots_of
from one_lab import OneLab
from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns as ns
from pytest_k8snet.lab.owner import RUN_ENV
from pytest_k8snet.lab.plan import default_overlay_mtu

STRESS = ["stress-ng", "--cpu", "2"]
SUMMARY_WIDTH = 160  # of each root finding's summary on a run's line


@contextlib.contextmanager
def stressed() -> Iterator[None]:
    """stress-ng running for the block's duration, in its own process group, which is
    stopped (stress-ng's workers with it) however the block ends."""
    proc = subprocess.Popen(STRESS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield
    finally:
        with shielded():
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)  # the group of the one process we started
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(wait)
                    break


def outcome(doc: dict[str, Any] | None) -> tuple[int, int, list[str], list[str]]:
    """(passed, failed, failing test ids, root findings as text) of a results document."""
    if doc is None:
        return 0, 0, [], []
    counts = Counter(str(o) for o in (doc.get("tests") or {}).values())
    failing = [t for t, o in (doc.get("tests") or {}).items() if o in ("failed", "error")]
    roots, _ = roots_of(doc)
    found = [f"{r.get('cause')} [{','.join(r.get('nodes') or r.get('pairs') or [])}] "
             + _flat(str(r.get("summary")), SUMMARY_WIDTH) for r in roots]
    return counts["passed"], counts["failed"] + counts["error"], failing, found


def _flat(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def line(index: int, seconds: float, code: int | None, error: str,
         doc: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether run ``index`` was clean, and its line."""
    passed, failed, failing, found = outcome(doc)
    ok = code == 0 and not error and failed == 0 and doc is not None
    head = f"run {index + 1:>2}: {passed} passed, {failed} failed, {seconds:5.1f} s"
    if ok:
        return True, head
    problem = error or ("no results document" if doc is None else f"pytest exit {code}")
    return False, (f"{head} FAILED ({problem})"
                   + "".join(f"\n    test {t}" for t in failing)
                   + "".join(f"\n    root {f}" for f in found))


class ShapedLab(OneLab):
    """OneLab with the real cluster's shape: its CNI, flannel backend and kube-proxy mode."""

    def __init__(self, name: str, nodes: int, kubernetes: bool, cni: str, overlay: str,
                 proxy_mode: str) -> None:
        super().__init__(name, nodes, kubernetes)
        self.cni, self.overlay, self.proxy_mode = cni, overlay, proxy_mode

    def _spec(self) -> labmod.LabSpec:
        return labmod.LabSpec(name=self.name, nodes=self.nodes, kubernetes=self.kubernetes,
                              cni=self.cni, overlay=self.overlay, proxy_mode=self.proxy_mode,
                              overlay_mtu=default_overlay_mtu(self.overlay, 1500))

    def shape(self) -> str:
        if not self.kubernetes:
            return f"plain lab, {self.overlay}"
        backend = f" {self.overlay}" if self.cni == "flannel" else ""
        return f"--cni {self.cni}{backend}, kube-proxy {self.proxy_mode}"


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: stress-ng and the lab go


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--kubernetes", action="store_true", help="a real cluster, not a plain lab")
    p.add_argument("--cni", choices=("flannel", "lab"), default=None,
                   help="with --kubernetes (default: flannel, the cluster's default)")
    p.add_argument("--flannel-backend", choices=("vxlan", "host-gw"), default=None,
                   help="with --cni flannel (default: vxlan)")
    p.add_argument("--proxy-mode", choices=("iptables", "nftables"), default="iptables",
                   help="with --kubernetes (default: %(default)s)")
    p.add_argument("--name", default=None, help="the lab's name (default: hgPID)")
    p.add_argument("--timeout", type=float, default=300.0, help="per suite run, seconds")
    p.add_argument("--keep", type=Path, help="keep every failing run's results document here")
    args = p.parse_args(argv)
    cni = args.cni or ("flannel" if args.kubernetes else "lab")
    if not args.kubernetes and (args.cni or args.flannel_backend
                                or args.proxy_mode != "iptables"):
        p.error("--cni, --flannel-backend and --proxy-mode go with --kubernetes")
    if args.flannel_backend and cni != "flannel":
        p.error("--flannel-backend goes with --cni flannel")
    if shutil.which(STRESS[0]) is None:
        print("stress-ng is missing: install it (apt-get install -y stress-ng); nothing "
              "measured", file=sys.stderr)
        return 2
    ns.require_root()
    ns.require_tools()
    os.environ.setdefault(RUN_ENV, f"healthy-gate-{os.getpid()}")
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="k8snet-healthy-"))
    one = ShapedLab(args.name or f"hg{os.getpid()}", args.nodes, args.kubernetes, cni,
                    args.flannel_backend or "vxlan", args.proxy_mode)
    print(f"shape: {one.shape()}, {args.nodes} nodes", flush=True)
    suite = Suite(args.timeout, workdir)
    clean = done = 0
    t0 = time.monotonic()
    try:
        one.up()
        with stressed():
            for i in range(args.runs):
                results = workdir / f"run-{i:03d}.json"
                code, error, seconds = suite.run(one.name, results)
                doc = load(results)
                ok, text = line(i, seconds, code, error, doc)
                done += 1
                clean += ok
                print(text, flush=True)
                if not ok and args.keep is not None and doc is not None:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(results, args.keep / f"healthy-{one.name}-{i:03d}.json")
    except KeyboardInterrupt:
        print(f"interrupted after {done} runs", flush=True)
    finally:
        with shielded():
            suite.stop()
            one.down()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"total time: {time.monotonic() - t0:.0f} s ({args.nodes} nodes, "
          f"{one.kind}, {one.up_down_s:.0f} s up and down)")
    print(f"healthy: {clean}/{args.runs} runs with 0 failures ({' '.join(STRESS)})")
    return 0 if clean == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
