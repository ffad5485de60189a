"""The run, kept in ``config.stash``: its backend and cluster, the kube lab it may bring up,
the pipeline (measure once, judge once, collect evidence), and its cleanup on any exit.

Nothing here touches a cluster until a k8snet fixture (or parametrization over nodes)
asks for it, so ``--help``, ``--fixtures``, ``--collect-only`` and plain test runs stay
offline. What is under test is said by :mod:`.target`, which nodes by :mod:`.selection`,
and what xdist workers tell the controller goes through :mod:`.xdist_share`.
"""

from __future__ import annotations

import functools
import signal
import time
from dataclasses import replace
from types import FrameType
from typing import Any

import pytest

from . import target
from .backends import Backend, BackendError, Node
from .judge import Judgement, judge
from .measure import Cluster
from .measure.document import document as measure_document
from .measure.evidence import collect as collect_evidence
from .options import Settings, backend_kind, kubeconfig_path
from .selection import NodeSelection, Tested, select_nodes, unreachable_nodes
from .xdist_share import XdistShare

RUN_KEY = pytest.StashKey["Run"]()


def in_no_io_mode(config: pytest.Config) -> bool:
    """``--collect-only``, ``--fixtures``, ``--fixtures-per-test`` and ``--setup-plan`` only
    show tests or fixtures: they must work offline, and fast, with any kubeconfig."""
    opt = config.option
    return bool(getattr(opt, "collectonly", False) or getattr(opt, "showfixtures", False)
                or getattr(opt, "show_fixtures_per_test", False)
                or getattr(opt, "setupplan", False))


class NoNodesError(BackendError):
    """No node selected: the run would test nothing (a usage error, never a green run)."""


class SigtermGuard:
    """SIGTERM becomes KeyboardInterrupt while installed, so that pytest unwinds and the
    run cleans up instead of dying with its probes or lab left running."""

    def __init__(self) -> None:
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        if signal.SIGTERM in self._old:
            return

        def raise_interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        try:
            self._old[signal.SIGTERM] = signal.signal(signal.SIGTERM, raise_interrupt)
        except ValueError:  # not the main thread: pytest's own handling must do
            pass

    def restore(self) -> None:
        for sig, handler in self._old.items():
            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        self._old.clear()


class KubeLab:
    """The lab whose real cluster a ``--k8s-lab-kubernetes`` run tests: brought up once per
    run (by the first xdist worker), or the running one ``--k8s-lab-name`` names."""

    def __init__(self, settings: Settings, name: str, share: XdistShare) -> None:
        self.settings = settings
        self.name = name
        self.share = share
        self.owned = False  # this process brought it up, so this process takes it down

    def up(self) -> None:
        from .backends.lab import check_running, kube_lab_up, running_labs

        if self.settings.lab_name:
            check_running(self.settings.lab_name)
            return
        self.share.mark_created()
        with self.share.lab_lock():
            failed = self.share.kube_lab_error()
            if failed is not None:
                raise BackendError(failed)
            if self.name in running_labs():
                return
            try:
                kube_lab_up(self.name, self.settings.lab_nodes)
            except BackendError as exc:
                self.share.note_kube_lab_error(str(exc))
                raise
            # Under xdist the controller takes it down (cleanup_run), after every worker.
            self.owned = self.share.worker is None

    def down_if_owned(self) -> None:
        if self.owned:
            self.owned = False
            _lab_down(self.name)


