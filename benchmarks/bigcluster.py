"""Issue 18's three proofs of scale without 1,000 machines, one after the other, each
printing one figure per line (prefixed by its part):

* ``lab``: the built-in suite on a healthy lab of ``--lab-nodes`` nodes (default 128, the
  lab's most), all pairs (benchmarks/scale.py: pairs, items, failures, wall time, exec
  sessions);
* ``kwok``: ``--kwok-nodes`` kwok nodes behind a real kube-apiserver: the plugin's own
  control-plane cost (benchmarks/kwok_scale.py; needs ``tools/kwok.sh build``);
* ``doc``: a generated ``--doc-nodes``-node measurement document with a rack cut, a lossy
  node and an MTU node, through the judge and every report (benchmarks/big_document.py).

Run as root: ``python benchmarks/bigcluster.py [--lab-nodes 128] [--kwok-nodes 1000]
[--doc-nodes 1000] [--only lab,kwok,doc]``. Each part cleans up after itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def part(name: str, argv: list[str]) -> int:
    """Run one part, its output prefixed line by line; its exit code."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=HERE.parent)
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"{name} {line.rstrip()}", flush=True)
    code = proc.wait()
    print(f"{name} part_wall_s {time.monotonic() - t0:.1f}  # exit {code}", flush=True)
    return code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lab-nodes", type=int, default=128)
    ap.add_argument("--kwok-nodes", type=int, default=1000)
    ap.add_argument("--doc-nodes", type=int, default=1000)
    ap.add_argument("--only", default="lab,kwok,doc",
                    help="comma list of the parts to run (default: all three)")
    args = ap.parse_args()
    wanted = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = wanted - {"lab", "kwok", "doc"}
    if unknown:
        ap.error(f"--only takes lab, kwok and doc, got {', '.join(sorted(unknown))}")
    if min(args.lab_nodes, args.kwok_nodes, args.doc_nodes) < 2:
        ap.error("every part needs at least 2 nodes")
    codes = []
    if "lab" in wanted:
        codes.append(part("lab", [str(HERE / "scale.py"), "--sizes", str(args.lab_nodes),
                                  "--html"]))
    if "kwok" in wanted:
        codes.append(part("kwok", [str(HERE / "kwok_scale.py"), "--nodes",
                                   str(args.kwok_nodes)]))
    if "doc" in wanted:
        codes.append(part("doc", [str(HERE / "big_document.py"), "--nodes",
                                  str(args.doc_nodes)]))
    return max(codes, default=0)


if __name__ == "__main__":
    raise SystemExit(main())
