"""Per-run state kept in ``config.stash``: settings, the backend, the cluster, and results.

Nothing here touches a cluster until a k8snet fixture (or parametrization over
nodes) asks for it, so ``--help``, ``--fixtures`` and plain test runs stay offline.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from filelock import FileLock

from .backends import Backend, BackendError, Node
from .cluster import Cluster, node_matches
from .settings import Settings, backend_kind, kubeconfig_path

STATE_KEY = pytest.StashKey["State"]()


class State:
    def __init__(self, config: pytest.Config, settings: Settings, worker: str | None) -> None:
        self.config = config
        self.settings = settings
        self.worker = worker  # xdist worker id, None in the controller or without xdist
        self.kind = backend_kind(settings)
        self._backend: Backend | None = None
        self._cluster: Cluster | None = None
        self._all_nodes: list[Node] | None = None
        self._discovery_error: str | None = None
        self.diagnoses: list[dict[str, Any]] = []
        self.outcomes: dict[str, str] = {}
        self.records: list[dict[str, Any]] = []
        self.started = time.time()
        self._old_handlers: dict[int, Any] = {}
        self._keep_message: str | None = None

    # -- names ------------------------------------------------------------------------------

    @property
    def lab_name(self) -> str:
        return f"r{self.settings.run_id}" if self.settings.auto_lab or self.settings.lab is None \
            else str(self.settings.lab)

    @property
    def shared_dir(self) -> Path | None:
        if self.worker is None:
            return None
        d = self.shared_dir_for_run()
        d.mkdir(exist_ok=True)
        return d

    def shared_dir_for_run(self) -> Path:
        return Path(tempfile.gettempdir()) / f"k8snet-{self.settings.run_id}"

    def identity(self) -> dict[str, Any]:
        if self._backend is not None:
            return self._backend.identity()
        if self.kind == "lab":
            return {"kind": "lab", "name": self.lab_name}
        return {"kind": "kube", "kubeconfig": kubeconfig_path(self.settings),
                "context": self.settings.context}

    # -- discovery (collection time) -------------------------------------------------------

    def all_nodes(self) -> list[Node]:
        """Every node, found without starting probes; raises BackendError if unreachable."""
        if self._all_nodes is None:
            if self._discovery_error:
                raise BackendError(self._discovery_error)
            try:
                self._all_nodes = self._discover()
            except BackendError as exc:
                self._discovery_error = str(exc)
                raise
        return self._all_nodes

    def _discover(self) -> list[Node]:
        if self.kind == "lab":
            from .backends.lab import LabBackend, planned_nodes

            if self.settings.lab is None or self.settings.auto_lab:
                return planned_nodes(self.lab_name, self.settings.lab_nodes)
            return LabBackend.attach(self.lab_name, self.settings.timeout).nodes()
        return self.backend().nodes()

    def selected_nodes(self) -> list[Node]:
        nodes = self.all_nodes()
        chosen = self.config.hook.pytest_k8snet_select_nodes(config=self.config, nodes=nodes)
        return list(chosen if chosen is not None else nodes)

    def node_names_for_collection(self) -> tuple[list[str], str | None]:
        """Node names for parametrization, or ([], reason) when they cannot be known."""
        try:
            return [n.name for n in self.selected_nodes()], None
        except BackendError as exc:
            return [], str(exc)

    # -- backend and cluster (test time) ---------------------------------------------------

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._make_backend()
        return self._backend

    def _make_backend(self) -> Backend:
        s = self.settings
        if self.kind == "lab":
            from .backends.lab import LabBackend
            from .lab import LabSpec

            if s.lab is not None and not s.auto_lab:
                return LabBackend.attach(s.lab, s.timeout)
            spec = LabSpec(name=self.lab_name, nodes=s.lab_nodes)
            if self.shared_dir is None:
                return LabBackend.create(spec, s.timeout)
            # One lab per run under xdist: the first worker builds it, the controller removes it.
            with FileLock(str(self.shared_dir / "lab.lock")):
                from . import lab as labmod

                if self.lab_name in labmod.running_labs():
                    return LabBackend.attach(self.lab_name, s.timeout)
                backend = LabBackend.create(spec, s.timeout)
                backend.owned = False
                return backend
        from .backends.kube import KubeBackend

        return KubeBackend.from_settings(s, kubeconfig_path(s), self.config,
                                         shared_dir=self.shared_dir)

    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._install_signal_handlers()
            backend = self.backend()
            nodes = self.selected_nodes()
            if not nodes:
                raise BackendError("no schedulable nodes match"
                                   + (f" --k8s-node-selector {self.settings.node_selector}"
                                      if self.settings.node_selector else ""))
            backend.start(nodes)
            # Probes that did not start (sandbox errors, image pulls) become node problems,
            # which test_nodes_ready reports and the other tests skip on.
            found = backend.node_problems()

            def merged(node: Node) -> Node:
                extra = tuple(p for p in found.get(node.name, []) if p not in node.problems)
                return replace(node, problems=node.problems + extra) if extra else node

            self._cluster = Cluster(backend, self.settings, [merged(n) for n in nodes],
                                    [merged(n) for n in self.all_nodes()],
                                    shared_dir=self.shared_dir)
        return self._cluster

    @property
    def discovery_error(self) -> str | None:
        return self._discovery_error

    @property
    def cluster_if_started(self) -> Cluster | None:
        return self._cluster

    # -- teardown --------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        """SIGTERM becomes KeyboardInterrupt so that pytest unwinds and we clean up."""
        def raise_interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        try:
            self._old_handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, raise_interrupt)
        except ValueError:  # not the main thread
            pass

    def cleanup(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        backend, self._backend = self._backend, None
        if backend is not None:
            if self.settings.keep:
                self._print_keep(backend)
            else:
                backend.cleanup()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    def cleanup_run(self) -> None:
        """Controller side under xdist: remove the run's shared resources by name."""
        import shutil

        shutil.rmtree(self.shared_dir_for_run(), ignore_errors=True)
        if self.settings.keep:
            return
        if self.kind == "lab" and (self.settings.lab is None or self.settings.auto_lab):
            from . import lab as labmod

            if os.geteuid() == 0 and self.lab_name in labmod.running_labs():
                labmod.down(self.lab_name)
        elif self.kind == "kube":
            from .backends.kube import cleanup_run

            cleanup_run(self.settings, kubeconfig_path(self.settings))

    def _print_keep(self, backend: Backend) -> None:
        # Printed in the terminal summary: output during fixture teardown is captured.
        how = backend.keep_hint()
        if how:
            self._keep_message = how

    def keep_message(self) -> str | None:
        """How to remove what ``--k8s-keep`` left running, or None."""
        if not self.settings.keep or not self.outcomes:
            return None
        if self._keep_message:
            return self._keep_message
        if self.kind == "lab" and (self.settings.lab is None or self.settings.auto_lab):
            return f"Lab {self.lab_name} is still up; remove it with `k8snet-lab down {self.lab_name}`."
        if self.kind == "kube":
            return (f"Remove them with `kubectl delete namespace -l "
                    f"k8snet.io/run={self.settings.run_id}`.")
        return None
