"""pytest-k8snet's pytest plugin: options and hooks only (fixtures live in fixtures.py)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from . import hooks
from .backends import BackendError, Node
from .measure import Pair
from .selection import matches, select_pairs, split_selectors
from .options import add_options, resolve
from .report.facts import FACTS_KEY
from .run import STATE_KEY, State

pytest_plugins = ["pytest_k8snet.fixtures"]

MARKER = ("k8snet(selector=None, pairs=None): narrow a k8snet test to nodes matching "
          "selector (LABEL=VALUE) and/or a pair mode (all, ring, sample:K).")
PAIR_FIXTURES = ("pod_pair", "host_pair")
NODE_FIXTURES = ("k8s_node", "k8s_node_host")
TESTED_ATTR = "k8snet_tested"  # on call reports; xdist carries report attributes over
# Ids of the one placeholder test that stands for "every node" / "every pair" where node
# names cannot be had without cluster I/O (--collect-only, --fixtures on a kube backend).
OFFLINE_IDS = {"k8s_node": "cluster-nodes", "pod_pair": "cluster-pairs",
               "host_pair": "cluster-pairs"}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        run_id = str(workerinput["testrunuid"])[:10]
        worker: str | None = str(workerinput["workerid"])
    else:
        run_id = secrets.token_hex(5)
        if config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None):
            # xdist passes this to every worker: they share one probe set named after it.
            if not getattr(config.option, "testrunuid", None):
                config.option.testrunuid = run_id + secrets.token_hex(11)
            run_id = str(config.option.testrunuid)[:10]
        worker = None
    settings = resolve(config, run_id)
    _check_kubeconfig(config, settings)
    state = config.stash[STATE_KEY] = State(config, settings, worker)
    config.stash[FACTS_KEY] = state
    if worker is None and getattr(config.option, "numprocesses", None):
        # The xdist controller removes the run's probes or lab at unconfigure; a SIGTERM
        # must unwind to there instead of killing it with everything left running.
        state.install_signal_handlers()
    from .report.baseline import check_option  # an unusable --k8s-baseline: usage error now

    check_option(config.stash[STATE_KEY].settings.baseline)
    config.pluginmanager.register(_Outcomes(config.stash[STATE_KEY]), "k8snet-outcomes")
    if config.pluginmanager.hasplugin("html"):
        from .report import html

        config.pluginmanager.register(html.HtmlHooks(config), "k8snet-html")


def _check_kubeconfig(config: pytest.Config, settings: Any) -> None:
    """A kubeconfig or context the user named must exist: a usage error before collection.

    Only the local file is read (no cluster I/O). A KUBECONFIG inherited from the
    environment is checked later, when a k8snet test actually needs the cluster, so that
    unrelated test runs in the same environment are not affected.
    """
    from .options import backend_kind, kubeconfig_path

    named = config.getoption("k8s_kubeconfig") or config.getini("k8s_kubeconfig") \
        or config.getoption("k8s_context") or config.getini("k8s_context")
    if not named or backend_kind(settings) != "kube" or settings.in_cluster:
        return
    import yaml

    path = kubeconfig_path(settings)
    try:
        with open(path) as fh:
            doc = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise pytest.UsageError(f"k8snet: cannot read kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise pytest.UsageError(f"k8snet: kubeconfig {path} is not valid YAML: {exc}") from None
    contexts = [c.get("name") for c in doc.get("contexts") or [] if isinstance(c, dict)]
    if settings.context and settings.context not in contexts:
        raise pytest.UsageError(f"k8snet: context {settings.context!r} is not in {path} "
                                f"(contexts: {', '.join(map(str, contexts)) or 'none'})")
    if not settings.context and not doc.get("current-context"):
        raise pytest.UsageError(f"k8snet: {path} has no current-context; pass --k8s-context")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    try:
        state.cleanup()
        if state.worker is None and getattr(config.option, "numprocesses", None):
            state.cleanup_run()
    finally:
        state.restore_signal_handlers()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say what is under test before anything runs: a simulated lab must never be taken
    for a cluster (no cluster I/O: the server comes from the kubeconfig file)."""
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return []
    target = state.target()
    return [f"k8snet target: {target['target']} [{target['chosen_by']}]"]


