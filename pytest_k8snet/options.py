"""Options, their ini keys and env vars, resolved once into a frozen :class:`Settings`.

Precedence: command line > ini file > environment > default. Command-line defaults
are ``None`` so that "not given" can be told from "given as the default".
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

PAIR_MODES = re.compile(r"^(all|ring|sample:[1-9]\d*)$")
EXPENSIVE_MODES = re.compile(r"^(auto|all|cover:[1-9]\d*)$")
SELECTOR = re.compile(r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$")
DEFAULT_IMAGE = "docker.io/nicolaka/netshoot:v0.13"
# Packet loss in percent that fails a pair; named once, for the option and Settings built by hand.
DEFAULT_LOSS_THRESHOLD = 5.0
DEFAULT_SETUP_TIMEOUT = 300.0
# Nodes above which the pair tests and reports grow with nodes, not pairs: 32 nodes are
# 992 pairs, 4 pair tests each.
DEFAULT_PER_NODE_THRESHOLD = 32
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# A pod's service account, as client-go's rest.InClusterConfig finds it: both must be there.
SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
NO_TARGET_KIND = "none"
NO_TARGET = ("no cluster to test: no kubeconfig (--k8s-kubeconfig, KUBECONFIG or "
             "~/.kube/config) and not running in a pod. Give a kubeconfig, or --k8s-lab for a "
             "simulated lab on this machine (root), or --k8s-lab-name NAME for a running one")


@dataclass(frozen=True)
class Option:
    name: str  # without the --k8s- prefix
    help: str
    default: Any = None
    kind: Callable[[str], Any] = str
    flag: bool = False
    env: str | None = None
    multi: bool = False  # repeatable on the command line; a comma list in ini and env


OPTIONS: tuple[Option, ...] = (
    Option("kubeconfig", "kubeconfig file (falls back to KUBECONFIG, then ~/.kube/config).",
           env="KUBECONFIG"),
    Option("context", "kubeconfig context to use (default: the current context)."),
    Option("backend", "auto, lab or kube. auto: a lab when --k8s-lab or --k8s-lab-name is "
           "given, else kube when a kubeconfig is given or found or when running in a pod "
           "(its service account); with none of these a run with k8snet tests is a usage "
           "error: a simulated lab is tested only when asked for.",
           default="auto"),
    # A flag plus a separate name option: an optional value (``--k8s-lab [NAME]``) ate the
    # next argument, so ``pytest --k8s-lab tests/`` looked for a lab named ``tests/``.
    Option("lab", "test a lab (simulated cluster network): bring one up for this run and take "
           "it down afterwards, or use --k8s-lab-name.", default=False, flag=True),
    Option("lab-name", "use the running lab NAME (implies --k8s-lab)."),
    Option("lab-kubernetes", "the lab runs a real Kubernetes cluster (kubelets, containerd, "
           "CoreDNS; root, binaries built once by `k8snet-lab build`) and the run tests it "
           "through the kube backend: with --k8s-lab one is brought up for the run; a lab "
           "named by --k8s-lab-name that was built with --kubernetes is used this way anyway.",
           default=False, flag=True),
    Option("lab-nodes", "nodes of a lab brought up for the run (1..128).", default=3, kind=int),
    Option("namespace", "namespace for the probes (default: a fresh k8snet-<run id>, created "
           "and deleted by the run)."),
    Option("probe-image", "probe image with ping, curl, dig, iperf3 and tracepath.",
           default=DEFAULT_IMAGE),
    Option("node-selector", "only nodes with this LABEL=VALUE; repeat it or give a comma list "
           "for several (a node must match all). Nodes whose kubernetes.io/os is not linux, "
           "Fargate and virtual-kubelet nodes are always left out (the summary says so).",
           default=(), multi=True),
    Option("pairs", "node pairs to probe: all (every ordered pair), ring, or sample:K.",
           default="all"),
    Option("expect-mtu", "path MTU in bytes the pod network must carry (default: the probe "
           "pod's interface MTU).", kind=int),
    Option("timeout", "seconds for each probe.", default=5.0, kind=float),
    Option("setup-timeout", "seconds to wait for the probes to start (image pulls included).",
           default=DEFAULT_SETUP_TIMEOUT, kind=float),
    Option("keep", "leave the probes (or the lab) running for debugging and print how to remove "
           "them.", default=False, flag=True),
    Option("results", "write every measurement as JSON to this file."),
    Option("baseline", "a previous --k8s-results file: fail on regressions against it."),
    Option("baseline-tolerance", "throughput drop that counts as a regression, in percent.",
           default=20.0, kind=float),
    Option("egress-url", "egress target for the kube backend (the lab has its own world host).",
           default="http://example.com/"),
    Option("external-name", "host name test_dns resolves besides the cluster's own names "
           "(default: the egress URL's host; with an IP address there, external DNS is not "
           "checked and the report says so)."),
    Option("loss-threshold", "packet loss in percent that fails a pair (UDP through the overlay, "
           "ping); a suspect pair is measured again, longer, before it fails. Loss of "
           "everything is a blocked port; loss above this is a lossy path.",
           default=DEFAULT_LOSS_THRESHOLD, kind=float),
    Option("egress-attempts", "connections per endpoint in the egress probe.", default=50,
           kind=int),
    Option("per-node-threshold", "above this many nodes the suite's pair tests run one per "
           "source node (test_pod_ping[node-17] fails listing its failing peers), JUnit gets "
           "the failing pairs as properties, the HTML matrix is drawn as an image and the "
           "results file holds its long sections as columns; at or below it, one test per "
           "pair.", default=DEFAULT_PER_NODE_THRESHOLD, kind=int),
    Option("expensive-pairs", "pairs the expensive probes (1 MiB over HTTP, UDP through the "
           "overlay) measure, among the pairs --k8s-pairs selects: all; cover:K, a covering "
           "sample where every node is source and destination K times, plus every pair a "
           "cheap probe (ping, DF path MTU) flagged; auto: all up to --k8s-per-node-threshold "
           "nodes, cover:3 above. Pairs left out skip their expensive tests, saying so.",
           default="auto"),
)


OPTIONS_BY_NAME = {opt.name: opt for opt in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Every k8snet setting after precedence is applied; stored in ``config.stash``."""

    kubeconfig: str | None
    context: str | None
    backend: str
    lab: bool
    lab_nodes: int
    namespace: str | None
    probe_image: str
    node_selector: tuple[str, ...]
    pairs: str
    expect_mtu: int | None
    timeout: float
    keep: bool
    results: str | None
    baseline: str | None
    baseline_tolerance: float
    egress_url: str
    egress_attempts: int
    run_id: str
    # Defaults below: code that builds Settings by hand (tests) need not know them.
    lab_name: str | None = None
    setup_timeout: float = DEFAULT_SETUP_TIMEOUT
    lab_kubernetes: bool = False
    loss_threshold: float = DEFAULT_LOSS_THRESHOLD
    external_name: str | None = None
    per_node_threshold: int = DEFAULT_PER_NODE_THRESHOLD
    expensive_pairs: str = "auto"
    # Resolved once from the options and the environment (see resolve_backend):
    kind: str = ""  # the backend this run uses: "lab" or "kube" ("": not resolved yet)
    in_cluster: bool = False  # kube through the pod's service account, no kubeconfig
    kind_reason: str = ""  # why, for the terminal header and the results file

    @property
    def kube_lab(self) -> bool:
        """The kube backend on the real cluster of a lab (one brought up for the run unless
        --k8s-lab-name names it)."""
        return backend_kind(self) == "kube" and bool(self.lab or self.lab_name)

    @property
    def auto_lab(self) -> bool:
        """A lab brought up (and taken down) by this run, rather than a running one."""
        return backend_kind(self) == "lab" and not self.lab_name

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def dest(opt: Option) -> str:
    return "k8s_" + opt.name.replace("-", "_")


