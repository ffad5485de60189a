"""The JSON results file (``--k8s-results``): every measurement, versioned schema.

Schema ``pytest-k8snet/results`` version 1 (see README, "Results file"). Fixed fields:
``ping`` {src, dst, network, loss_pct, rtt_ms}, ``path_mtu`` {src, dst, network, bytes},
``throughput`` {src, dst, mbps, loss_pct}, ``diagnoses`` {cause, nodes, pairs, message}.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .. import __version__  # noqa: F401

if TYPE_CHECKING:
    from ..state import State

SCHEMA = "pytest-k8snet/results"
VERSION = 1
DIAG_PROP = "k8snet_diagnosis"


def measurements(state: "State") -> dict[str, Any]:
    """The run's cached measurements: in-process, or the files xdist workers shared."""
    cluster = state.cluster_if_started
    if cluster is not None:
        return dict(cluster.measurements)
    d = state.shared_dir_for_run()
    out: dict[str, Any] = {}
    if d is not None and d.is_dir():
        for path in d.glob("*.pickle"):
            out[path.stem] = pickle.loads(path.read_bytes())
    return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def build(state: "State", outcomes: dict[str, str]) -> dict[str, Any]:
    m = measurements(state)
    doc: dict[str, Any] = {
        "schema": SCHEMA, "version": VERSION, "plugin_version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.started)),
        "duration_s": round(time.time() - state.started, 2),
        "cluster": state.identity(), "options": state.settings.as_dict(),
        "expected_mtu": m.get("expected-mtu"),
        "ping": [], "path_mtu": [], "throughput": [], "http": [], "dns": [], "egress": [],
        "service": [], "nodes": [], "diagnoses": list(state.diagnoses), "tests": outcomes,
    }
    for network in ("pod", "host"):
        for (src, dst), r in m.get(f"ping-{network}-56", {}).items():
            doc["ping"].append({"src": src, "dst": dst, "network": network,
                                "loss_pct": r.loss_pct, "rtt_ms": r.rtt_avg_ms})
        for (src, dst), r in m.get(f"pmtu-{network}", {}).items():
            doc["path_mtu"].append({"src": src, "dst": dst, "network": network, "bytes": r.bytes,
                                    "probes": r.probes, "seconds": r.seconds})
    for (src, dst), r in m.get("udp", {}).items():
        doc["throughput"].append({"src": src, "dst": dst, "mbps": round(r.overlay.mbps, 3),
                                  "loss_pct": r.overlay.loss_pct, "error": r.overlay.error})
    for (src, dst), r in m.get("http-1mib", {}).items():
        doc["http"].append({"src": src, "dst": dst, **_plain(r)})
    for node, r in m.get("http-service", {}).items():
        doc["http"].append({"src": node, "dst": "service", **_plain(r)})
    for node, results in m.get("dns", {}).items():
        doc["dns"] += [{"node": node, **_plain(r)} for r in results]
    for (node, network), r in m.get("egress", {}).items():
        doc["egress"].append({"node": node, "network": network, "attempts": r.attempts,
                              "failures": r.failures, "failure_rate": round(r.failure_rate, 4),
                              "failed_ports": list(r.failed_ports)})
    for node, r in m.get("service", {}).items():
        doc["service"].append(_plain(r))
    for node, r in m.get("nodecheck", {}).items():
        doc["nodes"].append(_plain(r))
    return doc


def finish(session: pytest.Session, state: "State") -> None:
    if state.worker is not None or not state.settings.results:
        return
    doc = build(state, state.outcomes)
    path = Path(state.settings.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str))
