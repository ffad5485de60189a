"""The expensive tier on the plain 3-node lab: with --k8s-expensive-pairs cover:1 every
node sends and receives one 1 MiB transfer and one UDP run, the other pairs skip saying
why, pings cover every pair, and a pair the DF path-MTU check flags is measured too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults

from .conftest import needs_root

NODES = ("node-1", "node-2", "node-3")
EVERY = {(a, b) for a in NODES for b in NODES if a != b}
# tiers.covering_sample(NODES, 1): one rotation by 2 (round(3 / 2)).
COVER_1 = {("node-1", "node-3"), ("node-2", "node-1"), ("node-3", "node-2")}


def run(lab: labmod.Lab, tmp_path: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite", "--k8s-lab-name",
         lab.name, "--k8s-results", str(results), "-p", "no:cacheprovider", "-q", "-rs",
         *extra], capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=dict(os.environ))
    return proc.stdout + proc.stderr, json.loads(results.read_text())


def measured(doc: dict[str, Any], section: str) -> set[tuple[str, str]]:
    return {(e["src"], e["dst"]) for e in doc[section]
            if e.get("dst") != "service" and e.get("network", "pod") == "pod"}


@needs_root
def test_a_covering_sample_measures_each_node_once_each_way(lab: labmod.Lab,
                                                            tmp_path: Path) -> None:
    out, doc = run(lab, tmp_path, "--k8s-expensive-pairs", "cover:1")
    assert doc["expensive"] == {"mode": "cover:1",
                                "pairs": sorted(f"{a}->{b}" for a, b in COVER_1)} or \
        set(doc["expensive"]["pairs"]) == {f"{a}->{b}" for a, b in COVER_1}, doc["expensive"]
    assert measured(doc, "http") == COVER_1
    assert measured(doc, "throughput") == COVER_1
    assert {(e["src"], e["dst"]) for e in doc["ping"] if e["network"] == "pod"} == EVERY
    tests = doc["tests"]
    assert tests["test_network.py::test_large_packets[node-1->node-2]"] == "skipped", out
    assert tests["test_network.py::test_large_packets[node-1->node-3]"] == "passed", out
    assert "the expensive tier (cover:1) measures a covering sample" in out
    assert not any(v == "failed" for v in tests.values()), out


@needs_root
def test_a_pair_the_path_mtu_check_flags_gets_its_transfer(lab: labmod.Lab,
                                                           tmp_path: Path) -> None:
    faults.add(lab, "underlay-mtu", ["node-3"], "1400")
    try:
        out, doc = run(lab, tmp_path, "--k8s-expensive-pairs", "cover:1")
    finally:
        faults.remove(lab, "underlay-mtu", [])
    with_node_3 = {p for p in EVERY if "node-3" in p}
    assert measured(doc, "http") == COVER_1 | with_node_3, doc["expensive"]
    assert measured(doc, "http") != EVERY  # node-1 -> node-2 crosses: not flagged
    tests = doc["tests"]
    assert tests["test_network.py::test_large_packets[node-2->node-3]"] == "failed", out
    assert tests["test_network.py::test_large_packets[node-1->node-2]"] == "skipped", out


@needs_root
def test_auto_measures_every_pair_below_the_threshold(lab: labmod.Lab, tmp_path: Path) -> None:
    _, doc = run(lab, tmp_path, "-k", "large_packets and not service")
    assert doc["expensive"] == {"mode": "all"}
    assert measured(doc, "http") == EVERY
