"""The lab's cgroups for its real cluster: one per node and one for the control plane.

Every supervisor script joins its cgroup before it starts anything, so every process of a
node, containers included, is found there, and ``down`` ends them all by cgroup, also after
a SIGKILL of ``up``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .. import processes


def cgroup_name(lab_name: str, part: str) -> str:
    return f"k8snet-{lab_name}-{part}"


def join_cgroup_sh(cg: str) -> str:
    """Shell lines moving the script into cgroup ``cg`` of every hierarchy, before it starts
    anything: then every process it starts, containers included, is found there."""
    return f"""for h in /sys/fs/cgroup/*/; do
  [ -f "$h/cgroup.procs" ] || continue
  mkdir -p "${{h}}{cg}"
  if [ -f "${{h}}{cg}/cpuset.cpus" ] && [ -z "$(cat "${{h}}{cg}/cpuset.cpus")" ]; then
    cat "$h/cpuset.cpus" >"${{h}}{cg}/cpuset.cpus"; cat "$h/cpuset.mems" >"${{h}}{cg}/cpuset.mems"
  fi
  echo $$ >"${{h}}{cg}/cgroup.procs"
done"""


def _lab_cgroups(lab_name: str) -> list[Path]:
    prefix = cgroup_name(lab_name, "")
    found = []
    root = Path("/sys/fs/cgroup")
    for hierarchy in root.iterdir() if root.is_dir() else []:
        try:
            found += [c for c in hierarchy.iterdir()
                      if c.is_dir() and c.name.startswith(prefix)
                      and (c.name[len(prefix):] == "cp" or c.name[len(prefix):].startswith("node-"))]
        except OSError:
            continue
    return found


def _subtree(cg: Path) -> list[Path]:
    """Every cgroup under ``cg``, deepest first. os.walk skips a directory that vanishes
    while it walks (the kubelet removes pod cgroups as their pods end), where
    Path.rglob raises."""
    return [Path(d) for d, _, _ in os.walk(cg, topdown=False)]


def cgroup_pids(lab_name: str) -> set[int]:
    pids: set[int] = set()
    for cg in _lab_cgroups(lab_name):
        for d in _subtree(cg):
            try:
                pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
    return pids


def kill_and_remove(lab_name: str) -> None:
    """Kill every process in the lab's cgroups and remove the cgroups (deepest first)."""
    killed: set[int] = set()
    for _ in range(50):
        pids = cgroup_pids(lab_name)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
    # The supervisors this process started are our children: reap them, or they stay
    # zombies (and unwaited Popen objects) until the interpreter exits.
    processes.reap(killed)
    for cg in _lab_cgroups(lab_name):
        for d in _subtree(cg):
            for _ in range(40):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)

