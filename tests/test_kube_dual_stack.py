"""The real cluster with two IP families (``up --kubernetes --ip-family dual``, issue 16).

One flannel vxlan cluster for the module: its shape (both podCIDRs, InternalIPs, podIPs,
the DNS Service's two ClusterIPs, flannel-v6.1), the healthy suite with pairs in both
families, then ``ipv6-blocked`` on node-2, which must fail only IPv6 tests and come back
as one finding naming IPv6 and node-2. Teardown must leave nothing behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults, netns
from pytest_k8snet.lab.kube import flannel

from .conftest import kube_artifacts_missing, real_cluster_for
from .test_lab_cli import assert_up_refused
from .test_realkube import kubectl, run_suite
from .test_suite_on_lab import failing

needs_cluster = pytest.mark.skipif(kube_artifacts_missing() is not None,
                                   reason=kube_artifacts_missing() or "")

DUAL_SUBNET_ENV = """FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.1.1/24
FLANNEL_IPV6_NETWORK=fd00:10:244::/56
FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64
FLANNEL_MTU=1430
FLANNEL_IPMASQ=true
"""


def test_dual_conflist_has_both_ranges_and_routes(tmp_path: Path) -> None:
    ipam = flannel.conflist(DUAL_SUBNET_ENV, tmp_path)["plugins"][0]["ipam"]
    assert ipam["ranges"] == [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]]
    assert ipam["routes"] == [{"dst": "10.244.0.0/16"}, {"dst": "fd00:10:244::/56"}]


def test_dual_net_conf_sets_one_mtu_for_both_vxlan_devices() -> None:
    conf = flannel.net_conf("10.244.0.0/16", "vxlan", ipv6=True, underlay_mtu=1500)
    assert conf["EnableIPv6"] is True and conf["IPv6Network"] == "fd00:10:244::/56"
    assert conf["Backend"] == {"Type": "vxlan", "MTU": 1480}  # flanneld: pods 1480-50=1430
    assert "MTU" not in flannel.net_conf("10.244.0.0/16", "host-gw", ipv6=True)["Backend"]
    assert "EnableIPv6" not in flannel.net_conf("10.244.0.0/16", "vxlan")


@pytest.mark.parametrize("args,error", [
    (["--kubernetes", "--ip-family", "ipv6"], "--ip-family ipv6 is not available with "
     "--kubernetes: the cluster's management network is IPv4 only; use --ip-family dual"),
    (["--kubernetes", "--cni", "lab", "--ip-family", "dual"], "--ip-family dual is not "
     "available with --kubernetes --cni lab: only flannel programs a real cluster's IPv6 pod "
     "network"),
    (["--kubernetes", "--flannel-backend", "wireguard", "--ip-family", "dual"],
     "--ip-family dual is not available with --flannel-backend wireguard: use vxlan or host-gw"),
])
def test_unsupported_kube_families_are_refused_in_one_line(args: list[str], error: str) -> None:
    assert_up_refused(f"d{os.getpid()}r", args, error)


@pytest.fixture(scope="module")
def dual_cluster() -> Iterator[labmod.Lab]:
    yield from real_cluster_for("kd", ip_family="dual")


def _json(lab: labmod.Lab, *args: str) -> Any:
    proc = kubectl(lab, *args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@needs_cluster
def test_dual_cluster_has_both_families(dual_cluster: labmod.Lab) -> None:
    nodes = _json(dual_cluster, "get", "nodes")["items"]
    assert len(nodes) == 3
    for item in nodes:
        n = dual_cluster.node(item["metadata"]["name"])
        assert item["spec"]["podCIDRs"] == [n["pod_cidr"], n["pod_cidr6"]]
        internal = [a["address"] for a in item["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal == [n["ip"], n["ip6"]]
        link = netns.run(["ip", "-n", n["netns"], "-o", "link", "show", "flannel-v6.1"]).stdout
        assert "mtu 1430" in link  # the pods' MTU too (flanneld's subnet.env)
    dns = _json(dual_cluster, "get", "svc", "kube-dns", "-n", "kube-system")["spec"]
    assert dns["clusterIPs"] == ["10.96.0.10", "fd00:10:96::a"]
    pods = _json(dual_cluster, "get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")
    assert pods["items"]
    for pod in pods["items"]:
        families = [":" in ip["ip"] for ip in pod["status"]["podIPs"]]
        assert families == [False, True], pod["status"]["podIPs"]


@needs_cluster
def test_healthy_suite_then_ipv6_blocked_on_node_2(dual_cluster: labmod.Lab,
                                                   tmp_path: Path) -> None:
    (tmp_path / "healthy").mkdir()
    (tmp_path / "fault").mkdir()
    code, out, outcomes = run_suite(dual_cluster, tmp_path / "healthy")
    assert code == 0, out
    assert outcomes and set(outcomes.values()) == {"passed"}, out
    assert "test_network.py::test_pod_ping[node-1->node-2/ipv6]" in outcomes
    assert "test_network.py::test_pod_ping[node-1->node-2/ipv4]" in outcomes
    assert "overlay: flannel: vxlan flannel.1 UDP 8472, vxlan flannel-v6.1 UDP 8472" in out

    faults.add(dual_cluster, "ipv6-blocked", ["node-2"])
    try:
        code, out, outcomes = run_suite(dual_cluster, tmp_path / "fault")
    finally:
        faults.remove(dual_cluster, "ipv6-blocked", [])
    assert code == 1, out
    bad = failing(outcomes)
    assert bad, out
    for test, params in bad.items():
        for param in params:  # only IPv6 pairs, each with node-2
            assert param.endswith("/ipv6") and "node-2" in param, (test, param, out)
    assert not [t for t, o in outcomes.items() if "/ipv4]" in t and o != "passed"], out
    results = json.loads((tmp_path / "fault" / "results.json").read_text())
    roots = [f for f in results["findings"] if not f.get("root")]
    assert [(f["id"], f["family"], f["nodes"]) for f in roots] == [
        ("underlay:node-2/ipv6", "ipv6", ["node-2"])], results["findings"]
    assert roots[0]["summary"].startswith("IPv6:") and "node-2" in roots[0]["summary"]
    # Every other finding is a knock-on of that one.
    assert all(f["root"] == "underlay:node-2/ipv6" for f in results["findings"] if f["root"])
    rules = netns.run(["ip", "netns", "exec", dual_cluster.node("node-2")["netns"],
                       "ip6tables-save"]).stdout
    assert "k8snet-fault:ipv6-blocked" not in rules
