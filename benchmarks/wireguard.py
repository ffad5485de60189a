"""flannel's wireguard backend in the real cluster: bring-up time and per-node memory.

Brings up ``--cni flannel --flannel-backend wireguard`` (flanneld runs wireguard-go: this
kernel has no WireGuard) RUNS times, and prints the time to Ready and, per node, the
resident memory (VmRSS) of flanneld and of its wireguard-go child, idle and after the
suite's traffic. Root, once the pieces are built (``k8snet-lab build``)::

    python benchmarks/wireguard.py [--runs 2] [--no-suite]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import kube


def rss_mib(pid: int) -> float:
    m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(m.group(1)) / 1024 if m else 0.0


def node_memory(lab: labmod.Lab) -> dict[str, tuple[float, float]]:
    """node -> (flanneld MiB, wireguard-go MiB)."""
    out = {}
    for n in lab.nodes:
        flanneld = int((lab.state_dir / n["name"] / "flannel" / "flanneld.pid").read_text())
        child = subprocess.run(["pgrep", "-P", str(flanneld), "-f", "wireguard-go"],
                               capture_output=True, text=True).stdout.split()
        out[n["name"]] = (rss_mib(flanneld), rss_mib(int(child[0])) if child else 0.0)
    return out


def show(label: str, mem: dict[str, tuple[float, float]]) -> None:
    for node, (f, w) in mem.items():
        print(f"  {label:12} {node}: flanneld {f:5.1f} MiB, wireguard-go {w:5.1f} MiB, "
              f"together {f + w:5.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-suite", action="store_true", help="idle memory only")
    args = parser.parse_args()
    for run in range(args.runs):
        name = f"bw{os.getpid()}{run}"
        t0 = time.monotonic()
        lab = labmod.up(labmod.LabSpec(name=name, kubernetes=True, cni="flannel",
                                       overlay="wireguard", overlay_mtu=1420))
        try:
            print(f"run {run + 1}: up {time.monotonic() - t0:.1f} s wall, Ready after "
                  f"{lab.kubernetes['ready_seconds']:.1f} s")
            show("idle", node_memory(lab))
            if not args.no_suite:
                with tempfile.TemporaryDirectory() as tmp:
                    t = time.monotonic()
                    proc = subprocess.run(
                        [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                         "-p", "no:cacheprovider", "-q"], cwd=tmp, capture_output=True,
                        text=True, env={**os.environ, **kube.client_env(lab)})
                    print(f"  suite: exit {proc.returncode}, {time.monotonic() - t:.1f} s: "
                          + proc.stdout.strip().splitlines()[-1])
                show("after suite", node_memory(lab))
        finally:
            labmod.down(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
