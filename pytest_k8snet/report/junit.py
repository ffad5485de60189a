"""Per-test data for JUnit (``user_properties``) and for the other reports.

Suite tests call :func:`record` with what they measured; it lands in the test's
``user_properties``, which ``--junitxml`` writes as ``<property>`` elements of the
test case and which xdist carries from the workers to the controller.

Property names: ``src``, ``dst``, ``network``, ``rtt_ms``, ``loss_pct``, ``path_mtu``,
``throughput_mbps`` and, on failures, ``cause``. After a test's call, :func:`attach`
completes a pair test's properties with the pair's other measurements taken so far
in this process (``rtt_ms``, ``loss_pct`` from the small pings, ``path_mtu``), so a
path-MTU test also says how the pair pings, and a ping test its path MTU when that
was already measured.
"""

from __future__ import annotations

from typing import Any

import pytest

PROPERTY_NAMES = ("src", "dst", "network", "rtt_ms", "loss_pct", "path_mtu", "throughput_mbps",
                  "cause")
RAW_KEY = pytest.StashKey[list[str]]()
NOT_A_NODE = ("service", "egress")


def record(request: pytest.FixtureRequest, raw: str | None = None, **props: Any) -> None:
    """Attach measurements (``src=``, ``rtt_ms=`` ...) and optional raw probe output."""
    item = request.node
    for key, value in props.items():
        if value is not None:
            item.user_properties.append((key, value if isinstance(value, (int, float, str))
                                         else str(value)))
    if raw:
        item.stash.setdefault(RAW_KEY, []).append(raw)


def completed(props: list[tuple[str, object]], measurements: dict[str, Any]
              ) -> list[tuple[str, object]]:
    """The properties a pair test lacks (rtt_ms, loss_pct, path_mtu) that ``measurements``
    (a :class:`~pytest_k8snet.Cluster`'s cache) already holds for its pair."""
    have = {str(k): v for k, v in props}
    src, dst, network = have.get("src"), have.get("dst"), have.get("network")
    if not (src and dst and network) or dst in NOT_A_NODE:
        return []
    key = (src, dst)
    out: list[tuple[str, object]] = []
    ping = measurements.get(f"ping-{network}-56", {}).get(key)
    if ping is not None:
        if "rtt_ms" not in have and ping.rtt_avg_ms is not None:
            out.append(("rtt_ms", ping.rtt_avg_ms))
        if "loss_pct" not in have:
            out.append(("loss_pct", ping.loss_pct))
    pmtu = measurements.get(f"pmtu-{network}", {}).get(key)
    if pmtu is not None and "path_mtu" not in have:
        out.append(("path_mtu", pmtu.bytes))
    return out


def attach(item: pytest.Item, report: pytest.TestReport) -> None:
    """After the call: complete the properties; on failure the raw probe output goes in
    the report as a section (the HTML report adds it as an extra)."""
    if report.when != "call":
        return
    from ..run import RUN_KEY as STATE_KEY
    from .results import note_identity

    state = item.config.stash.get(STATE_KEY, None)
    cluster = state.cluster_if_started if state is not None else None
    if state is not None and cluster is not None:
        note_identity(state)
        more = completed(item.user_properties, cluster.measurements)
        # JUnit reads the teardown report, which copies item.user_properties; this report
        # (the call's) was built before the additions, so it gets them too.
        item.user_properties.extend(more)
        report.user_properties.extend(more)
    if report.failed:
        for raw in item.stash.get(RAW_KEY, []):
            report.sections.append(("k8snet probe output", raw))
