"""Removing labs: everything of a lab found by its name, so that ``down`` also cleans up
after a crashed or SIGKILLed ``up`` whose record is incomplete or gone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import netns as ns
from . import processes
from .kube import cgroups as kube_cgroups
from .state import (NETNS_RE, PREFIX, STATE_ROOT, lab_netns, lock_path, locked, owned_labs,
                    running_labs)

ETC_NETNS = Path("/etc/netns")


def lab_pids(name: str) -> list[int]:
    """Processes of this lab: inside its namespaces, or naming it on their command line."""
    pids: set[int] = set()
    for netns_name in lab_netns(name):
        pids.update(ns.netns_pids(netns_name))
    marks = (f"pytest_k8snet.lab.server --lab {name} ", f"{STATE_ROOT}/{name}/")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace") + " "
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            pids.add(int(entry))
    return sorted(pids)


def teardown(name: str) -> None:
    """Remove whatever of lab ``name`` exists; the caller holds the lab's lock."""
    kube_cgroups.kill_and_remove(name)  # the real cluster's processes and containers
    processes.kill(lab_pids(name))
    netns_names = lab_netns(name)
    ns.delete_netns(netns_names)
    for netns_name in netns_names:
        shutil.rmtree(ETC_NETNS / netns_name, ignore_errors=True)
    for d in ETC_NETNS.glob(f"{PREFIX}{name}-*") if ETC_NETNS.is_dir() else []:
        m = NETNS_RE.match(d.name)
        if m and m.group("lab") == name:
            shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(STATE_ROOT / name, ignore_errors=True)
    lock_path(name).unlink(missing_ok=True)


def down(name: str) -> bool:
    """Remove lab ``name`` and anything a crashed run of it left. True if anything was there."""
    ns.require_root()
    existed = bool(lab_netns(name) or (STATE_ROOT / name).exists() or lab_pids(name))
    with locked(name):
        teardown(name)
    return existed


def down_all(everyone: bool = False) -> list[str]:
    """Remove the caller's labs (see lab.owner); with ``everyone``, every lab on the host."""
    ns.require_root()
    names = running_labs() if everyone else owned_labs()
    for name in names:
        down(name)
    return names
