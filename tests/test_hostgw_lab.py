"""The lab's host-gw shape (``k8snet-lab up --overlay host-gw``) and its ``route-missing``
fault, end to end: the shape itself, the healthy suite on it, and the suite's one finding
when node-1 loses its route to a peer's pods."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults

from .conftest import needs_root, sh

pytestmark = needs_root


@pytest.fixture(scope="module")
def hostgw() -> Iterator[labmod.Lab]:
    name = f"hg{os.getpid()}"
    built = labmod.up(labmod.LabSpec(name=name, overlay="host-gw", overlay_mtu=1500))
    yield built
    labmod.down(name)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", *args],
                          capture_output=True, text=True, timeout=60)


def suite(lab: labmod.Lab, out: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    results = out / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite", "--k8s-lab-name",
         lab.name, "--k8s-results", str(results), "-p", "no:cacheprovider", "-q", "-rs"],
        capture_output=True, text=True, timeout=600, cwd=out)
    return proc, dict(json.loads(results.read_text()))


def test_host_gw_routes_each_peer_via_its_node_without_a_tunnel(hostgw: labmod.Lab) -> None:
    routes = sh(hostgw, "node-1", "ip", "route").stdout
    assert "10.244.1.0/24 via 172.28.128.12 dev eth0" in routes
    assert "10.244.2.0/24 via 172.28.128.13 dev eth0" in routes
    links = sh(hostgw, "node-1", "ip", "-d", "-o", "link", "show").stdout
    assert "vxlan" not in links and "flannel.1" not in links
    assert "mtu 1500" in sh(hostgw, "node-1/probe", "ip", "link", "show", "eth0").stdout
    status = json.loads(cli("status", hostgw.name, "--json").stdout)
    assert status["overlay"] == status["spec"]["overlay"] == "host-gw"


def test_route_missing_is_validated_reversible_and_vxlan_only_refuses(
        hostgw: labmod.Lab, tmp_path: Path) -> None:
    name = hostgw.name
    for args, words in (
            (["--node", "node-1", "--value", "node-1"], "names the peer"),
            (["--value", "node-9"], "unknown node 'node-9'"),
            (["--value", "nodeX"], "must be a peer node's name")):
        res = cli("fault", "add", name, "route-missing", *args)
        assert res.returncode != 0 and words in res.stderr and len(res.stderr.splitlines()) == 1
    res = cli("fault", "add", name, "vxlan-blocked", "--node", "node-1")
    assert res.returncode != 0 and "--overlay vxlan" in res.stderr
    assert cli("fault", "add", name, "route-missing", "--node", "node-1").returncode == 0
    routes = sh(hostgw, "node-1", "ip", "route").stdout
    assert "10.244.1.0/24" not in routes and "10.244.2.0/24" not in routes
    assert "via 172.28.128.254" in sh(hostgw, "node-1", "ip", "route", "get", "10.244.1.2").stdout
    assert cli("fault", "remove", name, "route-missing").returncode == 0
    assert "10.244.1.0/24 via 172.28.128.12 dev eth0" in sh(hostgw, "node-1", "ip",
                                                            "route").stdout
    vx = f"vx{os.getpid()}"
    try:
        assert cli("up", "--name", vx, "--nodes", "2").returncode == 0
        res = cli("fault", "add", vx, "route-missing", "--node", "node-1")
        assert res.returncode != 0 and "--overlay host-gw" in res.stderr
        assert len(res.stderr.splitlines()) == 1
    finally:
        labmod.down(vx)


def test_healthy_suite_passes_on_host_gw(hostgw: labmod.Lab, tmp_path: Path) -> None:
    proc, doc = suite(hostgw, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert re.search(r"\b\d+ passed, 6 skipped", proc.stdout), proc.stdout[-3000:]
    # The UDP check skips saying why: host-gw has no UDP port to test.
    assert proc.stdout.count("no UDP encapsulation detected") == 6
    assert doc["expected_mtu"] == 1500 and set(doc["pod_mtu"].values()) == {1500}
    assert {e["kind"] for e in doc["encapsulation"].values()} == {"none"}
    assert all(r["via"] == r["peer_ip"] for c in doc["node_checks"] for r in c["routes"])


def test_route_missing_gives_one_no_route_finding(hostgw: labmod.Lab, tmp_path: Path) -> None:
    faults.add(hostgw, "route-missing", ["node-1"], "node-2")
    try:
        proc, doc = suite(hostgw, tmp_path)
    finally:
        faults.remove(hostgw, "route-missing", [])
    failed = sorted(d["test"].split("::")[-1] for d in doc["diagnoses"])
    assert failed == ["test_pod_ping[node-1->node-2]", "test_pod_ping[node-2->node-1]"], \
        proc.stdout[-3000:]
    named = {v["finding"] for v in doc["verdicts"] if v["outcome"] == "failed"}
    assert named == {"no-route:node-1"}
    (root,) = [f for f in doc["findings"] if f["id"] == "no-route:node-1"]
    assert root["mode"] == "route" and root["nodes"] == ["node-1"]
    assert root["summary"].startswith("No route to node-2's pods (10.244.1.0/24) on node-1")
    assert not [f for f in doc["findings"] if f["cause"] in (
        "vxlan-blocked", "pod-firewall", "inconclusive", "unknown")]
