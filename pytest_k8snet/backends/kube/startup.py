"""Starting the probes of a run, or under xdist taking those another worker started.

Under xdist (``shared_dir`` set) the workers share one probe set: the first one (under
``shared_dir/kube.lock``) creates it and waits for it, the others find it by the run label
and take its findings from ``kube-start.json``; none of them deletes it, the controller
calls :func:`~.lifecycle.cleanup_run`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from .. import Backend, Node
from .discovery import ClusterDiscovery
from .findings import ProbeFindings
from .launch import ProbeLauncher
from .manifests import NODE_ANNOTATION, ROLE_LABEL
from .readiness import check_probes, evaluate
from .settle import SLICE_WAIT_SECONDS, wait_for_slices
from .status import pod_is_ready
from .wait import PodWatch


@dataclass
class ProbeStartup:
    """Brings the probes up (or finds them) and fills ``findings``."""

    backend: Backend  # the endpoints' backend: their commands run through it
    launcher: ProbeLauncher
    watch: PodWatch
    discovery: ClusterDiscovery
    findings: ProbeFindings
    setup_timeout: float
    shared_dir: Path | None = None
    # Whether the Service's slices listed every ready probe before it was measured (None:
    # not started here; False: not in time, or the run may not list slices).
    service_settled: bool | None = None

    def start(self, nodes: list[Node]) -> None:
        if self.shared_dir is None:
            self._start_here(nodes)
            return
        marker = self.shared_dir / "kube-start.json"
        with FileLock(str(self.shared_dir / "kube.lock")):
            pods = self.watch.pods() if self.launcher.namespace_exists() else []
            if pods and marker.exists():
                self._adopt(nodes, pods, json.loads(marker.read_text()))
            else:
                self._start_here(nodes)
                marker.write_text(json.dumps(self.findings.to_json()))

    def _start_here(self, nodes: list[Node]) -> None:
        started = time.monotonic()
        deadline = started + self.setup_timeout
        manifests = self.launcher.manifests(nodes)
        self.launcher.create_all(manifests, deadline)
        expected = {str(m["metadata"]["name"]): (node.name, role) for node, role, m in manifests
                    if (node.name, role) not in self.findings.unavailable}
        self.discovery.read_service()
        ready_nodes = {n.name for n in nodes if n.ready}
        # probes on NotReady nodes are not waited for: they would only hold the run
        wait_for = {name for name, (node, _) in expected.items() if node in ready_nodes}
        pods, events = self.watch.wait(wait_for, set(expected), deadline, self.setup_timeout)
        evaluate(self.findings, self.backend, expected, nodes, pods, events,
                 time.monotonic() - started, record=True)
        # the Service's slices before the readiness exec, whose host part waits for each
        # node's kube-proxy to program them (settle)
        self.service_settled = wait_for_slices(
            self.discovery.api, self.discovery.names, self.findings.ready_probe_pods,
            max(0.0, min(SLICE_WAIT_SECONDS, deadline - time.monotonic())))
        check_probes(self.findings, self.launcher.image, self.backend.timeout)

    def _adopt(self, nodes: list[Node], pods: list[dict[str, Any]],
               known: Mapping[str, Any]) -> None:
        """Another xdist worker made the probes: find them by label, take its findings."""
        chosen = {n.name for n in nodes}
        expected: dict[str, tuple[str, str]] = {}
        for pod in pods:
            meta = pod.get("metadata") or {}
            node = (meta.get("annotations") or {}).get(NODE_ANNOTATION)
            role = (meta.get("labels") or {}).get(ROLE_LABEL)
            if node in chosen and role in ("pod", "host"):
                expected[str(meta["name"])] = (str(node), str(role))
        self.discovery.read_service()
        by_name = {str(p["metadata"]["name"]): p for p in pods}
        events = [] if all(pod_is_ready(p) for p in pods) else self.watch.events()
        self.findings.take(known)  # its problems, not ours: record=False below
        evaluate(self.findings, self.backend, expected, nodes, by_name, events, 0.0,
                 record=False)