def _marker_args(metafunc: pytest.Metafunc) -> tuple[str | None, str | None]:
    marker = metafunc.definition.get_closest_marker("k8snet")
    if marker is None:
        return None, None
    selector = marker.kwargs.get("selector", marker.args[0] if marker.args else None)
    pairs = marker.kwargs.get("pairs", marker.args[1] if len(marker.args) > 1 else None)
    return selector, pairs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize node and pair fixtures by node name (ids ``node-1``, ``node-1->node-2``).

    Node names come from the cluster at collection: one read-only node list, only when a
    collected test asks for a node or pair fixture. A lab's are computed locally. In
    ``--collect-only`` and ``--fixtures`` a kube cluster is not contacted: each test
    appears once with a placeholder id (``cluster-nodes``, ``cluster-pairs``).
    """
    wants_pairs = [f for f in PAIR_FIXTURES if f in metafunc.fixturenames]
    wants_nodes = [f for f in NODE_FIXTURES if f in metafunc.fixturenames]
    if not wants_pairs and not wants_nodes:
        return
    state = metafunc.config.stash[STATE_KEY]
    selector, pair_mode = _marker_args(metafunc)
    from .options import PAIR_MODES

    mode = pair_mode or state.settings.pairs
    if wants_pairs and not PAIR_MODES.match(mode):
        raise pytest.UsageError(f"k8snet marker on {metafunc.definition.nodeid}: pairs must "
                                f"be all, ring or sample:K, got {mode!r}")
    targets = (["k8s_node"] if wants_nodes else []) + wants_pairs
    if state.no_io and not state.nodes_known_offline:
        reason = ("k8snet: the nodes are listed when the tests run (no cluster I/O in "
                  "--collect-only or --fixtures)")
        for name in targets:
            metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                                 ids=[OFFLINE_IDS[name]], indirect=True)
        return
    try:
        nodes = state.selected_nodes()
        error = state.selection_error
    except BackendError as exc:
        nodes, error = [], str(exc)
    if selector and nodes:
        narrowed = [n for n in nodes if matches(n, split_selectors(selector))]
        if not narrowed:
            error = (f"the k8snet marker's selector {selector} matches none of the "
                     f"{len(nodes)} selected nodes")
        nodes = narrowed
    names = [n.name for n in nodes]
    if wants_nodes:
        _parametrize(metafunc, "k8s_node", names, names, error, "no nodes selected",
                     "no-nodes")
    if wants_pairs:
        pairs = select_pairs(names, mode)
        few = (f"pair tests need at least two nodes; {len(names)} selected"
               + (f" ({names[0]})" if names else ""))
        for fixture in wants_pairs:
            _parametrize(metafunc, fixture, pairs, [f"{a}->{b}" for a, b in pairs],
                         error, few, "fewer-than-2-nodes" if names else "no-nodes")


def _parametrize(metafunc: pytest.Metafunc, name: str, values: list[Any], ids: list[str],
                 error: str | None, empty_reason: str, empty_id: str) -> None:
    if values:
        metafunc.parametrize(name, values, ids=ids, indirect=True)
        return
    reason = f"k8snet: {error}" if error else f"k8snet: {empty_reason}"
    metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                         ids=[empty_id], indirect=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """An unreachable cluster, or a selection that matches no node, is one clear error for
    the run (exit 4), not a traceback per test nor a green run that tested nothing."""
    state = session.config.stash[STATE_KEY]
    error = state.discovery_error
    if error and not session.config.option.collectonly and session.items:
        pytest.exit(f"k8snet: {error}", returncode=pytest.ExitCode.USAGE_ERROR)
    if state.selection_error and session.items:
        pytest.exit(f"k8snet: {state.selection_error}", returncode=pytest.ExitCode.USAGE_ERROR)
    if state.no_io and not state.nodes_known_offline and session.config.option.collectonly \
            and any(_k8snet_item(item) for item in session.items):
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line("k8snet: no cluster I/O in --collect-only: each node or pair test "
                          "is listed once (cluster-nodes, cluster-pairs); the nodes are listed "
                          "when the tests run.")


def _k8snet_item(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return any(f in names for f in PAIR_FIXTURES + NODE_FIXTURES)


def pytest_k8snet_select_nodes(config: pytest.Config, nodes: list[Node]) -> list[Node]:
    """Default node selection: every ``--k8s-node-selector`` LABEL=VALUE must match.
    NotReady, cordoned and DiskPressure nodes stay in: pinned probe pods run there."""
    selectors = config.stash[STATE_KEY].settings.node_selector
    return [n for n in nodes if matches(n, selectors or ())]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    from .report import junit

    item.config.stash[STATE_KEY].note_identity()
    junit.attach(item, report)
    if report.when == "call":
        # What this test exercised, for the summary's "N nodes and M pairs tested"; an
        # attribute, not a user property, so JUnit stays as documented.
        funcargs = getattr(item, "funcargs", {})
        node = funcargs.get("k8s_node")
        pairs = [[p.src.node, p.dst.node, p.network] for f in PAIR_FIXTURES
                 if isinstance(p := funcargs.get(f), Pair)]
        if isinstance(node, Node) or pairs:
            setattr(report, TESTED_ATTR, {"nodes": [node.name] if isinstance(node, Node)
                                          else [], "pairs": pairs})
    return report


class _Outcomes:
    """Collects outcomes and diagnoses per run. Registered per config (the logreport hook
    gets no config), and it runs in the controller under xdist, where the reports land."""

    def __init__(self, state: State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.state.outcomes[report.nodeid] = report.outcome
        tested = getattr(report, TESTED_ATTR, None)
        if report.when == "call" and isinstance(tested, dict) and report.outcome != "skipped":
            self.state.note_tested(tested.get("nodes") or [],
                                   [(str(p[0]), str(p[1]), str(p[2]))
                                    for p in tested.get("pairs") or []])
        if report.when == "call":
            for name, value in report.user_properties:
                if name == "k8snet_diagnosis":
                    self.state.diagnoses.append(json.loads(str(value)))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from .report import terminal

    state = config.stash[STATE_KEY]
    terminal.summary(terminalreporter, state)
    hint = state.keep_message() if state.worker is None else None
    if hint:
        terminalreporter.write_line(f"k8snet: --k8s-keep: probes left running. {hint}",
                                    yellow=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[STATE_KEY]
    from .report import results

    results.finish(session, state)
