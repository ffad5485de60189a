"""Dual-stack and IPv6 (issue 16): the lab in each family, the suite measuring every pair in
each family, ids, results and the judge's findings per family.

The golden documents in tests/data/dual/ are results files (less tests, verdicts and
evidence) of the built-in suite on 3-node plain labs built with this code:
``healthy_dual.json`` (``--ip-family dual``), ``healthy_ipv6.json`` (``ipv6``) and
``ipv6_blocked_node3_dual.json`` (dual, ``fault add ipv6-blocked --node node-3``),
``ipv6_forwarding_off_node2_dual.json`` (dual, ``net.ipv6.conf.all.forwarding=0`` on
node-2 by hand: IPv4 forwarding stays on).
"""

from __future__ import annotations

import copy
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
from pytest_k8snet.judge import FAILED, PASSED, judge
from pytest_k8snet.judge.causes import ipv6_words
from pytest_k8snet.lab import faults
from pytest_k8snet.lab.plan import default_overlay_mtu
from pytest_k8snet.families import merge, split
from pytest_k8snet.probes.nodecheck import parse_links
from pytest_k8snet.report import terminal
from pytest_k8snet.report.html import render
from pytest_k8snet.report.results import RunReport
from pytest_k8snet.selection import pair_params

from .conftest import needs_root, sh
from .judged import roots

DATA = Path(__file__).parent / "data" / "dual"
PAIRS = [("node-1", "node-2"), ("node-2", "node-1")]


