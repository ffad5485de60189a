"""What the xdist workers and the controller of one run exchange through its shared dir.

Under xdist the controller lists no nodes and runs no test, yet it writes the summary and
the results file and removes what the run created; the workers build one probe set (or
lab) between them. They meet in ``$TMPDIR/k8snet-<run id>``: the node selection, the
"something was created" marker, the cluster's identity, the measurement pickles (written
by :class:`pytest_k8snet.measure.Cluster`), and the lock and failure note of a lab
brought up for the run. Without xdist nothing is written there.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from .measure.cache import read_all_shared, read_shared

SELECTION_FILE = "selection.json"  # a worker's node selection, for the controller's summary
CREATED_FILE = "created"  # a worker is about to create probes (or a lab): cleanup has work
IDENTITY_FILE = "k8snet-identity.json"  # the cluster's identity while it was up
LAB_LOCK = "lab.lock"  # one worker at a time brings up (or attaches to) the run's lab
USAGE_ERROR_FILE = "usage-error"
KUBE_LAB_ERROR = "kube-lab.error"  # the kube lab failed: every worker must fail alike


def run_id_and_worker(config: pytest.Config) -> tuple[str, str | None]:
    """(run id, xdist worker id or None): every process of an xdist run has the same run id,
    so that the workers share one probe set (or lab) named after it, and one shared dir."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput["testrunuid"])[:10], str(workerinput["workerid"])
    run_id = secrets.token_hex(5)
    if config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None):
        # xdist passes --testrunuid to every worker; the controller picks it when not given.
        if not getattr(config.option, "testrunuid", None):
            config.option.testrunuid = run_id + secrets.token_hex(11)
        run_id = str(config.option.testrunuid)[:10]
    return run_id, None


class XdistShare:
    """The shared dir of run ``run_id`` as seen from ``worker`` (None: the controller, or a
    run without xdist, which writes nothing)."""

    def __init__(self, run_id: str, worker: str | None) -> None:
        self.worker = worker
        self.run_dir = Path(tempfile.gettempdir()) / f"k8snet-{run_id}"

    @property
    def worker_dir(self) -> Path | None:
        """The shared dir, created, for a worker to write in; None outside a worker."""
        if self.worker is None:
            return None
        self.run_dir.mkdir(exist_ok=True)
        return self.run_dir

    def _write_once(self, name: str, text: str) -> None:
        # The first worker's copy wins; a rename, so that a reader never sees half a file.
        shared = self.worker_dir
        if shared is None:
            return
        path = shared / name
        if path.exists():
            return
        tmp = path.with_suffix(f".{self.worker}.tmp")
        tmp.write_text(text)
        tmp.replace(path)

    def _read_json(self, name: str) -> Any:
        try:
            return json.loads((self.run_dir / name).read_text())
        except (OSError, ValueError):
            return None

    # -- node selection ---------------------------------------------------------------------

    def write_selection(self, selected: int, left_out: dict[str, str],
                        probed_despite: dict[str, list[str]]) -> None:
        self._write_once(SELECTION_FILE, json.dumps({
            "selected": selected, "left_out": left_out, "probed_despite": probed_despite}))

    def read_selection(self) -> tuple[int | None, dict[str, str], dict[str, list[str]]]:
        """(nodes selected, left out with why, probed despite notes) as a worker saw them;
        (None, {}, {}) when no worker selected nodes."""
        doc = self._read_json(SELECTION_FILE)
        if not isinstance(doc, dict):
            return None, {}, {}
        return (doc.get("selected"), dict(doc.get("left_out") or {}),
                dict(doc.get("probed_despite") or {}))

    # -- what the controller must clean up ----------------------------------------------------

    def mark_created(self) -> None:
        """Written before creating probes or a lab, so that a worker killed half-way is still
        cleaned up, and a run that never used a k8snet fixture makes the controller touch
        nothing."""
        shared = self.worker_dir
        if shared is not None:
            (shared / CREATED_FILE).touch()

    def created(self) -> bool:
        return (self.run_dir / CREATED_FILE).exists()

    def remove(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- the reports' facts -------------------------------------------------------------------

    def write_identity(self, ident: dict[str, Any]) -> None:
        self._write_once(IDENTITY_FILE, json.dumps(ident, default=str))

    def read_identity(self) -> dict[str, Any] | None:
        doc = self._read_json(IDENTITY_FILE)
        return dict(doc) if isinstance(doc, dict) else None

    def measurements(self) -> dict[str, Any]:
        """The measurement caches the workers shared, by kind."""
        return read_all_shared(self.run_dir) if self.run_dir.is_dir() else {}

    def measurement(self, kind: str) -> Any:
        """One measurement a worker shared (None when none did): read alone, since the
        controller asks for the document and readiness, not for every pair's probes."""
        return read_shared(self.run_dir, kind)

    # -- a lab brought up for the run -----------------------------------------------------------

    def lab_lock(self) -> contextlib.AbstractContextManager[Any]:
        """Held while a worker brings up or attaches to the run's lab (no lock outside xdist)."""
        shared = self.worker_dir
        if shared is None:
            return contextlib.nullcontext()
        return FileLock(str(shared / LAB_LOCK))

    def kube_lab_error(self) -> str | None:
        """Why the first worker could not bring up the kube lab, so that the others fail
        alike (or their collections differ and xdist stops)."""
        shared = self.worker_dir
        if shared is None or not (shared / KUBE_LAB_ERROR).exists():
            return None
        return (shared / KUBE_LAB_ERROR).read_text()

    def note_kube_lab_error(self, message: str) -> None:
        shared = self.worker_dir
        if shared is not None:
            (shared / KUBE_LAB_ERROR).write_text(message)

    # -- a usage error found by the workers' collection ---------------------------------------

    def note_usage_error(self, message: str) -> None:
        self._write_once(USAGE_ERROR_FILE, message)

    def usage_error(self) -> str | None:
        """What made the workers collect nothing (a worker cannot stop an xdist run with a
        usage error itself: xdist takes that for a crash)."""
        try:
            return (self.run_dir / USAGE_ERROR_FILE).read_text()
        except OSError:
            return None
