"""Time `lab up` and `lab down` for 3 to 64 nodes (targets: 3 nodes < 3 s, 16 < 15 s).

Run as root: ``python benchmarks/lab_up.py [--repeat N]``. Prints one line per size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from pytest_k8snet import lab as labmod

TARGETS = {3: 3.0, 16: 15.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="3,8,16,32,64")
    args = parser.parse_args()
    print(f"{'nodes':>5} {'up (s)':>8} {'down (s)':>9} {'namespaces':>10}  target")
    for n in (int(s) for s in args.sizes.split(",")):
        ups, downs, spaces = [], [], 0
        for i in range(args.repeat):
            name = f"sbench{os.getpid()}x{i}"
            t = time.perf_counter()
            built = labmod.up(labmod.LabSpec(name=name, nodes=n))
            ups.append(time.perf_counter() - t)
            spaces = len(built.all_netns())
            t = time.perf_counter()
            labmod.down(name)
            downs.append(time.perf_counter() - t)
        target = f"up < {TARGETS[n]:g} s" if n in TARGETS else ""
        print(f"{n:>5} {statistics.median(ups):>8.2f} {statistics.median(downs):>9.2f} "
              f"{spaces:>10}  {target}")


if __name__ == "__main__":
    main()