def doc(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


# -- offline: ids, documents, overheads, wording, golden judgements -----------------------------

def test_pair_ids_name_the_family_only_when_both_exist() -> None:
    assert pair_params(PAIRS, ("ipv4",)) == ([("node-1", "node-2"), ("node-2", "node-1")],
                                             ["node-1->node-2", "node-2->node-1"])
    assert pair_params(PAIRS, ("ipv6",))[1] == ["node-1->node-2", "node-2->node-1"]
    values, ids = pair_params(PAIRS, ("ipv4", "ipv6"))
    assert ids == ["node-1->node-2/ipv4", "node-2->node-1/ipv4",
                   "node-1->node-2/ipv6", "node-2->node-1/ipv6"]
    assert values[2] == ("node-1", "node-2", "ipv6")


def test_merge_tags_entries_and_split_gives_each_family_back() -> None:
    v4 = {"ping": [{"src": "a", "dst": "b", "loss_pct": 0}], "expected_mtu": 1430,
          "targets": {"service_ip": "10.96.100.1"}, "timings_s": {"ping_pod": 1.0},
          "measured_s": 1.0}
    v6 = {"ping": [{"src": "a", "dst": "b", "loss_pct": 100}], "expected_mtu": 1430,
          "targets": {"service_ip": "fd00:10:96::6401"}, "timings_s": {"ping_pod": 2.0},
          "measured_s": 2.0}
    merged = merge(copy.deepcopy(v4), "ipv4", {"ipv6": copy.deepcopy(v6)})
    assert merged["families"] == ["ipv4", "ipv6"]
    assert [(e["family"], e["loss_pct"]) for e in merged["ping"]] == [("ipv4", 0), ("ipv6", 100)]
    assert merged["measured_s"] == 3.0 and merged["timings_s"]["ping_pod/ipv6"] == 2.0
    six = split(merged, "ipv6")
    assert six["targets"]["service_ip"] == "fd00:10:96::6401"
    assert [e["loss_pct"] for e in six["ping"]] == [100]
    assert [e["loss_pct"] for e in split(merged, "ipv4")["ping"]] == [0]
    single = merge(copy.deepcopy(v4), "ipv4", {})
    assert single["families"] == ["ipv4"] and "by_family" not in single
    assert single["ping"][0]["family"] == "ipv4"


def test_vxlan_over_an_ipv6_underlay_adds_70_bytes() -> None:
    text = ("6: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1430 qdisc noqueue\\    "
            "link/ether 0e:8e:00:00:00:01 brd ff:ff:ff:ff:ff:ff \\    vxlan id 1 local "
            "172.28.128.11 dev eth0 srcport 0 0 dstport 8472 nolearning ttl auto\n"
            "7: flannel-v6.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1430 qdisc noqueue\\    "
            "link/ether 0e:8e:06:00:00:01 brd ff:ff:ff:ff:ff:ff \\    vxlan id 1 local "
            "fd00:28:128::b dev eth0 srcport 0 0 dstport 8472 nolearning ttl auto\n")
    enc = parse_links(text).as_dict()
    tunnels = {t["name"]: t for t in enc["tunnels"]}  # type: ignore[union-attr]
    assert tunnels["flannel.1"]["overhead"] == 50 and "underlay" not in tunnels["flannel.1"]
    assert tunnels["flannel-v6.1"]["overhead"] == 70
    assert tunnels["flannel-v6.1"]["underlay"] == "ipv6"


def test_ipv6_findings_say_icmpv6_and_ndp() -> None:
    text = 'drops ICMP "fragmentation needed"; ARP; answered with an ICMP error'
    assert ipv6_words(text, "ipv6") == ('drops ICMPv6 "Packet Too Big"; NDP; answered with '
                                        "an ICMPv6 error")
    assert ipv6_words(text, "ipv4") == text


def test_golden_healthy_dual_passes_in_both_families() -> None:
    j = judge(doc("healthy_dual.json"))
    pair_subjects = {s for (_, s) in j.verdicts if "->" in s}
    assert {s.rsplit("/", 1)[1] for s in pair_subjects} == {"ipv4", "ipv6"}
    assert len(pair_subjects) == 12  # 6 ordered pairs in each family
    assert not [v for v in j.verdicts.values() if v.outcome == FAILED]
    assert j.verdict("test_pod_ping", "node-1->node-3/ipv6").outcome == PASSED


def test_golden_healthy_ipv6_keeps_single_family_ids() -> None:
    d = doc("healthy_ipv6.json")
    assert d["families"] == ["ipv6"]
    assert {e["family"] for e in d["ping"]} == {"ipv6"}
    j = judge(d)
    assert ("test_pod_ping", "node-1->node-2") in j.verdicts
    assert not [s for (_, s) in j.verdicts if "/ipv" in s]
    assert not [v for v in j.verdicts.values() if v.outcome == FAILED]
    # The pods' addresses were IPv6: the pod pings went to the fd00:10:244::/56 pods.
    assert d["targets"]["pod_cidrs"] == ["fd00:10:244::/56"]


def test_golden_ipv6_blocked_is_one_ipv6_finding_naming_the_node() -> None:
    j = judge(doc("ipv6_blocked_node3_dual.json"))
    found = roots(j)
    assert len(found) == 1, [f.message for f in found]
    root = found[0]
    assert root.family == "ipv6" and root.id.endswith("/ipv6")
    assert root.nodes == ("node-3",)
    assert root.summary.startswith("IPv6: ") and "node-3" in root.message
    failed = [s for (_, s), v in j.verdicts.items() if v.outcome == FAILED]
    assert failed and all(s.endswith("/ipv6") and "node-3" in s for s in failed)
    assert not [v for (_, s), v in j.verdicts.items() if s.endswith("/ipv4")
                and v.outcome != PASSED]
    # A skip points at the failing test of its own family.
    skipped = j.verdict("test_path_mtu", "node-1->node-3/ipv6")
    assert "test_pod_ping[node-1->node-3/ipv6]" in skipped.message


def test_golden_ipv6_forwarding_off_is_judged_on_the_ipv6_sysctl() -> None:
    j = judge(doc("ipv6_forwarding_off_node2_dual.json"))
    found = roots(j)
    assert [(f.cause, f.family, f.nodes) for f in found] == [("ip-forward", "ipv6", ("node-2",))]
    assert "net.ipv6.conf.all.forwarding=0" in found[0].message
    assert "sysctl -w net.ipv6.conf.all.forwarding=1" in found[0].fix
    assert j.verdict("test_node_sysctls", "node-2").outcome == FAILED
    assert j.verdict("test_pod_ping", "node-1->node-2/ipv4").outcome == PASSED


@pytest.mark.parametrize("family, overhead, carries", [("ipv4", 50, 1430), ("ipv6", 70, 1450)])
def test_golden_path_mtu_uses_the_family_overhead(family: str, overhead: int,
                                                  carries: int) -> None:
    d = doc("healthy_dual.json")
    for e in d["path_mtu"]:  # node-3's link carries 1380-byte pod packets in one family
        if e["family"] == family and "node-3" in (e["src"], e["dst"]):
            e["bytes"], e["first_lost"] = 1380, 1381
    found = roots(judge(d))
    assert [f.cause for f in found] == ["mtu"] and found[0].family == family
    assert f"VXLAN adds {overhead} bytes, so the underlay carries {carries}" in found[0].summary


def results_of(name: str) -> dict[str, Any]:
    """A golden document with its judgement, as the results file carries both."""
    d = doc(name)
    j = judge(d)
    return {**d, "findings": [f.as_dict() for f in j.findings],
            "verdicts": [v.as_dict() for v in j.verdicts.values()], "diagnoses": []}


def test_matrices_show_each_family() -> None:
    results = results_of("ipv6_blocked_node3_dual.json")
    html = render(RunReport(results))
    titles = re.findall(r'k8s-grid-title">([^<]*)<', html)
    assert [t.strip() for t in titles] == [
        "Pod network (pod to pod), IPv4", "Host network (node to node), IPv4",
        "Pod network (pod to pod), IPv6", "Host network (node to node), IPv6"]
    ipv4 = html[html.index('id="ipv4-k8s-matrix-pod"'):html.index('id="ipv6-k8s-matrix-pod"')]
    ipv6 = html[html.index('id="ipv6-k8s-matrix-pod"'):]
    assert "k8s-cell k8s-fail" not in ipv4
    assert ipv6.count("k8s-cell k8s-fail") == 8  # 4 pod + 4 host cells with node-3
    lines = "\n".join(matrix_text(results))
    assert "pod network, IPv4: 6 pairs probed, 0 failing" in lines
    assert "pod network, IPv6: 6 pairs probed, 4 failing" in lines
    assert "adds 50 bytes over IPv4, 70 over IPv6" in lines


def matrix_text(results: dict[str, Any]) -> list[str]:
    """The terminal summary's cluster part, as plain lines."""
    out: list[str] = []

    class Lines:
        def section(self, title: str, sep: str = "=", **markup: bool) -> None:
            out.append(title)

        def write(self, content: str, **markup: bool) -> None:
            out.append(content)

        def write_line(self, line: str | bytes, **markup: bool) -> None:
            out.append(str(line) + "\n")

        def line(self, msg: str, **markup: bool) -> None:
            out.append(msg + "\n")

    terminal.write(Lines(), RunReport(results))
    return "".join(out).splitlines()


# -- live: the plain lab in each family ----------------------------------------------------------

def run_suite(name: str, tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    tmp_path.mkdir(exist_ok=True)
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                           "--k8s-lab-name", name, "--k8s-results", str(results), "-p",
                           "no:cacheprovider", "-q", "-rfs", *extra], capture_output=True,
                          text=True,
                          timeout=400, cwd=tmp_path)
    data = json.loads(results.read_text()) if results.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, data


