"""Per-run state kept in ``config.stash``: settings, the backend, the cluster, and results.

Nothing here touches a cluster until a k8snet fixture (or parametrization over
nodes) asks for it, so ``--help``, ``--fixtures``, ``--collect-only`` and plain test
runs stay offline.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from filelock import FileLock

from .backends import Backend, BackendError, Node
from .selection import not_probeable, unreachable_nodes
from .judge import Judgement, judge
from .measure import Cluster
from .measure.document import document as measure_document
from .measure.evidence import collect as collect_evidence
from .options import Settings, backend_kind, kubeconfig_path

STATE_KEY = pytest.StashKey["State"]()
SELECTION_FILE = "selection.json"  # a worker's node selection, for the controller's summary
CREATED_FILE = "created"  # a worker is about to create probes (or a lab): cleanup has work
IDENTITY_FILE = "k8snet-identity.json"  # a worker's noted identity, for the controller


def in_no_io_mode(config: pytest.Config) -> bool:
    """``--collect-only``, ``--fixtures``, ``--fixtures-per-test`` and ``--setup-plan`` only
    show tests or fixtures: they must work offline, and fast, with any kubeconfig."""
    opt = config.option
    return bool(getattr(opt, "collectonly", False) or getattr(opt, "showfixtures", False)
                or getattr(opt, "show_fixtures_per_test", False)
                or getattr(opt, "setupplan", False))


class State:
    def __init__(self, config: pytest.Config, settings: Settings, worker: str | None) -> None:
        self.config = config
        self.settings = settings
        self.worker = worker  # xdist worker id, None in the controller or without xdist
        self.kind = backend_kind(settings)
        self._backend: Backend | None = None
        self._cluster: Cluster | None = None
        self._judgement: Judgement | None = None
        self._identity: dict[str, Any] | None = None
        self._all_nodes: list[Node] | None = None
        self._discovery_error: str | None = None
        self.diagnoses: list[dict[str, Any]] = []
        self.outcomes: dict[str, str] = {}
        self.records: list[dict[str, Any]] = []
        self.started = time.time()
        self._old_handlers: dict[int, Any] = {}
        self._keep_message: str | None = None
        self._owns_kube_lab = False  # this process brought up the lab of --k8s-lab-kubernetes
        self.no_io = in_no_io_mode(config)
        # Selection, for the summary: nodes left out (name -> why) and how many were chosen.
        self.left_out: dict[str, str] = {}
        self.selected_count: int | None = None
        # Selected nodes that are probed although cordoned, NotReady, pressured (Node.notes).
        self.probed_despite: dict[str, list[str]] = {}
        self.selection_error: str | None = None
        # What tests actually exercised (passed or failed, not skipped), from their reports.
        self.tested_nodes: set[str] = set()
        self.tested_pairs: set[tuple[str, str, str]] = set()  # (src, dst, network)

    # -- names ------------------------------------------------------------------------------

    @property
    def lab_name(self) -> str:
        return self.settings.lab_name or f"r{self.settings.run_id}"

    @property
    def shared_dir(self) -> Path | None:
        if self.worker is None:
            return None
        d = self.shared_dir_for_run()
        d.mkdir(exist_ok=True)
        return d

    def shared_dir_for_run(self) -> Path:
        return Path(tempfile.gettempdir()) / f"k8snet-{self.settings.run_id}"

    def target(self) -> dict[str, Any]:
        """What is under test, said so that a lab run cannot pass for a cluster run.

        ``simulated``: True for a lab (network namespaces on this machine, no Kubernetes);
        ``target``: one line for people; ``chosen_by``: why this backend (auto's reasoning);
        ``in_cluster``: kube through the pod's service account. No cluster I/O.
        """
        s = self.settings
        if self.kind == "lab":
            how = (f"running lab {self.lab_name}" if s.lab_name
                   else f"lab {self.lab_name} of {s.lab_nodes} node"
                   f"{'s' if s.lab_nodes != 1 else ''} brought up for this run")
            text = f"SIMULATED lab, not a Kubernetes cluster ({how})"
        elif s.kube_lab:
            how = (f"running lab {self.lab_name}" if s.lab_name
                   else f"lab {self.lab_name} brought up for this run")
            text = (f"Kubernetes cluster in {how}: real kube-apiserver, kubelets, containerd "
                    f"and CoreDNS on this machine (kubeconfig {kubeconfig_path(s)})")
        elif s.in_cluster:
            host = os.environ.get("KUBERNETES_SERVICE_HOST", "?")
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            text = (f"Kubernetes cluster of this pod (in-cluster service account, "
                    f"https://{host}:{port})")
        else:
            server = _kubeconfig_server(kubeconfig_path(s), s.context)
            text = (f"Kubernetes cluster {server or '?'} (kubeconfig {kubeconfig_path(s)}"
                    + (f", context {s.context}" if s.context else "") + ")")
        return {"simulated": self.kind == "lab", "target": text, "chosen_by": s.kind_reason,
                "in_cluster": s.in_cluster}

    def live_identity(self) -> dict[str, Any]:
        """The cluster's identity for the reports: the backend's, plus :meth:`target`."""
        if self._backend is not None:
            ident = dict(self._backend.identity())
        elif self.kind == "lab":
            ident = {"kind": "lab", "name": self.lab_name}
        else:
            ident = {"kind": "kube", "kubeconfig": kubeconfig_path(self.settings),
                     "context": self.settings.context}
        return {**ident, **self.target()}

    # -- what the reports read (report.facts.RunFacts) --------------------------------------

    def note_identity(self) -> None:
        """While the cluster is up (its backend is gone by the end of the run), remember who it
        is; an xdist worker also leaves it in the run's shared dir for the controller."""
        if self._cluster is None or self._identity is not None:
            return
        self._identity = self.live_identity()
        shared = self.shared_dir
        if self.worker is None or shared is None:
            return
        path = shared / IDENTITY_FILE
        if not path.exists():
            tmp = path.with_suffix(f".{self.worker}.tmp")
            tmp.write_text(json.dumps(self._identity, default=str))
            tmp.replace(path)

    def identity(self) -> dict[str, Any]:
        """The identity noted while the cluster was up (a worker's under xdist), else now."""
        if self._identity is not None:
            return dict(self._identity)
        path = self.shared_dir_for_run() / IDENTITY_FILE
        if self.worker is None and path.is_file():
            try:
                return dict(json.loads(path.read_text()))
            except (OSError, ValueError):
                pass
        return self.live_identity()

    def raw_measurements(self) -> dict[str, Any]:
        """The run's cached measurements: in-process, or the files xdist workers shared."""
        if self._cluster is not None:
            return dict(self._cluster.measurements)
        d = self.shared_dir_for_run()
        out: dict[str, Any] = {}
        if d.is_dir():
            for path in sorted(d.glob("*.pickle")):
                try:
                    out[path.stem] = pickle.loads(path.read_bytes())
                except (OSError, EOFError, pickle.UnpicklingError):
                    continue  # a worker died mid-write: that measurement is simply missing
        return out

    def measured(self) -> tuple[dict[str, Any] | None, Judgement | None]:
        doc = self.raw_measurements().get("document")
        if not isinstance(doc, dict):
            return None, None
        return doc, self.judgement_of(doc)

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

    @property
    def nodes_known_offline(self) -> bool:
        """Node names can be had without cluster I/O: a lab's are computed or read locally."""
        return self.kind == "lab"

    def _discover(self) -> list[Node]:
        if self.kind == "lab":
            from .backends.lab import LabBackend, planned_nodes

            if self.settings.auto_lab:
                return planned_nodes(self.lab_name, self.settings.lab_nodes)
            return LabBackend.attach(self.lab_name, self.settings.timeout).nodes()
        if self.no_io:
            raise BackendError("no cluster I/O in this mode")  # callers check first
        return self.backend().nodes()

    def selected_nodes(self) -> list[Node]:
        """The nodes to probe: Linux nodes that can run the probes, then the
        ``pytest_k8snet_select_nodes`` hook (default: ``--k8s-node-selector``).

        Cordoned, NotReady and DiskPressure nodes stay: pods pinned by nodeName still run
        there. Records what was left out and why, for the summary.
        """
        nodes = self.all_nodes()
        probeable: list[Node] = []
        left_out: dict[str, str] = {}
        for node in nodes:
            why = not_probeable(node)
            if why:
                left_out[node.name] = why
            else:
                probeable.append(node)
        chosen = self.config.hook.pytest_k8snet_select_nodes(config=self.config,
                                                             nodes=probeable)
        result = list(chosen if chosen is not None else probeable)
        names = {n.name for n in result}
        selectors = ",".join(self.settings.node_selector or ())
        for node in probeable:
            if node.name not in names:
                left_out[node.name] = (f"not matching --k8s-node-selector {selectors}"
                                       if selectors else "left out by pytest_k8snet_select_nodes")
        self.left_out, self.selected_count = left_out, len(result)
        self.probed_despite = {n.name: list(getattr(n, "notes", ()) or ()) for n in result
                               if getattr(n, "notes", ())}
        if not result:
            self.selection_error = self._no_nodes_message(nodes, left_out)
        self._share_selection()
        return result

    def _no_nodes_message(self, nodes: Sequence[Node], left_out: Mapping[str, str]) -> str:
        selectors = ",".join(self.settings.node_selector or ())
        if not nodes:
            return "the cluster has no nodes"
        what = f"--k8s-node-selector {selectors}" if selectors else "the node selection"
        reasons = sorted(set(left_out.values()))
        return (f"{what} matches none of the {len(nodes)} nodes, so nothing would be tested "
                f"(left out: {'; '.join(reasons[:3])}{' ...' if len(reasons) > 3 else ''})")

    def _share_selection(self) -> None:
        """Under xdist the controller never lists nodes: a worker leaves the selection in the
        run's shared dir for the controller's summary."""
        shared = self.shared_dir
        if shared is None:
            return
        path = shared / SELECTION_FILE
        if path.exists():
            return
        tmp = path.with_suffix(f".{self.worker}.tmp")
        tmp.write_text(json.dumps({"selected": self.selected_count, "left_out": self.left_out,
                                   "probed_despite": self.probed_despite}))
        tmp.replace(path)

    def selection(self) -> tuple[int | None, dict[str, str], dict[str, list[str]]]:
        """(nodes selected, nodes left out with why, selected nodes probed although cordoned,
        NotReady or pressured, with those notes) as this process or a worker saw it."""
        if self.selected_count is not None or self.worker is not None:
            return self.selected_count, dict(self.left_out), dict(self.probed_despite)
        path = self.shared_dir_for_run() / SELECTION_FILE
        try:
            doc = json.loads(path.read_text())
            return (doc.get("selected"), dict(doc.get("left_out") or {}),
                    dict(doc.get("probed_despite") or {}))
        except (OSError, ValueError):
            return None, {}, {}

    def coverage(self) -> dict[str, Any] | None:
        """What the run actually tested, for the reports (None: no k8snet test asked for
        nodes). Controller side; under xdist from the workers' reports and files.

        ``target`` (:meth:`target`), ``selected`` (nodes selected, None if unknown),
        ``tested_nodes`` (names), ``tested_pairs`` (``{"all", "pod", "host"}`` counts of
        ordered pairs; a test counts when it passed or failed, not when it skipped),
        ``left_out`` (name -> why), ``probed_despite`` (selected node -> its notes: cordoned,
        NotReady, pressure; probed all the same), ``unreachable`` (name -> why the probes
        cannot run).
        """
        from .report.view import natural_key

        selected, left_out, despite = self.selection()
        if selected is None and not self.tested_nodes:
            return None
        pairs = self.tested_pairs
        readiness = self.raw_measurements().get("ready")
        return {
            "target": self.target(), "selected": selected,
            "tested_nodes": sorted(self.tested_nodes, key=natural_key),
            "tested_pairs": {"all": len({(a, b) for a, b, _ in pairs}),
                             **{net: len({(a, b) for a, b, n in pairs if n == net})
                                for net in ("pod", "host")}},
            "left_out": left_out, "probed_despite": despite,
            "unreachable": unreachable_nodes(readiness) if isinstance(readiness, dict) else {},
        }

    def note_tested(self, nodes: Iterable[str], pairs: Iterable[tuple[str, str, str]]) -> None:
        """A test that ran (passed or failed) exercised these nodes and pairs."""
        for a, b, network in pairs:
            self.tested_pairs.add((a, b, network))
            self.tested_nodes.update((a, b))
        self.tested_nodes.update(nodes)

    # -- backend and cluster (test time) ---------------------------------------------------

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._make_backend()
        return self._backend

    def _make_backend(self) -> Backend:
        s = self.settings
        if self.kind == "lab":
            from .backends.lab import LabBackend, running_labs

            if s.lab_name:
                return LabBackend.attach(s.lab_name, s.timeout)
            if self.shared_dir is None:
                return LabBackend.create(self.lab_name, s.lab_nodes, s.timeout)
            # One lab per run under xdist: the first worker builds it, the controller removes it.
            with FileLock(str(self.shared_dir / "lab.lock")):
                if self.lab_name in running_labs():
                    return LabBackend.attach(self.lab_name, s.timeout)
                backend = LabBackend.create(self.lab_name, s.lab_nodes, s.timeout)
                backend.owned = False
                return backend
        from .backends.kube import KubeBackend

        if s.kube_lab:
            self._kube_lab_up()
        return KubeBackend.from_settings(s, kubeconfig_path(s), self.config,
                                         shared_dir=self.shared_dir)

    def _kube_lab_up(self) -> None:
        """The lab whose real cluster this run tests: brought up once per run (by the first
        xdist worker), or the running one --k8s-lab-name names."""
        from .backends.lab import check_running, kube_lab_up, running_labs

        s = self.settings
        if s.lab_name:
            check_running(s.lab_name)
            return
        self._mark_created()
        lock = (FileLock(str(self.shared_dir / "lab.lock")) if self.shared_dir is not None
                else contextlib.nullcontext())
        failed = self.shared_dir / "kube-lab.error" if self.shared_dir is not None else None
        with lock:
            # Under xdist every worker must see the same outcome, or their collections differ.
            if failed is not None and failed.exists():
                raise BackendError(failed.read_text())
            if self.lab_name in running_labs():
                return
            try:
                kube_lab_up(self.lab_name, s.lab_nodes)
            except BackendError as exc:
                if failed is not None:
                    failed.write_text(str(exc))
                raise
            self._owns_kube_lab = self.shared_dir is None

    def _kube_lab_down(self) -> None:
        from .backends.lab import down_if_running

        down_if_running(self.lab_name)

    def cluster(self) -> Cluster:
        if self._cluster is None:
            self.install_signal_handlers()
            nodes = self.selected_nodes()
            if not nodes:
                raise NoNodesError(self.selection_error or "no nodes selected")
            self._mark_created()
            backend = self.backend()
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

    # -- the pipeline: measure, judge, collect evidence; each once ----------------------------

    def document(self) -> dict[str, Any]:
        """The run's measurement document with its evidence: measured once per run (shared
        under xdist through the cluster's cache). Tests and reports read this, never live
        measurements, so a verdict does not depend on which tests ran, or where."""
        cluster = self.cluster()
        return cluster.shared("document", lambda: self._measure(cluster))

    def _measure(self, cluster: Cluster) -> dict[str, Any]:
        doc = measure_document(cluster)
        self._judgement = judge(doc)  # evidence is not judged: this stays the run's judgement
        started = time.monotonic()
        doc["evidence"] = collect_evidence(cluster, self._judgement.evidence_nodes())
        doc["timings_s"]["evidence"] = round(time.monotonic() - started, 2)
        return doc

    def judgement(self) -> Judgement:
        """The findings and verdicts of :meth:`document`, judged once per process."""
        return self.judgement_of(self.document())

    def judgement_of(self, doc: dict[str, Any]) -> Judgement:
        """The run's judgement of its document (an xdist controller, which never measured,
        reads the workers' document and judges it here, once)."""
        if self._judgement is None:
            self._judgement = judge(doc)
        return self._judgement

    @property
    def discovery_error(self) -> str | None:
        return self._discovery_error

    @property
    def cluster_if_started(self) -> Cluster | None:
        return self._cluster

    def _mark_created(self) -> None:
        """Under xdist, tell the controller that this run creates something (probes or a
        lab): written before creating, so a worker killed half-way is still cleaned up, and
        a run that never used a k8snet fixture makes the controller touch nothing."""
        shared = self.shared_dir
        if shared is not None:
            (shared / CREATED_FILE).touch()

    # -- teardown --------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM becomes KeyboardInterrupt so that pytest unwinds and we clean up.

        Called when the cluster is first needed, and by the xdist controller at configure
        time: the controller never builds a cluster, but it is the process that removes a
        run's probes or lab, so a SIGTERM to it must unwind too. Idempotent.
        """
        if signal.SIGTERM in self._old_handlers:
            return

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
        if self._owns_kube_lab and not self.settings.keep:
            self._owns_kube_lab = False
            self._kube_lab_down()
        self.restore_signal_handlers()

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._old_handlers.items():
            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        self._old_handlers.clear()

    def cleanup_run(self) -> None:
        """Controller side under xdist: remove the run's shared resources by name.

        Only when a worker said it creates something (:data:`CREATED_FILE`): a run that
        used no k8snet fixture sends nothing to the cluster.
        """
        import shutil

        run_dir = self.shared_dir_for_run()
        created = (run_dir / CREATED_FILE).exists()
        shutil.rmtree(run_dir, ignore_errors=True)
        if self.settings.keep or not created:
            return
        if self.kind == "lab" and self.settings.auto_lab:
            from .backends.lab import down_if_running

            down_if_running(self.lab_name)
        elif self.kind == "kube":
            from .backends.kube import cleanup_run

            # It says so (stderr, with the kubectl command) when it cannot connect or cannot
            # remove something: a leak is never quiet.
            cleanup_run(self.settings, kubeconfig_path(self.settings))
            if self.settings.kube_lab and not self.settings.lab_name:
                self._kube_lab_down()

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
        if self.kind == "lab" and self.settings.auto_lab:
            return (f"Lab {self.lab_name} is still up; remove it with "
                    f"`k8snet-lab down {self.lab_name}`.")
        if self.settings.kube_lab and not self.settings.lab_name:
            return (f"Lab {self.lab_name} and its Kubernetes cluster are still up; remove them "
                    f"with `k8snet-lab down {self.lab_name}`.")
        if self.kind == "kube":
            return (f"Remove them with `kubectl delete namespace -l "
                    f"k8snet.io/run={self.settings.run_id}`.")
        return None


class NoNodesError(BackendError):
    """No node selected: the run would test nothing (a usage error, never a green run)."""


def _kubeconfig_server(path: str, context: str | None) -> str | None:
    """The API server a kubeconfig's context points at, read from the file (no I/O to the
    cluster); None when it cannot be told."""
    import yaml

    try:
        with open(path.split(os.pathsep)[0]) as fh:
            doc = yaml.safe_load(fh) or {}
        name = context or doc.get("current-context")
        ctx = next(c["context"] for c in doc.get("contexts") or [] if c.get("name") == name)
        cluster = next(c["cluster"] for c in doc.get("clusters") or []
                       if c.get("name") == ctx.get("cluster"))
        return str(cluster["server"])
    except (OSError, yaml.YAMLError, StopIteration, KeyError, TypeError, AttributeError):
        return None