def env_name(opt: Option) -> str:
    return opt.env or "K8SNET_" + opt.name.replace("-", "_").upper()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("k8snet", "Kubernetes network acceptance tests (pytest-k8snet)")
    for opt in OPTIONS:
        helptext = f"{opt.help} [ini: {dest(opt)}, env: {env_name(opt)}]"
        if opt.flag:
            group.addoption(f"--k8s-{opt.name}", action="store_true", default=None,
                            dest=dest(opt), help=helptext)
        elif opt.multi:
            group.addoption(f"--k8s-{opt.name}", action="append", default=None, dest=dest(opt),
                            metavar=opt.name.split("-")[-1].upper(), help=helptext)
        else:
            group.addoption(f"--k8s-{opt.name}", default=None, dest=dest(opt),
                            metavar=opt.name.split("-")[-1].upper(), help=helptext)
        parser.addini(dest(opt), help=opt.help, type="string", default=None)


def _convert(opt: Option, raw: Any, source: str) -> Any:
    if opt.flag:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise pytest.UsageError(f"k8snet: {source} for --k8s-{opt.name} must be one of "
                                f"{', '.join(TRUE_WORDS + FALSE_WORDS)}, got {raw!r}")
    if opt.multi:
        items = raw if isinstance(raw, list) else [raw]
        return tuple(part.strip() for item in items for part in str(item).split(",")
                     if part.strip())
    try:
        return opt.kind(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"k8snet: {source} for --k8s-{opt.name} must be "
                                f"{'a number' if opt.kind in (int, float) else 'text'}, "
                                f"got {raw!r}") from None


