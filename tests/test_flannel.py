"""The real cluster with the real flanneld as its CNI (``up --kubernetes --cni flannel``).

Two bring-ups keep CI time small: one flannel vxlan + kube-proxy nftables cluster shared by
the tests that need it (healthy suite, vxlan-blocked, the faults flannel refuses or adapts),
and one host-gw cluster that a single test brings up, probes, faults and takes down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults, netns
from pytest_k8snet.lab.kube import flannel

from .conftest import assert_nothing_left, kube_artifacts_missing, real_cluster_for
from .test_lab_cli import assert_up_refused, cli
from .test_realkube import EXPECTED, run_suite
from .test_suite_on_lab import failing

needs_cluster = pytest.mark.skipif(kube_artifacts_missing() is not None,
                                   reason=kube_artifacts_missing() or "")

SUBNET_ENV = """FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.1.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""


def test_conflist_takes_the_network_not_flannels_gateway(tmp_path: Path) -> None:
    data = flannel.conflist(SUBNET_ENV, tmp_path)
    bridge = data["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert bridge["ipam"]["routes"] == [{"dst": "10.244.0.0/16"}]
    assert bridge["mtu"] == 1450 and bridge["isGateway"] is True
    assert bridge["ipMasq"] is False  # flanneld --ip-masq does it
    assert [p["type"] for p in data["plugins"]] == ["bridge", "portmap"]
    tuned = flannel.conflist(SUBNET_ENV, tmp_path, "1024 65535")["plugins"][-1]
    assert tuned == {"type": "tuning", "sysctl": {"net.ipv4.ip_local_port_range": "1024 65535"}}


@pytest.mark.parametrize("args,error", [
    (["--cni", "flannel"], "--cni flannel needs --kubernetes: flanneld runs against a real "
                           "API server"),
    (["--flannel-backend", "host-gw"], "--flannel-backend goes with --cni flannel"),
    (["--proxy-mode", "nftables"], "--proxy-mode nftables needs --kubernetes: the plain lab "
                                   "simulates kube-proxy's iptables mode only"),
    (["--kubernetes", "--cni", "lab", "--overlay", "host-gw"], "--overlay host-gw is not "
     "available with --kubernetes --cni lab; use --cni flannel --flannel-backend host-gw"),
    (["--kubernetes", "--cni", "lab", "--flannel-backend", "host-gw"],
     "--flannel-backend goes with --cni flannel"),
    (["--kubernetes", "--overlay-mtu", "1400"], "--overlay-mtu does not go with --cni flannel: "
     "flanneld sets the pod MTU from the underlay's"),
    (["--kubernetes", "--cni", "flannel", "--overlay", "vxlan", "--flannel-backend", "host-gw"],
     "--flannel-backend host-gw and --overlay vxlan disagree: give one"),
    # --cni flannel is --kubernetes' default: the faults it refuses are refused without it.
    (["--kubernetes", "--fault", "ip-forward-off:node-2"],
     "ip-forward-off cannot hold on {name} (--cni flannel): the bridge plugin flannel "
     "delegates to (isGateway: true) sets ip_forward=1 again with the node's next pod, "
     "before any probe runs, as it does on every production flannel node; use --cni lab for "
     "incident 5's ip_forward=0"),
    (["--kubernetes", "--flannel-backend", "host-gw", "--fault", "vxlan-blocked:node-2"],
     "vxlan-blocked applies to --flannel-backend vxlan or wireguard labs; {name} is built with "
     "--flannel-backend host-gw: host-gw routes pod packets unencapsulated, there is no UDP "
     "overlay to block (route-missing breaks this shape's overlay)"),
    (["--kubernetes", "--fault", "route-missing:node-1=node-2"],
     "route-missing applies to --flannel-backend host-gw labs; {name} is built with "
     "--flannel-backend vxlan: its pod routes go through flannel.1, not via each peer on "
     "eth0 as host-gw's do (vxlan-blocked breaks this shape's overlay)"),
])
def test_shape_options_are_refused_in_one_line(args: list[str], error: str) -> None:
    name = f"f{os.getpid()}v"
    assert_up_refused(name, args, error.format(name=name))


def flanneld_pids(name: str) -> list[int]:
    """flanneld processes of lab ``name`` (their command line names the lab's state dir)."""
    out = subprocess.run(["pgrep", "-f", f"flanneld .*/{name}/node-"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(scope="module")
def flannel_cluster() -> Iterator[labmod.Lab]:
    """flannel vxlan with kube-proxy in nftables mode, shared by this module's tests."""
    yield from real_cluster_for("fv", cni="flannel", proxy_mode="nftables")


@needs_cluster
def test_faults_refused_on_a_running_flannel_cluster(flannel_cluster: labmod.Lab) -> None:
    """`fault add` on the running cluster refuses, in one line, what cannot hold or has
    nothing to act on, and switches nothing on."""
    name = flannel_cluster.name
    for fault, why in (("ip-forward-off", "sets ip_forward=1 again with the node's next pod"),
                       ("route-missing", "its pod routes go through flannel.1")):
        res = cli("fault", "add", name, fault, "--node", "node-2")
        assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
        assert why in res.stderr
    assert json.loads(cli("status", name, "--json").stdout)["faults"] == []
    sysctl = netns.run(["ip", "netns", "exec", flannel_cluster.node("node-2")["netns"],
                        "sysctl", "-n", "net.ipv4.ip_forward"])
    assert sysctl.stdout.strip() == "1"


@needs_cluster
def test_reprogram_overlay_restarts_flanneld(flannel_cluster: labmod.Lab) -> None:
    """flannel.1 taken down loses its routes; reprogram_overlay has flanneld (not the lab's
    hand-wired entries, whose VTEP MACs are not flanneld's) put them back."""
    from pytest_k8snet.lab.network import reprogram_overlay

    node = flannel_cluster.node("node-2")
    peers = [p["pod_cidr"] for p in flannel_cluster.nodes if p["name"] != "node-2"]
    before = flanneld_pids(flannel_cluster.name)

    def routes() -> str:
        return netns.run(["ip", "-n", node["netns"], "route"]).stdout

    netns.run(["ip", "-n", node["netns"], "link", "set", "flannel.1", "down"])
    assert not [c for c in peers if c in routes()]
    reprogram_overlay(flannel_cluster, "node-2")
    assert all(f"{c} via " in routes() and "dev flannel.1" in routes() for c in peers)
    fdb = netns.run(["bridge", "-n", node["netns"], "fdb", "show", "dev", "flannel.1"]).stdout
    assert len([line for line in fdb.splitlines() if " dst " in line]) == len(peers), fdb
    after = flanneld_pids(flannel_cluster.name)
    assert len(after) == 3 and len(set(after) - set(before)) == 1  # node-2's was restarted


@needs_cluster
def test_healthy_suite_on_flannel_vxlan_with_nftables(flannel_cluster: labmod.Lab,
                                                      tmp_path: Path) -> None:
    name = flannel_cluster.name
    status = json.loads(cli("status", name, "--json").stdout)
    assert (status["cni"], status["flannel_backend"], status["proxy_mode"]) == (
        "flannel", "vxlan", "nftables")
    assert len(flanneld_pids(name)) == 3
    tables = netns.run(["ip", "netns", "exec", flannel_cluster.nodes[0]["netns"], "nft", "list",
                        "tables"])
    assert "ip kube-proxy" in tables.stdout
    code, out, outcomes = run_suite(flannel_cluster, tmp_path)
    assert code == 0, out
    assert outcomes and set(outcomes.values()) == {"passed"}, out
    assert "overlay: flannel: vxlan flannel.1 UDP 8472" in out


@needs_cluster
def test_vxlan_blocked_on_flannel_names_the_overlay(flannel_cluster: labmod.Lab,
                                                     tmp_path: Path) -> None:
    faults.add(flannel_cluster, "vxlan-blocked", ["node-2"])
    try:
        code, out, outcomes = run_suite(flannel_cluster, tmp_path)
    finally:
        faults.remove(flannel_cluster, "vxlan-blocked", [])
    must, may, words = EXPECTED["vxlan-blocked"]
    bad = failing(outcomes)
    assert code == 1, out
    assert must <= set(bad) <= must | may, out
    assert "the overlay (UDP 8472 (VXLAN)) is dropped between the nodes; node-2 is in every " \
           "failing pair" in out
    for test in must:
        assert all("node-2" in param for param in bad[test]), (test, bad[test], out)


@needs_cluster
def test_egress_port_range_goes_into_flannels_conflist(flannel_cluster: labmod.Lab) -> None:
    """flannel's conflist sorts before any other: the fault's tuning plugin must be in it."""
    d = flannel_cluster.state_dir / "node-2"
    conflist = d / "cni" / flannel.CONFLIST
    faults.add(flannel_cluster, "egress-port-range", ["node-2"])
    try:
        types = [p["type"] for p in json.loads(conflist.read_text())["plugins"]]
        assert types == ["bridge", "portmap", "tuning"]
        assert sorted(p.name for p in (d / "cni").iterdir()) == [flannel.CONFLIST]
        # A port-keeping MASQUERADE ahead of flanneld's --random-fully one.
        assert nat_postrouting(flannel_cluster)[0].startswith(
            "-A POSTROUTING -s 10.244.1.0/24 -d 198.18.0.0/24 ")
        assert "-j MASQUERADE" in nat_postrouting(flannel_cluster)[0]
    finally:
        faults.remove(flannel_cluster, "egress-port-range", [])
    assert [p["type"] for p in json.loads(conflist.read_text())["plugins"]] == [
        "bridge", "portmap"]
    assert not [r for r in nat_postrouting(flannel_cluster) if "k8snet-fault" in r]


def nat_postrouting(lab: labmod.Lab) -> list[str]:
    out = netns.run(["ip", "netns", "exec", lab.node("node-2")["netns"], "iptables", "-t",
                     "nat", "-S", "POSTROUTING"]).stdout
    return [r for r in out.splitlines() if r.startswith("-A ")]


@needs_cluster
def test_host_gw_suite_and_a_missing_route(tmp_path: Path) -> None:
    """host-gw: the suite passes with the UDP check skipped; flanneld stopped on node-1 and
    its route to node-2's pods gone is the judge's no-route finding, not a firewall; an
    underlay MTU of 1400 on node-2 fails the large-packet checks of node-2's pairs."""
    name = f"fh{os.getpid()}"
    for run in ("healthy", "fault"):
        (tmp_path / run).mkdir()
    lab = labmod.up(labmod.LabSpec(name=name, kubernetes=True, cni="flannel",
                                   overlay="host-gw", overlay_mtu=1500))
    try:
        code, out, outcomes = run_suite(lab, tmp_path / "healthy")
        assert code == 0, out
        skipped = {k for k, v in outcomes.items() if v == "skipped"}
        assert skipped and all("test_udp_8472" in k for k in skipped), out
        assert "no UDP encapsulation detected" in out
        faults.add(lab, "route-missing", ["node-1"], "node-2")
        assert len(flanneld_pids(name)) == 2  # node-1's is stopped, so the route stays gone
        code, out, outcomes = run_suite(lab, tmp_path / "fault")
        assert code == 1, out
        assert failing(outcomes) == {"test_pod_ping": {"node-1->node-2", "node-2->node-1"}}, out
        assert "No route to node-2's pods (10.244.1.0/24) on node-1" in out
        assert "a missing route, not a firewall" in out
        faults.remove(lab, "route-missing", [])
        routes = netns.run(["ip", "-n", lab.node("node-1")["netns"], "route"]).stdout
        assert "10.244.1.0/24 via 172.28.128.12 dev eth0" in routes
        # host-gw forwards pod packets on eth0 unencapsulated: underlay-mtu must catch them
        # ahead of flanneld's FLANNEL-FWD accept.
        (tmp_path / "mtu").mkdir()
        faults.add(lab, "underlay-mtu", ["node-2"], "1400")
        code, out, outcomes = run_suite(lab, tmp_path / "mtu")
        faults.remove(lab, "underlay-mtu", [])
        must, may, _ = EXPECTED["underlay-mtu"]
        bad = failing(outcomes)
        assert code == 1 and must <= set(bad) <= must | may, out
        assert all("node-2" in p for t in must for p in bad[t]), out
        assert "MTU" in out and "1400" in out
    finally:
        labmod.down(name)
    assert_nothing_left(name)


def test_cli_help_names_the_shapes() -> None:
    out = cli("up", "--help").stdout
    assert "--cni {lab,flannel}" in out and "--flannel-backend {vxlan,host-gw,wireguard}" in out
    assert "--proxy-mode {iptables,nftables}" in out
    assert "--cni" in subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "run",
                                      "--help"], capture_output=True, text=True).stdout
