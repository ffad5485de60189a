"""Per-test data for JUnit (``user_properties``) and for the other reports.

Suite tests call :func:`record` with what they measured; it lands in the test's
``user_properties``, which ``--junitxml`` writes as ``<property>`` elements of the
test case and which xdist carries from the workers to the controller.

Property names: ``src``, ``dst``, ``network``, ``rtt_ms``, ``loss_pct``, ``path_mtu``,
``throughput_mbps`` and, on failures, ``cause``; on every test that used the cluster,
``k8snet_target`` (the one-line target) and ``simulated`` (``true`` for a lab run). After a test's call, :func:`attach`
completes a pair test's properties with the pair's other numbers in the run's
measurement document (``rtt_ms``, ``loss_pct`` from the small pings, ``path_mtu``), so a
path-MTU test also says how the pair pings, and a UDP test its path MTU: one source, the
document the tests were judged on, the same in every xdist worker.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..selection import uses_cluster
from .facts import FACTS_KEY

RAW_KEY = pytest.StashKey[list[str]]()
NOT_A_NODE = ("service", "egress")  # a dst that is no pair's end: nothing to complete


def record(request: pytest.FixtureRequest, raw: str | None = None, **props: Any) -> None:
    """Attach measurements (``src=``, ``rtt_ms=`` ...) and optional raw probe output."""
    item = request.node
    for key, value in props.items():
        if value is not None:
            item.user_properties.append((key, value if isinstance(value, (int, float, str))
                                         else str(value)))
    if raw:
        item.stash.setdefault(RAW_KEY, []).append(raw)


def pair_entry(doc: dict[str, Any], section: str, src: str, dst: str,
               network: str = "pod", family: str | None = None) -> dict[str, Any]:
    """The document's entry of ``section`` for one pair on one network ({} when none); on
    a dual-stack cluster, of ``family`` (None: the first entry, the primary family's)."""
    return next((e for e in doc.get(section) or [] if e.get("src") == src
                 and e.get("dst") == dst and e.get("network", "pod") == network
                 and (family is None or e.get("family") == family)), {})


def completed(props: list[tuple[str, object]], doc: dict[str, Any]
              ) -> list[tuple[str, object]]:
    """The properties a pair test lacks (rtt_ms, loss_pct, path_mtu) that the measurement
    document ``doc`` holds for its pair."""
    have = {str(k): v for k, v in props}
    src, dst, network = have.get("src"), have.get("dst"), have.get("network")
    if not (src and dst and network) or dst in NOT_A_NODE:
        return []
    out: list[tuple[str, object]] = []
    fam = str(have["family"]) if have.get("family") else None
    ping = pair_entry(doc, "ping", str(src), str(dst), str(network), fam)
    pmtu = pair_entry(doc, "path_mtu", str(src), str(dst), str(network), fam)
    if ping:
        if "rtt_ms" not in have and ping.get("rtt_ms") is not None:
            out.append(("rtt_ms", ping["rtt_ms"]))
        if "loss_pct" not in have and ping.get("loss_pct") is not None:
            out.append(("loss_pct", ping["loss_pct"]))
    if pmtu and "path_mtu" not in have and pmtu.get("bytes") is not None:
        out.append(("path_mtu", pmtu["bytes"]))
    return out


def attach(item: pytest.Item, report: pytest.TestReport) -> None:
    """After the call: complete the properties; on failure the raw probe output goes in
    the report as a section (the HTML report adds it as an extra)."""
    if report.when != "call":
        return
    facts = item.config.stash.get(FACTS_KEY, None)
    have = {str(k) for k, _ in item.user_properties}
    if facts is not None and "k8snet_target" not in have and uses_cluster(item):
        # On every test case that touched the cluster, so that no JUnit reader can take a
        # lab run for a cluster run (testsuite properties do not survive xdist).
        ident = facts.identity()
        target = [("k8snet_target", str(ident.get("target", "?"))),
                  ("simulated", "true" if ident.get("simulated") else "false")]
        item.user_properties.extend(target)
        report.user_properties.extend(target)
    if facts is not None and {"src", "dst", "network"} <= have:
        doc, _ = facts.measured()
        more = completed(item.user_properties, doc) if doc is not None else []
        # JUnit reads the teardown report, which copies item.user_properties; this report
        # (the call's) was built before the additions, so it gets them too.
        item.user_properties.extend(more)
        report.user_properties.extend(more)
    if report.failed:
        for raw in item.stash.get(RAW_KEY, []):
            report.sections.append(("k8snet probe output", raw))