def resolve(config: pytest.Config, run_id: str) -> Settings:
    """The settings of this run: each option from the command line, else the ini file, else
    its environment variable, else its default; then validated and the backend decided."""
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        cli = config.getoption(dest(opt))
        ini = config.getini(dest(opt))
        env = os.environ.get(env_name(opt))
        if cli is not None:
            values[dest(opt)[4:]] = _convert(opt, cli, "the command line")
        elif ini not in (None, ""):
            values[dest(opt)[4:]] = _convert(opt, ini, f"ini {dest(opt)}")
        elif env not in (None, ""):
            values[dest(opt)[4:]] = _convert(opt, env, f"env {env_name(opt)}")
        else:
            values[dest(opt)[4:]] = opt.default
    settings = Settings(run_id=run_id, **values)
    validate(settings)
    kind, in_cluster, reason = resolve_backend(settings)
    settings = replace(settings, kind=kind, in_cluster=in_cluster, kind_reason=reason)
    if settings.kube_lab:
        # The lab's cluster pulls from no registry and has no internet: its own probe image
        # and world host stand in for the defaults, unless the user chose others.
        from .backends.lab import KUBE_LAB_PROBE_IMAGE, LAB_EGRESS_URL

        if settings.probe_image == DEFAULT_IMAGE:
            settings = replace(settings, probe_image=KUBE_LAB_PROBE_IMAGE)
        if settings.egress_url == OPTIONS_BY_NAME["egress-url"].default:
            settings = replace(settings, egress_url=LAB_EGRESS_URL)
    return settings