@pytest.fixture
def family_lab(request: pytest.FixtureRequest) -> Iterator[labmod.Lab]:
    family = str(request.param)
    name = f"t{os.getpid()}-{family}"
    built = labmod.up(labmod.LabSpec(name=name, ip_family=family,
                                     overlay_mtu=default_overlay_mtu("vxlan", 1500, family)))
    yield built
    labmod.down(name)


@needs_root
@pytest.mark.parametrize("family_lab", ["ipv6"], indirect=True)
def test_ipv6_lab_healthy_suite(family_lab: labmod.Lab, tmp_path: Path) -> None:
    probe = family_lab.node("node-1")["probe"]
    assert ":" in probe["ip"] and sh(family_lab, "node-1/probe", "ip", "-4", "addr", "show",
                                     "dev", "eth0").stdout.strip() == ""
    rc, out, data = run_suite(family_lab.name, tmp_path)
    assert rc == 0, out
    assert data["families"] == ["ipv6"]
    assert {e["family"] for e in data["ping"]} == {"ipv6"}
    assert "test_pod_ping[node-1->node-2]" in " ".join(data["tests"])
    assert "flannel-v6.1" in out and "adds 70 bytes" in out


@needs_root
@pytest.mark.parametrize("family_lab", ["dual"], indirect=True)
def test_dual_lab_healthy_then_ipv6_blocked(family_lab: labmod.Lab, tmp_path: Path) -> None:
    # The module, not the console script: a venv's bin is not always on PATH (CI's is not).
    status = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "status",
                             family_lab.name, "--json"], capture_output=True, text=True,
                            check=True)
    assert json.loads(status.stdout)["ip_family"] == "dual"
    # Both families cross between pods of two nodes, through flannel.1 and flannel-v6.1.
    peer = family_lab.node("node-2")["probe"]
    for ip in (peer["ip"], peer["ip6"]):
        assert sh(family_lab, "node-1/probe", "ping", "-c1", "-W2", ip).returncode == 0, ip
    rc, out, data = run_suite(family_lab.name, tmp_path)
    assert rc == 0, out
    assert data["families"] == ["ipv4", "ipv6"]
    ids = " ".join(data["tests"])
    assert "test_pod_ping[node-1->node-2/ipv4]" in ids and \
        "test_pod_ping[node-1->node-2/ipv6]" in ids
    assert {e["family"] for e in data["path_mtu"]} == {"ipv4", "ipv6"}
    assert "pod network, IPv6" in out and "pod network, IPv4" in out

    faults.add(family_lab, "ipv6-blocked", ["node-3"])
    try:
        assert sh(family_lab, "node-1/probe", "ping", "-c1", "-W1",
                  family_lab.node("node-3")["probe"]["ip6"]).returncode != 0
        rc, out, data = run_suite(family_lab.name, tmp_path / "fault")
        # per-node mode (as above 32 nodes): one pair test per node and family
        rc_pn, out_pn, data_pn = run_suite(family_lab.name, tmp_path / "per-node",
                                           "--k8s-per-node-threshold", "2")
    finally:
        faults.remove(family_lab, "ipv6-blocked", ["node-3"])
    assert rc_pn == 1, out_pn
    pings = {t.partition("[")[2].rstrip("]"): o for t, o in data_pn["tests"].items()
             if "::test_pod_ping[" in t}
    assert pings == {f"node-{i}/{fam}": "failed" if fam == "ipv6" else "passed"
                     for i in (1, 2, 3) for fam in ("ipv4", "ipv6")}, out_pn
    assert not [t for t, o in data_pn["tests"].items() if o == "failed" and "/ipv6]" not in t]
    assert "node-3/ipv6: 2 of 2 pairs from it fail" in out_pn, out_pn
    assert rc == 1, out
    failed = sorted(t for t, o in data["tests"].items() if o == "failed")
    assert failed and all(t.endswith("/ipv6]") and "node-3" in t for t in failed), failed
    assert not [t for t, o in data["tests"].items() if "/ipv4]" in t and o == "failed"]
    fails = [f for f in data["findings"] if not f.get("root")]
    assert len(fails) == 1 and fails[0]["family"] == "ipv6" and fails[0]["nodes"] == ["node-3"]
    assert "IPv6" in fails[0]["message"]


