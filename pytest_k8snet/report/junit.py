"""Per-test data for JUnit (``user_properties``) and for the other reports.

Suite tests call :func:`record` with what they measured; it lands in the test's
``user_properties`` (which JUnit XML and xdist carry) and in the run's records.
"""

from __future__ import annotations

from typing import Any

import pytest

PROPERTY_NAMES = ("src", "dst", "network", "rtt_ms", "loss_pct", "path_mtu", "throughput_mbps",
                  "cause")
RAW_KEY = pytest.StashKey[list[str]]()


def record(request: pytest.FixtureRequest, raw: str | None = None, **props: Any) -> None:
    """Attach measurements (``src=``, ``rtt_ms=`` ...) and optional raw probe output."""
    item = request.node
    for key, value in props.items():
        if value is not None:
            item.user_properties.append((key, value if isinstance(value, (int, float, str))
                                         else str(value)))
    if raw:
        item.stash.setdefault(RAW_KEY, []).append(raw)


def attach(item: pytest.Item, report: pytest.TestReport) -> None:
    """On failure, the raw probe output goes into the report as a section (and HTML extra)."""
    if report.when == "call" and report.failed:
        for raw in item.stash.get(RAW_KEY, []):
            report.sections.append(("k8snet probe output", raw))
