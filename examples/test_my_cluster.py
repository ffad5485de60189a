"""What a platform team writes on top of pytest-k8snet's fixtures.

Run against a real cluster with ``pytest examples --k8s-kubeconfig ~/.kube/config``,
or on a lab with ``pytest examples --k8s-lab`` (a running lab: ``--k8s-lab-name NAME``).
The same tests run on either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_k8snet import Cluster, Node, Pair, PathMtuResult

# Our physical network carries 1500; VXLAN takes 50, so pods must get 1450.
REQUIRED_POD_MTU = 1450


def test_pod_path_mtu(pod_pair: Pair, path_mtu: Callable[..., PathMtuResult]) -> None:
    result = path_mtu(pod_pair.src, pod_pair.dst)
    assert result.bytes >= REQUIRED_POD_MTU, (
        f"{pod_pair.id}: path MTU {result.bytes} after {result.probes} probes")


@pytest.mark.k8snet(pairs="ring")
def test_pod_http_on_a_ring(pod_pair: Pair) -> None:
    res = pod_pair.src.run(["curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://{pod_pair.dst.ip}:8080/healthz"])
    assert res.stdout == "200", res.transcript()


def test_nodes_forward_and_filter_bridges(k8s_node_host: Any) -> None:
    assert k8s_node_host.sysctl("net.ipv4.ip_forward") == 1
    assert k8s_node_host.sysctl("net.bridge.bridge-nf-call-iptables") == 1


def test_underlay_mtu_is_big_enough(k8s_node_host: Any, k8s_node: Node) -> None:
    mtu = k8s_node_host.interface("eth0").link[0]["mtu"]  # `ip -j link` JSON
    assert mtu >= REQUIRED_POD_MTU + 50, f"{k8s_node.name}: eth0 MTU {mtu}"


def test_cluster_dns_answers_everywhere(k8s_cluster: Cluster) -> None:
    bad = {node: [r.name for r in results if not r.ok]
           for node, results in k8s_cluster.dns().items() if not all(r.ok for r in results)}
    assert not bad