@needs_root
@pytest.mark.parametrize("family_lab", ["dual"], indirect=True)
def test_underlay_faults_act_on_both_families(family_lab: labmod.Lab, tmp_path: Path) -> None:
    # The underlay link and the overlay's port carry IPv4 and IPv6 alike: on a dual lab
    # underlay-mtu and vxlan-blocked fail both families' pairs with node-3, not IPv4's only.
    for fault, value, test in (("underlay-mtu", "1400", "test_path_mtu"),
                               ("vxlan-blocked", None, "test_pod_ping")):
        faults.add(family_lab, fault, ["node-3"], value)
        try:
            rc, out, data = run_suite(family_lab.name, tmp_path / fault)
        finally:
            faults.remove(family_lab, fault, ["node-3"])
        assert rc == 1, out
        failed = {t for t, o in data["tests"].items() if o == "failed" and f"::{test}[" in t}
        for fam in ("ipv4", "ipv6"):
            assert any(t.endswith(f"/{fam}]") and "node-3" in t for t in failed), (fault, fam, out)
        assert all("node-3" in t for t in failed), failed


@needs_root
def test_ipv6_blocked_refused_on_an_ipv4_lab(lab: labmod.Lab) -> None:
    with pytest.raises(labmod.LabError, match="needs a lab with IPv6"):
        faults.add(lab, "ipv6-blocked", ["node-1"])
