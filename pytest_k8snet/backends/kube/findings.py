"""What starting the probes found: where each probe runs, which cannot be used and why, and
per node the problems (probes kept off it) and notes (worth knowing, blocking nothing)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .. import Endpoint, Network, Node

ProbeKey = tuple[str, Network]  # (node, network)


@dataclass
class ProbeFindings:
    """Filled by the start (or, under xdist, taken from the worker that started the probes)
    and read by the backend's answers."""

    endpoints: dict[ProbeKey, Endpoint] = field(default_factory=dict)
    # Probes whose commands fail at once (exit 125) with this reason: not up, or denied.
    unusable: dict[ProbeKey, str] = field(default_factory=dict)
    # Probes admission denied while the node's other probe runs (the denial, quoted).
    unavailable: dict[ProbeKey, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # node: tools not in image
    pod_node: dict[str, str] = field(default_factory=dict)  # probe pod name: its node
    ready_probe_pods: list[str] = field(default_factory=list)  # the Service's backends
    problems: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    cluster_domain: str | None = None  # from a probe's resolv.conf
    mtu: dict[ProbeKey, int] = field(default_factory=dict)  # eth0, from the readiness check
    # Each probe's address per IP family (status.podIPs; a host-network pod's are its
    # node's): what a dual-stack cluster is measured in (backends.family).
    ips: dict[ProbeKey, dict[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def problem(self, node: str, line: str) -> None:
        self.problems.setdefault(node, []).append(line)

    def note(self, node: str, line: str) -> None:
        """Add a note; safe from the threads that create the pods."""
        with self._lock:
            self.notes.setdefault(node, []).append(line)

    def deny(self, key: ProbeKey, why: str) -> None:
        """Admission denied this probe: unavailable, and its commands fail with ``why``."""
        with self._lock:
            self.unavailable[key] = why
            self.unusable[key] = why

    def to_json(self) -> dict[str, Any]:
        """What the other xdist workers cannot learn from the pods themselves."""
        return {"problems": self.problems, "missing": self.missing,
                "unavailable": [[n, net, why] for (n, net), why in self.unavailable.items()],
                "cluster_domain": self.cluster_domain, "notes": self.notes}

    def take(self, known: Mapping[str, Any]) -> None:
        """Take what :meth:`to_json` wrote in the worker that started the probes."""
        for node, net, why in known.get("unavailable") or []:
            self.deny((str(node), "host" if net == "host" else "pod"), str(why))
        self.problems = {k: list(v) for k, v in (known.get("problems") or {}).items()}
        self.missing = {k: list(v) for k, v in (known.get("missing") or {}).items()}
        self.cluster_domain = known.get("cluster_domain") or None
        self.notes = {k: list(v) for k, v in (known.get("notes") or {}).items()}

    def record_into(self, *node_lists: list[Node]) -> None:
        """Add each node's problems and notes to its items in ``node_lists`` (replaced in
        place: callers hold these lists); drop nodes left without problems."""
        for seq in node_lists:
            for i, node in enumerate(seq):
                extra = tuple(p for p in self.problems.get(node.name, [])
                              if p not in node.problems)
                notes = tuple(n for n in self.notes.get(node.name, []) if n not in node.notes)
                if extra or notes:
                    seq[i] = replace(node, problems=node.problems + extra,
                                     notes=node.notes + notes)
        self.problems = {k: v for k, v in self.problems.items() if v}
