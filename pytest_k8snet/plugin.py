"""pytest-k8snet's pytest plugin: its hook implementations only (the fixtures live in
fixtures.py, their parametrization in selection.py, the run in run.py)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from . import hooks, per_node
from .backends import Node
from .measure import Pair
from .options import add_options, resolve
from .report.facts import FACTS_KEY
from .run import RUN_KEY, Run
from .selection import PAIR_FIXTURES, matches, parametrize, uses_cluster
from .target import check_kubeconfig, describe
from .xdist_share import run_id_and_worker

pytest_plugins = ["pytest_k8snet.fixtures"]

MARKER = ("k8snet(selector=None, pairs=None): narrow a k8snet test to nodes matching "
          "selector (LABEL=VALUE) and/or a pair mode (all, ring, sample:K).")
TESTED_ATTR = "k8snet_tested"  # on call reports; xdist carries report attributes over


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    run_id, worker = run_id_and_worker(config)
    settings = resolve(config, run_id)
    check_kubeconfig(config, settings)
    run = Run(config, settings, worker)
    config.stash[RUN_KEY] = run
    config.stash[FACTS_KEY] = run
    if worker is None and getattr(config.option, "numprocesses", None):
        # The xdist controller removes the run's probes or lab at unconfigure; a SIGTERM
        # must unwind to there instead of killing it with everything left running.
        run.signals.install()
    from .report.baseline import check_option  # an unusable --k8s-baseline: usage error now

    check_option(settings.baseline)
    config.pluginmanager.register(_Outcomes(run), "k8snet-outcomes")
    if config.pluginmanager.hasplugin("html"):
        from .report import html

        config.pluginmanager.register(html.HtmlHooks(config), "k8snet-html")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    try:
        run.cleanup()
        if run.worker is None and getattr(config.option, "numprocesses", None):
            run.cleanup_run()
    finally:
        run.signals.restore()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say what is under test before anything runs: a simulated lab must never be taken
    for a cluster (no cluster I/O: the server comes from the kubeconfig file)."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return []
    target = describe(run.settings)
    return [f"k8snet target: {target['target']} [{target['chosen_by']}]"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize(metafunc, metafunc.config.stash[RUN_KEY])


@pytest.hookimpl(tryfirst=True)  # before xdist's worker sends the collected ids
def pytest_collection_finish(session: pytest.Session) -> None:
    """No target, an unreachable cluster or a selection that matches no node is one clear
    error for the run (exit 4), not a traceback per test nor a green run that tested
    nothing; only when k8snet tests were collected."""
    run = session.config.stash[RUN_KEY]
    ours = any(uses_cluster(item) for item in session.items)
    # Offline modes (--collect-only) list a kube cluster's tests without I/O, but a lab's
    # nodes are known, so a selection that matches none of them is an error there too.
    error = ((run.target_problem or run.discovery_error if not run.no_io else None)
             or run.selection_error) if ours else None
    if error and run.worker is not None:
        # A worker that raises is a crash to xdist: it runs nothing and the controller
        # reports the error (pytest_sessionfinish).
        run.share.note_usage_error(f"k8snet: {error}")
        session.items.clear()
    elif error:
        # Raised, not pytest.exit: pytest prints "ERROR: k8snet: ..." and exits 4, with no
        # "Exit:" traceback prefix, the same way as for a bad option.
        raise pytest.UsageError(f"k8snet: {error}")
    if run.no_io and not run.nodes_known_offline and session.config.option.collectonly \
            and ours:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line("k8snet: no cluster I/O in --collect-only: each node or pair test "
                          "is listed once (cluster-nodes, cluster-pairs); the nodes are listed "
                          "when the tests run.")


def pytest_k8snet_select_nodes(config: pytest.Config, nodes: list[Node]) -> list[Node]:
    """Default node selection: every ``--k8s-node-selector`` LABEL=VALUE must match.
    NotReady, cordoned and DiskPressure nodes stay in: pinned probe pods run there."""
    selectors = config.stash[RUN_KEY].settings.node_selector
    return [n for n in nodes if matches(n, selectors or ())]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    from .report import junit

    junit.attach(item, report)
    if report.when == "call":
        item.config.stash[RUN_KEY].note_identity()
        # What this test exercised, for the summary's "N nodes and M pairs tested"; an
        # attribute, not a user property, so JUnit stays as documented.
        funcargs = getattr(item, "funcargs", {})
        node = funcargs.get("k8s_node")
        nodes = [node.name] if isinstance(node, Node) else []
        pairs = [[p.src.node, p.dst.node, p.network] for f in PAIR_FIXTURES
                 if isinstance(p := funcargs.get(f), Pair)]
        doc = funcargs.get("k8s_document")
        subject = funcargs.get("k8s_node_subject")
        if isinstance(subject, str):
            # A cluster-wide node check's subject stands for every node.
            nodes = [subject] if subject != per_node.ALL_NODES else [
                str(n) for n in item.config.stash[RUN_KEY].document().get("nodes") or ()]
        if isinstance(doc, dict):
            # A per-node test's pair is its node twice: it stands for every pair from it.
            pairs = [q for a, b, net in pairs for q in (
                [[a, d, net] for _, d in per_node.pairs_from(doc, a)]
                if per_node.is_node_subject(a, b) else [[a, b, net]])]
        if nodes or pairs:
            setattr(report, TESTED_ATTR, {"nodes": nodes, "pairs": pairs})
    return report


class _Outcomes:
    """Collects outcomes and diagnoses per run. Registered per config (the logreport hook
    gets no config), and it runs in the controller under xdist, where the reports land."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.run.outcomes[report.nodeid] = report.outcome
        tested = getattr(report, TESTED_ATTR, None)
        if report.when == "call" and isinstance(tested, dict) and report.outcome != "skipped":
            self.run.tested.note(tested.get("nodes") or [],
                                 [(str(p[0]), str(p[1]), str(p[2]))
                                  for p in tested.get("pairs") or []])
        if report.when == "call":
            for name, value in report.user_properties:
                if name == "k8snet_diagnosis":
                    self.run.diagnoses.append(json.loads(str(value)))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from .report import results, terminal

    run = config.stash[RUN_KEY]
    terminal.summary(terminalreporter, run)
    hint = run.keep_message() if run.worker is None else None
    if hint:
        terminalreporter.write_line(f"k8snet: --k8s-keep: probes left running. {hint}",
                                    yellow=True)
    # Last, as pytest-html's line: the controller wrote the file at sessionfinish, which
    # runs before this summary.
    written = results.written_to(config) if run.worker is None else None
    if written is not None:
        terminalreporter.write_line(f"k8snet: results written to {written}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from .report import results

    run = session.config.stash[RUN_KEY]
    error = run.share.usage_error() if run.worker is None else None
    if error:  # the xdist workers' collection found it: the same line and exit as without
        sys.stderr.write(f"ERROR: {error}\n")
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    results.finish(session, run)