class Run:
    """One pytest run of k8snet (one per process: the xdist controller and each worker).

    It is also the reports' :class:`pytest_k8snet.report.facts.RunFacts`.
    """

    def __init__(self, config: pytest.Config, settings: Settings, worker: str | None) -> None:
        self.config = config
        self.settings = settings
        self.worker = worker  # xdist worker id, None in the controller or without xdist
        self.kind = backend_kind(settings)
        self.lab_name = target.lab_name(settings)
        self.share = XdistShare(settings.run_id, worker)
        self.signals = SigtermGuard()
        self.no_io = in_no_io_mode(config)
        self.started = time.time()
        # What the controller hears from the test reports.
        self.outcomes: dict[str, str] = {}
        self.diagnoses: list[dict[str, Any]] = []
        self.tested = Tested()
        self._backend: Backend | None = None
        self._cluster: Cluster | None = None
        self._judgement: Judgement | None = None
        self._document: dict[str, Any] | None = None
        self._all_nodes: list[Node] | None = None
        self._discovery_error: str | None = None
        self._selection: NodeSelection | None = None
        self._identity: dict[str, Any] | None = None  # noted while the cluster was up
        self._keep_hint: str | None = None
        self.kube_lab = KubeLab(settings, self.lab_name, self.share)

    # -- nodes (collection time) ------------------------------------------------------------

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

    @functools.cached_property
    def target_problem(self) -> str | None:
        """Why this run has nothing it can test (:func:`.target.unusable`), read once."""
        return target.unusable(self.settings)

    @property
    def nodes_known_offline(self) -> bool:
        """Node names can be had without cluster I/O: a lab's are computed or read locally."""
        return self.kind == "lab"

    def _discover(self) -> list[Node]:
        if self.target_problem:  # nothing to test, or an unreadable kubeconfig: no I/O tried
            raise BackendError(self.target_problem)
        if self.kind == "lab":
            from .backends.lab import LabBackend, planned_nodes

            if self.settings.auto_lab:
                return planned_nodes(self.lab_name, self.settings.lab_nodes)
            return LabBackend.attach(self.lab_name, self.settings.timeout).nodes()
        if self.no_io:
            raise BackendError("no cluster I/O in this mode")  # callers check first
        return self.backend().nodes()

    def selected_nodes(self) -> list[Node]:
        """The nodes to probe (see :func:`.selection.select_nodes`); a worker leaves the
        selection for the controller's summary, since the controller never lists nodes."""
        chosen = select_nodes(self.config, self.settings.node_selector or (), self.all_nodes())
        self._selection = chosen
        self.share.write_selection(len(chosen.nodes), chosen.left_out, chosen.probed_despite)
        return chosen.nodes

    @property
    def selection_error(self) -> str | None:
        return self._selection.error if self._selection is not None else None

    @property
    def discovery_error(self) -> str | None:
        return self._discovery_error

    # -- backend and cluster (test time) ------------------------------------------------------

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
            if self.worker is None:
                return LabBackend.create(self.lab_name, s.lab_nodes, s.timeout)
            # One lab per run under xdist: the first worker builds it, the controller removes it.
            with self.share.lab_lock():
                if self.lab_name in running_labs():
                    return LabBackend.attach(self.lab_name, s.timeout)
                backend = LabBackend.create(self.lab_name, s.lab_nodes, s.timeout)
                backend.owned = False
                return backend
        from .backends.kube import KubeBackend

        if s.kube_lab:
            self.kube_lab.up()
        return KubeBackend.from_settings(s, kubeconfig_path(s), self.config,
                                         shared_dir=self.share.worker_dir)

    def cluster(self) -> Cluster:
        if self._cluster is None:
            self.signals.install()
            nodes = self.selected_nodes()
            if not nodes:
                raise NoNodesError(self.selection_error or "no nodes selected")
            self.share.mark_created()
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
                                    shared_dir=self.share.worker_dir)
        return self._cluster

    @property
    def cluster_if_started(self) -> Cluster | None:
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

    # -- the reports' facts (RunFacts) --------------------------------------------------------

    def raw_measurements(self) -> dict[str, Any]:
        """The run's measurement caches: in-process, or the ones the xdist workers shared."""
        if self._cluster is not None:
            return dict(self._cluster.measurements)
        return self.share.measurements()

    def _measurement(self, kind: str) -> Any:
        """One cached measurement: this process's, or the one a worker shared."""
        if self._cluster is not None:
            return self._cluster.measurements.get(kind)
        return self.share.measurement(kind)

    def measured(self) -> tuple[dict[str, Any] | None, Judgement | None]:
        """The document and its judgement, once there is one; called after every test's
        report, so it never measures and reads the workers' files only until it has one."""
        if self._document is None:
            doc = self._measurement("document")
            if not isinstance(doc, dict):
                return None, None
            self._document = doc
        return self._document, self.judgement_of(self._document)

    def note_identity(self) -> None:
        """Remember who the cluster is while it is up (its backend is gone by the end of the
        run); a worker also leaves it for the controller."""
        if self._cluster is None or self._identity is not None:
            return
        self._identity = target.identity(self.settings, self._backend)
        self.share.write_identity(self._identity)

    def identity(self) -> dict[str, Any]:
        if self._identity is not None:
            return dict(self._identity)
        shared = self.share.read_identity() if self.worker is None else None
        return shared if shared is not None else target.identity(self.settings, self._backend)

    def coverage(self) -> dict[str, Any] | None:
        """What the run actually tested, for the reports (None: no k8snet test asked for
        nodes). Controller side; under xdist from the workers' reports and files.

        ``target`` (:func:`.target.describe`), ``selected`` (nodes selected, None if
        unknown), ``tested_nodes`` (names), ``tested_pairs`` (``{"all", "pod", "host"}``
        counts of ordered pairs), ``left_out`` (name -> why), ``probed_despite`` (selected
        node -> its notes: cordoned, NotReady, pressure; probed all the same),
        ``unreachable`` (name -> why the probes cannot run).
        """
        if self._selection is not None:
            chosen = self._selection
            selected, left_out, despite = (len(chosen.nodes), dict(chosen.left_out),
                                           dict(chosen.probed_despite))
        elif self.worker is not None:
            selected, left_out, despite = None, {}, {}
        else:
            selected, left_out, despite = self.share.read_selection()
        if selected is None and not self.tested.nodes:
            return None
        readiness = self._measurement("ready")
        return {
            "target": target.describe(self.settings), "selected": selected,
            "tested_nodes": sorted(self.tested.nodes), "tested_pairs": self.tested.pair_counts(),
            "left_out": left_out, "probed_despite": despite,
            "unreachable": unreachable_nodes(readiness) if isinstance(readiness, dict) else {},
        }

    # -- teardown ----------------------------------------------------------------------------

    def cleanup(self) -> None:
        """This process's probes (or lab) go, unless --k8s-keep; then the signals are restored."""
        if self._cluster is not None:
            self._cluster.close()
        backend, self._backend = self._backend, None
        if backend is not None:
            if self.settings.keep:
                # Said in the terminal summary: output during fixture teardown is captured.
                self._keep_hint = backend.keep_hint() or None
            else:
                backend.cleanup()
        if not self.settings.keep:
            self.kube_lab.down_if_owned()
        self.signals.restore()

    def cleanup_run(self) -> None:
        """Controller side under xdist: remove the run's shared resources by name, but only
        when a worker said it creates something: a run that used no k8snet fixture sends
        nothing to the cluster."""
        created = self.share.created()
        self.share.remove()
        if self.settings.keep or not created:
            return
        if self.kind == "lab" and self.settings.auto_lab:
            _lab_down(self.lab_name)
        elif self.settings.kube_lab and not self.settings.lab_name:
            # The probes go with the lab's cluster; asking its API server first would only
            # report a false leak when the cluster never came up.
            _lab_down(self.lab_name)
        elif self.kind == "kube":
            from .backends.kube import cleanup_run

            # It says so (stderr, with the kubectl command) when it cannot connect or cannot
            # remove something: a leak is never quiet.
            cleanup_run(self.settings, kubeconfig_path(self.settings))

    def keep_message(self) -> str | None:
        """How to remove what ``--k8s-keep`` left running, or None."""
        if not self.settings.keep or not self.outcomes:
            return None
        if self._keep_hint:
            return self._keep_hint
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


def _lab_down(name: str) -> None:
    from .backends.lab import down_if_running

    down_if_running(name)
