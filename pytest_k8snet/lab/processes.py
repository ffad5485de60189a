"""The processes this Python process started for its labs: kept, checked and ended.

A ``Popen`` that is dropped while its process runs is never waited for, so the process
stays a zombie until the interpreter exits. Every long-running helper the lab starts (the
HTTP server, dnsmasq, the real cluster's supervisors and API forwarder) is therefore
adopted here, and whoever ends it reaps it here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from typing import Any

_children: dict[int, subprocess.Popen[Any]] = {}


def adopt(proc: subprocess.Popen[Any]) -> int:
    """Keep ``proc`` until it is reaped by :func:`kill` or :func:`reap`; returns its pid."""
    _children[proc.pid] = proc
    return proc.pid


def children() -> dict[int, subprocess.Popen[Any]]:
    """A snapshot of the adopted processes not yet reaped (pid -> Popen)."""
    return dict(_children)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def reap(pids: Iterable[int]) -> None:
    """Wait for the adopted ones among ``pids`` (already signalled), so none stays a zombie."""
    for pid in pids:
        child = _children.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def kill(pids: Sequence[int]) -> None:
    """SIGTERM ``pids``, SIGKILL what still runs after 2 s, and reap the adopted ones."""
    running = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            running.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 2
    while running and time.monotonic() < deadline:
        running = [p for p in running if alive(p)]
        time.sleep(0.02)
    for pid in running:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reap(pids)
