"""A lab's record: what was built, kept in ``$K8SNET_LAB_STATE/NAME/state.json``.

Everything that outlives the process that built a lab is found from here: the record
itself (:class:`Lab`, :func:`load`), which labs run (:func:`running_labs`), who made them
(:func:`lab_owner`) and the lock that serialises changes to one lab (:func:`locked`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import netns as ns
from . import owner as owner_mod
from .netns import LabError

STATE_ROOT = Path(os.environ.get("K8SNET_LAB_STATE", "/run/k8snet"))
PREFIX = "k8snet-"
# Every namespace a lab creates, the real cluster's management and control-plane ones included.
NETNS_RE = re.compile(r"^k8snet-(?P<lab>.+?)-(?:sw|gw|world|dns|mgmt|cp|node-\d+(?:-probe|-echo)?)$")


@dataclass
class Lab:
    """A built lab, as recorded in its state file (``k8snet-lab status --json``)."""

    name: str
    spec: dict[str, Any]
    switch_netns: str
    nodes: list[dict[str, Any]]
    service: dict[str, Any]
    dns: dict[str, Any]
    world: dict[str, Any]
    gateway: dict[str, Any]
    faults: list[dict[str, Any]] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    created: float = 0.0
    kubernetes: dict[str, Any] = field(default_factory=dict)  # empty: no real cluster
    owner: dict[str, Any] = field(default_factory=dict)  # who created it: see lab.owner

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    def node(self, name: str) -> dict[str, Any]:
        for node in self.nodes:
            if node["name"] == name:
                return node
        known = ", ".join(n["name"] for n in self.nodes)
        raise LabError(f"unknown node {name!r} in lab {self.name} (nodes: {known})")

    def target_netns(self, target: str) -> str:
        """``node-1`` is the node (host network); ``node-1/probe`` its probe pod."""
        node_name, _, part = target.partition("/")
        node = self.node(node_name)
        if part == "":
            return str(node["netns"])
        if part in ("probe", "echo") and self.kubernetes:
            raise LabError(f"{self.name} runs real Kubernetes: its pods are reached with "
                           f"KUBECONFIG={self.kubernetes['kubeconfig']} kubectl exec")
        if part in ("probe", "echo"):
            return str(node[part]["netns"])
        raise LabError(f"unknown target {target!r}: use NODE, NODE/probe or NODE/echo")

    def all_netns(self) -> list[str]:
        names = [self.switch_netns, self.gateway["netns"], self.world["netns"], self.dns["netns"]]
        for node in self.nodes:
            # With real Kubernetes the pods are the kubelets' own: the lab builds none.
            names += [node["netns"]] + ([] if self.kubernetes else
                                        [node["probe"]["netns"], node["echo"]["netns"]])
        if self.kubernetes:
            names += [self.kubernetes["mgmt_netns"], self.kubernetes["cp_netns"]]
        return names

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.state_dir / "state.json")


def kubeconfig_path(name: str) -> Path:
    """Where lab ``name``, built with real Kubernetes, keeps its cluster's kubeconfig."""
    return STATE_ROOT / name / "kubeconfig"


def _record(name: str) -> dict[str, Any]:
    """Lab ``name``'s state file as written, or {} when it is missing or unreadable."""
    try:
        data = json.loads((STATE_ROOT / name / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def runs_kubernetes(name: str) -> bool:
    """Lab ``name`` is recorded as built with real Kubernetes (no I/O to any cluster)."""
    return bool(_record(name).get("kubernetes"))


def load(name: str) -> Lab:
    path = STATE_ROOT / name / "state.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} is running (see `k8snet-lab status --all`)") from None
    known = {f.name for f in fields(Lab)}  # a newer version's state file may carry more
    lab = Lab(**{k: v for k, v in data.items() if k in known})
    if not ns.netns_exists(lab.switch_netns):
        raise LabError(f"lab {name!r} has a state file but its namespaces are gone; "
                       f"run `k8snet-lab down {name}`")
    return lab


def running_labs() -> list[str]:
    names = set()
    for netns_name in ns.list_netns(PREFIX):
        m = NETNS_RE.match(netns_name)
        if m:
            names.add(m.group("lab"))
    if STATE_ROOT.is_dir():
        names.update(p.name for p in STATE_ROOT.iterdir() if (p / "state.json").exists())
    return sorted(names)


def lab_netns(name: str) -> list[str]:
    """The namespaces of lab ``name`` that exist now (its record may be gone)."""
    return [n for n in ns.list_netns(f"{PREFIX}{name}-")
            if (m := NETNS_RE.match(n)) and m.group("lab") == name]


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise changes to one lab across processes (fault add/remove, up, down).

    The helpers run under the lock hold it too, so a killed ``up`` keeps its lab locked
    until the last of them has finished.
    """
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(lock_path(name), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with ns.lent_to_helpers(fh.fileno()):
            yield


def lock_path(name: str) -> Path:
    return STATE_ROOT / f".{name}.lock"


def lab_owner(name: str) -> dict[str, Any]:
    """The creator recorded in lab ``name``'s state file; empty if unknown."""
    owner = _record(name).get("owner")
    return owner if isinstance(owner, dict) else {}


def owned_labs(me: dict[str, Any] | None = None) -> list[str]:
    """Running labs created by ``me`` (default: the caller): same person, same run marker."""
    return [n for n in running_labs() if owner_mod.owns(lab_owner(n), me)]
