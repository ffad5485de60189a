"""Options, their ini keys and env vars, resolved once into a frozen :class:`Settings`.

Precedence: command line > ini file > environment > default. Command-line defaults
are ``None`` so that "not given" can be told from "given as the default".
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PAIR_MODES = re.compile(r"^(all|ring|sample:[1-9]\d*)$")
SELECTOR = re.compile(r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$")
DEFAULT_IMAGE = "docker.io/nicolaka/netshoot:v0.13"
AUTO_LAB = "__auto__"


@dataclass(frozen=True)
class Option:
    name: str  # without the --k8s- prefix
    help: str
    default: Any = None
    kind: Callable[[str], Any] = str
    flag: bool = False
    env: str | None = None
    optional_value: bool = False  # --k8s-lab may come with or without a name


OPTIONS: tuple[Option, ...] = (
    Option("kubeconfig", "kubeconfig file (falls back to KUBECONFIG, then ~/.kube/config).",
           env="KUBECONFIG"),
    Option("context", "kubeconfig context to use (default: the current context)."),
    Option("backend", "auto, lab or kube. auto: kube when a kubeconfig is given or found, "
           "else a lab brought up for the run.", default="auto"),
    Option("lab", "use the running lab NAME; with no NAME, bring one up for this run and take "
           "it down afterwards.", optional_value=True),
    Option("lab-nodes", "nodes of a lab brought up for the run (1..32).", default=3, kind=int),
    Option("namespace", "namespace for the probes (default: a fresh k8snet-<run id>, created "
           "and deleted by the run)."),
    Option("probe-image", "probe image with ping, curl, dig, iperf3 and tracepath.",
           default=DEFAULT_IMAGE),
    Option("node-selector", "only nodes with this LABEL=VALUE."),
    Option("pairs", "node pairs to probe: all (every ordered pair), ring, or sample:K.",
           default="all"),
    Option("expect-mtu", "path MTU in bytes the pod network must carry (default: the probe "
           "pod's interface MTU).", kind=int),
    Option("timeout", "seconds for each probe; setup is bounded by 10x this.", default=5.0,
           kind=float),
    Option("keep", "leave the probes (or the lab) running for debugging and print how to remove "
           "them.", default=False, flag=True),
    Option("results", "write every measurement as JSON to this file."),
    Option("baseline", "a previous --k8s-results file: fail on regressions against it."),
    Option("baseline-tolerance", "throughput drop that counts as a regression, in percent.",
           default=20.0, kind=float),
    Option("egress-url", "egress target for the kube backend (the lab has its own world host).",
           default="http://example.com/"),
    Option("egress-attempts", "connections per endpoint in the egress probe.", default=50,
           kind=int),
)


@dataclass(frozen=True)
class Settings:
    """Every k8snet setting after precedence is applied; stored in ``config.stash``."""

    kubeconfig: str | None
    context: str | None
    backend: str
    lab: str | None
    lab_nodes: int
    namespace: str | None
    probe_image: str
    node_selector: str | None
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

    @property
    def auto_lab(self) -> bool:
        return self.lab == AUTO_LAB

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
        elif opt.optional_value:
            group.addoption(f"--k8s-{opt.name}", nargs="?", const=AUTO_LAB, default=None,
                            dest=dest(opt), metavar="NAME", help=helptext)
        else:
            group.addoption(f"--k8s-{opt.name}", default=None, dest=dest(opt),
                            metavar=opt.name.split("-")[-1].upper(), help=helptext)
        parser.addini(dest(opt), help=opt.help, type="string", default=None)


def _convert(opt: Option, raw: Any, source: str) -> Any:
    if opt.flag:
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in ("1", "true", "yes", "on")
    if opt.optional_value and raw in ("", None):
        return AUTO_LAB
    try:
        return opt.kind(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"k8snet: {source} for --k8s-{opt.name} must be "
                                f"{'a number' if opt.kind in (int, float) else 'text'}, "
                                f"got {raw!r}") from None


def resolve(config: pytest.Config, run_id: str) -> Settings:
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
        elif opt.optional_value and env == "":
            values[dest(opt)[4:]] = AUTO_LAB
        else:
            values[dest(opt)[4:]] = opt.default
    settings = Settings(run_id=run_id, **values)
    validate(settings)
    return settings


def validate(s: Settings) -> None:
    problems = []
    if not PAIR_MODES.match(s.pairs):
        problems.append(f"--k8s-pairs must be all, ring or sample:K, got {s.pairs!r}")
    if s.node_selector and not SELECTOR.match(s.node_selector):
        problems.append(f"--k8s-node-selector must be LABEL=VALUE, got {s.node_selector!r}")
    if s.backend not in ("auto", "lab", "kube"):
        problems.append(f"--k8s-backend must be auto, lab or kube, got {s.backend!r}")
    if not 1 <= s.lab_nodes <= 32:
        problems.append(f"--k8s-lab-nodes must be 1..32, got {s.lab_nodes}")
    if s.timeout <= 0:
        problems.append(f"--k8s-timeout must be positive, got {s.timeout:g}")
    if s.expect_mtu is not None and not 68 <= s.expect_mtu <= 65535:
        problems.append(f"--k8s-expect-mtu must be 68..65535, got {s.expect_mtu}")
    if s.egress_attempts < 1:
        problems.append("--k8s-egress-attempts must be at least 1")
    if s.baseline and not Path(s.baseline).is_file():
        problems.append(f"--k8s-baseline {s.baseline}: no such file")
    if problems:
        raise pytest.UsageError("k8snet: " + "; ".join(problems))


def backend_kind(s: Settings) -> str:
    """Which backend auto means: an explicit lab wins, then any kubeconfig, then a new lab."""
    if s.backend != "auto":
        return s.backend
    if s.lab is not None:
        return "lab"
    if s.kubeconfig or Path("~/.kube/config").expanduser().is_file():
        return "kube"
    return "lab"


def kubeconfig_path(s: Settings) -> str:
    return str(Path(s.kubeconfig or "~/.kube/config").expanduser())
