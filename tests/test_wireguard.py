"""flannel's wireguard backend in the lab's real cluster (``--flannel-backend wireguard``).

This kernel has no WireGuard: flanneld (patched by build.sh) runs wireguard-go, whose device
flannel-wg is a TUN link. One cluster, brought up once for the module, runs the healthy
suite, then the suite with ``vxlan-blocked`` (here: UDP 51820) on node-2, and is taken down
by the last test, which checks nothing of it is left. The judge's wording on this shape is
checked offline on the documents of such a live run (tests/data/diagnosis/flannel-wireguard-*).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.judge import FAILED, PASSED, judge
from pytest_k8snet.lab import faults, netns
from pytest_k8snet.lab.kube import binaries, flannel
from pytest_k8snet.lab.netns import LabError
from pytest_k8snet.lab.plan import LabSpec, default_overlay_mtu

from .conftest import kube_artifacts_missing
from .judged import roots
from .test_flannel import flanneld_pids
from .test_lab_cli import cli
from .test_realkube import EXPECTED, run_suite
from .test_suite_on_lab import failing

DATA = Path(__file__).parent / "data" / "diagnosis"
NODE2_PAIRS = {"node-1->node-2", "node-2->node-1", "node-2->node-3", "node-3->node-2"}
BLOCKED = "the overlay (UDP 51820 (WireGuard)) is dropped between the nodes; node-2 is in " \
          "every failing pair"


def doc(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


# -- offline: the shape's options and the judge on a live run's documents --------------------

def test_wireguard_is_a_flannel_backend_only() -> None:
    LabSpec(name="w", kubernetes=True, cni="flannel", overlay="wireguard").validate()
    with pytest.raises(LabError, match="--overlay must be one of vxlan, host-gw"):
        LabSpec(name="w", overlay="wireguard").validate()
    # flannel sizes its device 80 bytes below the underlay (the pods get 1420 of 1500).
    assert default_overlay_mtu("wireguard", 1500) == 1420
    res = cli("up", "--name", f"w{os.getpid()}", "--kubernetes", "--cni", "lab",
              "--flannel-backend", "wireguard")
    assert res.returncode == 2
    assert res.stderr.strip() == "k8snet-lab: error: --flannel-backend goes with --cni flannel"


def test_vxlan_blocked_says_it_takes_the_overlays_port() -> None:
    out = cli("fault", "list").stdout
    line = next(x for x in out.splitlines() if x.startswith("vxlan-blocked"))
    assert "8472 (VXLAN), or 51820 on --flannel-backend wireguard" in line
    assert "wireguard" in faults.get("vxlan-blocked").overlays
    assert "wireguard" not in faults.get("route-missing").overlays


def test_supervisor_runs_wireguard_go_with_a_private_socket_dir(tmp_path: Path) -> None:
    d = tmp_path / "lab1" / "node-1"
    wg = tmp_path / "wireguard-go"
    with pytest.raises(LabError, match="needs wireguard-go .*run `k8snet-lab build`"):
        flannel.supervisor_sh(d, "node-1", tmp_path / "flanneld", "wireguard", wg)
    wg.write_text("")
    sh = flannel.supervisor_sh(d, "node-1", tmp_path / "flanneld", "wireguard", wg)
    assert sh.startswith("mkdir -p /run/wireguard\nmount -t tmpfs -o mode=0700 k8snet-lab1 "
                         "/run/wireguard\n")
    assert f"WIREGUARD_KEY_FILE={d}/flannel/wgkey FLANNEL_WG_USERSPACE={wg} " in sh
    vxlan = flannel.supervisor_sh(d, "node-1", tmp_path / "flanneld")
    assert "WIREGUARD_KEY_FILE" not in vxlan and "FLANNEL_WG_USERSPACE" not in vxlan
    assert "/run/wireguard" not in vxlan


def test_flanneld_binary_is_named_by_its_patch() -> None:
    """A changed patch is a new binary path, so build.sh builds it again."""
    patch = binaries.BUILD_SCRIPT.with_name("flannel-wireguard-go.patch")
    digest = hashlib.sha256(patch.read_bytes()).hexdigest()[:12]
    arts = binaries.artifacts()
    assert arts.flanneld.parent.name.endswith(f"-patch-{digest}")
    assert arts.flanneld.name == "flanneld"  # what ps, pgrep and the logs name
    assert arts.wireguard_go.name == "wireguard-go"
    # The patch applies where flannel's wireguard backend makes its device.
    assert patch.read_text().startswith("--- a/pkg/backend/wireguard/device.go\n")


def test_judge_names_wireguards_port_for_the_blocked_overlay() -> None:
    j = judge(doc("flannel-wireguard-vxlan-blocked-node-2.json"))
    (root,) = roots(j)
    assert (root.cause, root.nodes, root.protocol, root.port) == (
        "vxlan-blocked", ("node-2",), "udp", "51820")
    assert BLOCKED in root.summary
    assert "Allow UDP 51820 (WireGuard) between all nodes" in root.message
    text = " ".join(f.message for f in j.findings)
    assert "VXLAN" not in text and "8472" not in text and "routed" not in text
    failed = {(v.test, v.subject) for v in j.verdicts.values() if v.outcome == FAILED}
    assert failed == {(t, p) for t in ("test_pod_ping", "test_udp_8472") for p in NODE2_PAIRS}


def test_judge_passes_the_healthy_wireguard_run() -> None:
    d = doc("flannel-wireguard-healthy.json")
    assert {e["description"] for e in d["encapsulation"].values()} == {
        "flannel: wireguard flannel-wg UDP 51820, bridged (cni0)"}
    j = judge(d)
    assert {v.outcome for v in j.verdicts.values()} == {PASSED}
    assert not roots(j)


def test_udp_failing_where_ping_crosses_names_the_overlays_port() -> None:
    # The healthy run, with iperf3 refused on one pair: pod ping crosses the same
    # WireGuard overlay, so its port is open (not "the VXLAN port", as this used to say).
    d = copy.deepcopy(doc("flannel-wireguard-healthy.json"))
    t = next(x for x in d["throughput"] if (x["src"], x["dst"]) == ("node-1", "node-3"))
    refused = {"mbps": 0.0, "loss_pct": 100.0, "packets": 0, "failure": "network",
               "error": "unable to connect to server: Connection refused"}
    t.update(refused, attempts=[dict(refused)])
    j = judge(d)
    v = j.verdict("test_udp_8472", "node-1->node-3")
    assert v.outcome == FAILED
    f = j.finding(v.finding)
    assert f is not None and f.cause == "inconclusive"
    assert f.contradicting == ("pod-to-pod ping crosses the same overlay, so its port "
                               "(UDP 51820 (WireGuard)) is open; look for a policy on the "
                               "iperf3 port",)


# -- live: the real cluster ------------------------------------------------------------------

def wireguard_go_pids(name: str) -> dict[int, str]:
    """wireguard-go of lab ``name``: the children of its flanneld processes (pid -> node
    state dir), as their own command line does not name the lab."""
    found: dict[int, str] = {}
    for parent in flanneld_pids(name):
        out = subprocess.run(["pgrep", "-P", str(parent), "-f", "wireguard-go"],
                             capture_output=True, text=True).stdout
        cmd = Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for pid in out.split():
            found[int(pid)] = cmd
    return found


def mounts_of(name: str) -> set[str]:
    """The mount namespaces (of any process) holding lab ``name``'s tmpfs on /run/wireguard
    (its source is k8snet-NAME)."""
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            text = (proc / "mountinfo").read_text()
            if any(" /run/wireguard " in x and f" k8snet-{name} " in x
                   for x in text.splitlines()):
                found.add(os.readlink(proc / "ns" / "mnt"))
        except OSError:  # the process ended while we looked
            continue
    return found


@pytest.fixture(scope="module")
def wg_cluster() -> Iterator[labmod.Lab]:
    why = kube_artifacts_missing()
    if why:
        pytest.skip(why)
    name = f"fw{os.getpid()}"
    try:
        built = labmod.up(labmod.LabSpec(name=name, kubernetes=True, cni="flannel",
                                         overlay="wireguard", overlay_mtu=1420))
    except LabError as exc:
        labmod.down(name)
        if "wireguard-go" in str(exc):  # the build could not make it
            pytest.skip(str(exc))
        raise
    yield built
    labmod.down(name)  # a no-op once test_down_leaves_nothing ran


def test_healthy_suite_on_flannel_wireguard(wg_cluster: labmod.Lab, tmp_path: Path) -> None:
    name = wg_cluster.name
    status = json.loads(cli("status", name, "--json").stdout)
    assert (status["cni"], status["flannel_backend"]) == ("flannel", "wireguard")
    wg = wireguard_go_pids(name)
    # One wireguard-go per node, each the child of that node's flanneld.
    assert sorted(n["name"] for c in wg.values() for n in wg_cluster.nodes
                  if f"/{name}/{n['name']}/" in c) == ["node-1", "node-2", "node-3"], wg
    for node in wg_cluster.nodes:
        link = netns.run(["ip", "-n", node["netns"], "-d", "-o", "link", "show", "flannel-wg"])
        assert " mtu 1420 " in link.stdout and " tun " in link.stdout, link.stdout
    # Each node's UAPI socket in a tmpfs of its own: the names would collide on the host's.
    assert len(mounts_of(name)) == 3
    code, out, outcomes = run_suite(wg_cluster, tmp_path)
    assert code == 0, out
    assert outcomes and set(outcomes.values()) == {"passed"}, out
    assert "overlay: flannel: wireguard flannel-wg UDP 51820, bridged (cni0)" in out
    assert "expected MTU 1420" in out


def test_blocked_overlay_port_on_wireguard_is_the_one_finding(wg_cluster: labmod.Lab,
                                                              tmp_path: Path) -> None:
    node2 = wg_cluster.node("node-2")["netns"]
    faults.add(wg_cluster, "vxlan-blocked", ["node-2"])
    try:
        rules = netns.run(["ip", "netns", "exec", node2, "iptables", "-S"]).stdout
        assert "--dport 51820 -m comment --comment k8snet-fault:vxlan-blocked" in rules.replace(
            '"', ""), rules
        assert "8472" not in rules
        code, out, outcomes = run_suite(wg_cluster, tmp_path)
    finally:
        faults.remove(wg_cluster, "vxlan-blocked", [])
    assert "51820" not in netns.run(["ip", "netns", "exec", node2, "iptables", "-S"]).stdout
    must, may, _words = EXPECTED["vxlan-blocked"]
    bad = failing(outcomes)
    assert code == 1, out
    assert must <= set(bad) <= must | may, out
    for test in must:
        assert set(bad[test]) == NODE2_PAIRS, (test, bad[test], out)
    assert BLOCKED in out
    results = json.loads((tmp_path / "results.json").read_text())
    causes = [f for f in results["findings"] if f.get("root") is None]
    assert [(f["id"], f["port"]) for f in causes] == [("vxlan-blocked:node-2", "51820")], causes
    assert not any("VXLAN" in f["message"] or "routed" in f["message"]
                   for f in results["findings"])


def test_down_leaves_nothing(wg_cluster: labmod.Lab) -> None:
    name = wg_cluster.name
    wg = wireguard_go_pids(name)
    assert len(wg) == 3
    assert labmod.down(name)
    alive = [pid for pid in wg if Path(f"/proc/{pid}").exists() and b"wireguard-go" in
             Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert alive == [], "wireguard-go outlived down"
    assert flanneld_pids(name) == []
    assert mounts_of(name) == set()
    assert not netns.list_netns(f"k8snet-{name}-")  # flannel-wg and cni0 lived in these
    assert subprocess.run(["ip", "link", "show", "flannel-wg"], capture_output=True
                          ).returncode != 0


def test_an_mtu_finding_on_wireguard_counts_its_padding() -> None:
    # underlay-mtu 1400 on node-2 of a wireguard cluster measured 1328 (WireGuard pads
    # to 16): the finding gives the underlay as a range that holds the real 1400.
    doc = json.loads((DATA / "flannel-wireguard-healthy.json").read_text())
    for e in doc["path_mtu"]:
        if e["network"] == "pod" and "node-2" in (e["src"], e["dst"]):
            e.update(bytes=1328, first_lost=1329)
    j = judge(doc)
    [mtu] = [f for f in roots(j) if f.id.startswith("mtu:")]
    assert "WireGuard adds 60 bytes and pads to 16, so the underlay carries 1388-1403" \
        in mtu.summary, mtu.summary