def validate(s: Settings) -> None:
    problems = []
    if not PAIR_MODES.match(s.pairs):
        problems.append(f"--k8s-pairs must be all, ring or sample:K, got {s.pairs!r}")
    for selector in s.node_selector or ():
        if not SELECTOR.match(selector):
            problems.append(f"--k8s-node-selector must be LABEL=VALUE, got {selector!r}")
    if s.backend not in ("auto", "lab", "kube"):
        problems.append(f"--k8s-backend must be auto, lab or kube, got {s.backend!r}")
    from .backends.lab import MAX_LAB_NODES

    if not 1 <= s.lab_nodes <= MAX_LAB_NODES:
        problems.append(f"--k8s-lab-nodes must be 1..{MAX_LAB_NODES}, got {s.lab_nodes}")
    if s.timeout <= 0:
        problems.append(f"--k8s-timeout must be positive, got {s.timeout:g}")
    if s.setup_timeout <= 0:
        problems.append(f"--k8s-setup-timeout must be positive, got {s.setup_timeout:g}")
    if s.lab_name and s.backend == "kube":
        problems.append("--k8s-lab-name names a lab, but --k8s-backend is kube")
    if s.lab and s.backend == "kube":
        problems.append("--k8s-lab asks for a lab, but --k8s-backend is kube")
    if s.expect_mtu is not None and not 68 <= s.expect_mtu <= 65535:
        problems.append(f"--k8s-expect-mtu must be 68..65535, got {s.expect_mtu}")
    if not 0 <= s.loss_threshold < 100:
        problems.append(f"--k8s-loss-threshold must be 0..99.9 percent, got {s.loss_threshold:g}")
    if s.egress_attempts < 1:
        problems.append("--k8s-egress-attempts must be at least 1")
    if s.per_node_threshold < 1:
        problems.append(f"--k8s-per-node-threshold must be at least 1, got "
                        f"{s.per_node_threshold}")
    if not EXPENSIVE_MODES.match(s.expensive_pairs):
        problems.append(f"--k8s-expensive-pairs must be auto, all or cover:K, got "
                        f"{s.expensive_pairs!r}")
    if s.baseline and not Path(s.baseline).is_file():
        problems.append(f"--k8s-baseline {s.baseline}: no such file")
    if problems:
        raise pytest.UsageError("k8snet: " + "; ".join(problems))


def in_a_pod() -> bool:
    """Running inside a Kubernetes pod with a service account (a CI runner pod)."""
    return bool(os.environ.get(SERVICE_HOST_ENV)) and Path(SERVICE_ACCOUNT_TOKEN).is_file()


def resolve_backend(s: Settings) -> tuple[str, bool, str]:
    """(kind, in_cluster, why): which backend this run uses, decided once.

    auto: a lab asked for wins, then a kubeconfig (given or ~/.kube/config), then the
    service account of the pod we run in; with none of these there is nothing to test.
    """
    from .backends.lab import runs_kubernetes

    kubeconfig = s.kubeconfig or ""
    found = Path("~/.kube/config").expanduser().is_file()
    if (s.lab or s.lab_name) and s.backend != "lab" and (
            s.lab_kubernetes or (s.lab_name and runs_kubernetes(s.lab_name))):
        which = f"running lab {s.lab_name}" if s.lab_name else "a lab brought up for this run"
        return "kube", False, f"--k8s-lab-kubernetes: the real cluster of {which}"
    if s.backend == "lab" or (s.backend == "auto" and (s.lab or s.lab_name)):
        how = "--k8s-backend lab" if s.backend == "lab" else (
            "--k8s-lab-name" if s.lab_name else "--k8s-lab")
        return "lab", False, f"{how} asked for a lab"
    if kubeconfig or found:
        why = f"kubeconfig {kubeconfig or '~/.kube/config'}"
        return "kube", False, (f"--k8s-backend kube, {why}" if s.backend == "kube"
                               else f"auto: {why}")
    if in_a_pod():
        return "kube", True, (("--k8s-backend kube" if s.backend == "kube" else "auto")
                              + ": no kubeconfig, running in a pod: its service account")
    if s.backend == "kube":
        return "kube", False, "--k8s-backend kube (no kubeconfig found)"
    # Never a simulated lab nobody asked for: a CI job that forgot to mount its kubeconfig
    # would test this machine's namespaces and go green. A run that has k8snet tests to run
    # then stops with NO_TARGET (exit 4); other test runs in this environment are unaffected.
    return NO_TARGET_KIND, False, "auto: no kubeconfig and not in a pod"


def backend_kind(s: Settings) -> str:
    """Which backend this run uses: ``lab``, ``kube``, or ``none`` (nothing to test:
    see NO_TARGET)."""
    return s.kind or resolve_backend(s)[0]


def kubeconfig_path(s: Settings) -> str:
    """The kubeconfig to load; ``""`` when the run uses the pod's service account
    (``s.in_cluster``): the kube backend then loads the in-cluster config."""
    if s.in_cluster:
        return ""
    if s.kube_lab:
        from .backends.lab import kubeconfig_of

        return kubeconfig_of(s.lab_name or f"r{s.run_id}")
    return str(Path(s.kubeconfig or "~/.kube/config").expanduser())
