"""pytest-k8snet's pytest plugin: options and hooks only (fixtures live in fixtures.py)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from . import hooks
from .backends import BackendError, Node
from .cluster import node_matches, select_pairs
from .settings import add_options, resolve
from .state import STATE_KEY, State

pytest_plugins = ["pytest_k8snet.fixtures"]

MARKER = ("k8snet(selector=None, pairs=None): narrow a k8snet test to nodes matching "
          "selector (LABEL=VALUE) and/or a pair mode (all, ring, sample:K).")
PAIR_FIXTURES = ("pod_pair", "host_pair")
NODE_FIXTURES = ("k8s_node", "k8s_node_host")


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
    config.stash[STATE_KEY] = State(config, settings, worker)
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
    from .settings import backend_kind, kubeconfig_path

    named = config.getoption("k8s_kubeconfig") or config.getini("k8s_kubeconfig") \
        or config.getoption("k8s_context") or config.getini("k8s_context")
    if not named or backend_kind(settings) != "kube":
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
    state.cleanup()
    if state.worker is None and getattr(config.option, "numprocesses", None):
        state.cleanup_run()


def _marker_args(metafunc: pytest.Metafunc) -> tuple[str | None, str | None]:
    marker = metafunc.definition.get_closest_marker("k8snet")
    if marker is None:
        return None, None
    selector = marker.kwargs.get("selector", marker.args[0] if marker.args else None)
    pairs = marker.kwargs.get("pairs", marker.args[1] if len(marker.args) > 1 else None)
    return selector, pairs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wants_pairs = [f for f in PAIR_FIXTURES if f in metafunc.fixturenames]
    wants_nodes = [f for f in NODE_FIXTURES if f in metafunc.fixturenames]
    if not wants_pairs and not wants_nodes:
        return
    state = metafunc.config.stash[STATE_KEY]
    selector, pair_mode = _marker_args(metafunc)
    try:
        nodes = state.selected_nodes()
        error = None
    except BackendError as exc:
        nodes, error = [], str(exc)
    if selector:
        nodes = [n for n in nodes if node_matches(n, selector)]
    names = [n.name for n in nodes]
    if wants_nodes:
        _parametrize(metafunc, "k8s_node", names, names, error, "no nodes selected")
    if wants_pairs:
        from .settings import PAIR_MODES

        mode = pair_mode or state.settings.pairs
        if not PAIR_MODES.match(mode):
            raise pytest.UsageError(f"k8snet marker on {metafunc.definition.nodeid}: pairs must "
                                    f"be all, ring or sample:K, got {mode!r}")
        pairs = select_pairs(names, mode)
        for fixture in wants_pairs:
            _parametrize(metafunc, fixture, pairs, [f"{a}->{b}" for a, b in pairs], error,
                         "fewer than two nodes selected")


def _parametrize(metafunc: pytest.Metafunc, name: str, values: list[Any], ids: list[str],
                 error: str | None, empty_reason: str) -> None:
    if values:
        metafunc.parametrize(name, values, ids=ids, indirect=True)
        return
    reason = f"k8snet: {error}" if error else f"k8snet: {empty_reason}"
    metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                         ids=["no-nodes"], indirect=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """An unreachable cluster is one clear error for the run, not a traceback per test."""
    state = session.config.stash[STATE_KEY]
    error = state.discovery_error
    if error and not session.config.option.collectonly and session.items:
        pytest.exit(f"k8snet: {error}", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_k8snet_select_nodes(config: pytest.Config, nodes: list[Node]) -> list[Node]:
    """Default node selection: ``--k8s-node-selector``; NotReady nodes stay in."""
    selector = config.stash[STATE_KEY].settings.node_selector
    return [n for n in nodes if node_matches(n, selector)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    from .report import junit

    junit.attach(item, report)
    return report


class _Outcomes:
    """Collects outcomes and diagnoses per run. Registered per config (the logreport hook
    gets no config), and it runs in the controller under xdist, where the reports land."""

    def __init__(self, state: State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.state.outcomes[report.nodeid] = report.outcome
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
