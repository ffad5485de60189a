"""Measure once per run: an in-process cache, shared with the other xdist workers.

A suite of N parametrized tests asks for the same measurement N times; the first ask
measures and the rest read the cache. Under xdist every worker is its own process, so the
cache is also a pickle file per kind in the run's shared directory: the first worker to ask
measures under a file lock, the others read its file. The reports read those files by kind
name (``ping-pod-56``, ``udp``, ``document``...), so a kind's name is part of the format.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from threading import Lock
from typing import Any, TypeVar

from filelock import FileLock

T = TypeVar("T")
SUFFIX = ".pickle"
_MISSING = object()


def shared_file(shared_dir: Path, kind: str) -> Path:
    """Where a worker leaves measurement ``kind`` for the others (and for the controller)."""
    return shared_dir / f"{kind}{SUFFIX}"


def _load(path: Path) -> Any:
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError):
        return _MISSING  # not measured, or a worker died mid-write


def read_shared(shared_dir: Path, kind: str) -> Any:
    """Measurement ``kind`` as a worker left it, or None when no worker did."""
    value = _load(shared_file(shared_dir, kind))
    return None if value is _MISSING else value


def read_all_shared(shared_dir: Path) -> dict[str, Any]:
    """Every measurement the workers left, by kind."""
    return {path.name[:-len(SUFFIX)]: value for path in sorted(shared_dir.glob(f"*{SUFFIX}"))
            if (value := _load(path)) is not _MISSING}


class MeasurementCache:
    """Values by kind name, each computed once per run (per process, or per run under xdist)."""

    def __init__(self, shared_dir: Path | None = None) -> None:
        self.shared_dir = shared_dir
        # kind -> value; read directly by the document and the reports.
        self.measurements: dict[str, Any] = {}
        self._lock = Lock()
        self._kind_locks: dict[str, Lock] = {}

    def once(self, kind: str, compute: Callable[[], T]) -> T:
        """``compute()`` the first time ``kind`` is asked for, the cached value after."""
        with self._lock:
            kind_lock = self._kind_locks.setdefault(kind, Lock())
        with kind_lock:  # two tests asking at once must not measure twice
            return self._once_locked(kind, compute)

    def _once_locked(self, kind: str, compute: Callable[[], T]) -> T:
        if kind in self.measurements:
            return self.measurements[kind]  # type: ignore[no-any-return]
        if self.shared_dir is None:
            value = compute()
        else:
            path = shared_file(self.shared_dir, kind)
            with FileLock(str(path) + ".lock"):
                if path.exists():
                    value = pickle.loads(path.read_bytes())
                else:
                    value = compute()
                    path.write_bytes(pickle.dumps(value))
        self.measurements[kind] = value
        return value
