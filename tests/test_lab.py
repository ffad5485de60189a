"""The lab end to end with the real tools: a healthy lab works, each fault breaks what it should."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults, netns

from .conftest import needs_root, sh

pytestmark = needs_root


def ping_ok(lab: labmod.Lab, src: str, ip: str, size: int = 56, df: bool = False) -> bool:
    argv = ["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-s", str(size)] + (
        ["-M", "do"] if df else []) + [ip]
    return sh(lab, src, *argv).returncode == 0


def curl(lab: labmod.Lab, src: str, url: str, max_time: float = 3) -> subprocess.CompletedProcess[str]:
    return sh(lab, src, "curl", "-sS", "-m", str(max_time), "-o", "/dev/null", "-w",
              "%{http_code} %{size_download}", url)


@pytest.fixture
def fault(lab: labmod.Lab) -> Iterator[object]:
    """Switch a fault on for one test; always switched off again."""
    on: list[tuple[str, list[str]]] = []

    def switch(name: str, nodes: list[str], value: str | None = None) -> None:
        faults.add(lab, name, nodes, value)
        on.append((name, nodes))

    yield switch
    for name, nodes in on:
        faults.remove(lab, name, nodes)


def test_healthy_lab_end_to_end(lab: labmod.Lab) -> None:
    pods = {n["name"]: n["probe"]["ip"] for n in lab.nodes}
    for src in pods:
        for dst, ip in pods.items():
            if src != dst:
                assert ping_ok(lab, f"{src}/probe", ip), f"{src}->{dst}"
                assert ping_ok(lab, f"{src}/probe", ip, size=1422, df=True), f"{src}->{dst} 1422 DF"
    svc = lab.service
    assert curl(lab, "node-1/probe", f"http://{svc['ip']}:{svc['port']}/").stdout.startswith("200")
    dig = sh(lab, "node-2/probe", "dig", "+short", "kubernetes.default.svc.cluster.local")
    assert dig.stdout.strip() == "10.96.0.1"
    assert sh(lab, "node-2/probe", "dig", "+short", lab.world["name"]).stdout.strip() == lab.world["ip"]
    assert curl(lab, "node-3/probe", f"http://{lab.world['name']}/").stdout.startswith("200")
    big = curl(lab, "node-1/probe", f"http://{pods['node-3']}:8080/1mib")
    assert big.stdout == "200 1048576"


def test_status_json_names(lab: labmod.Lab) -> None:
    out = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "status", lab.name, "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert data["name"] == lab.name and data["switch_netns"] == f"k8snet-{lab.name}-sw"
    node = data["nodes"][0]
    assert {"name", "netns", "ip", "pod_cidr", "switch_port", "probe"} <= set(node)
    assert set(node["probe"]) >= {"netns", "ip"}
    for key in ("service", "dns", "world", "gateway"):
        assert data[key]
    assert data["faults"] == []
    assert all(n.startswith(f"k8snet-{lab.name}-") for n in lab.all_netns())


def test_the_nodeport_leads_to_the_nodes_own_pods(lab: labmod.Lab) -> None:
    """NodePort 30080 on every node, shown by status, to that node's own probe and echo
    pods (externalTrafficPolicy Local), from another node's host network."""
    out = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "status", lab.name,
                          "--json"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["service"]["node_port"] == 30080
    for dst in ("node-1", "node-2"):
        src = "node-3"
        url = f"http://{lab.node(dst)['ip']}:30080/"
        names = {sh(lab, src, "curl", "-sS", "-m", "3", url).stdout.strip() for _ in range(4)}
        assert names == {f"probe-{dst}", f"echo-{dst}"}, (dst, names)


def test_host_firewall_closes_the_nodeport_range(lab: labmod.Lab, fault) -> None:  # type: ignore[no-untyped-def]
    fault("host-firewall", ["node-2"])
    assert curl(lab, "node-1", f"http://{lab.node('node-2')['ip']}:30080/", 2).returncode == 28
    assert curl(lab, "node-1", f"http://{lab.node('node-3')['ip']}:30080/", 2
                ).stdout.startswith("200")


def test_underlay_mtu_is_a_black_hole(lab: labmod.Lab, fault) -> None:  # type: ignore[no-untyped-def]
    fault("underlay-mtu", ["node-2"])
    dst = lab.node("node-2")["probe"]["ip"]
    assert ping_ok(lab, "node-1/probe", dst)
    assert not ping_ok(lab, "node-1/probe", dst, size=1400, df=True)
    assert ping_ok(lab, "node-1/probe", dst, size=1372, df=True)  # 1400-byte packets cross
    assert not ping_ok(lab, "node-1/probe", dst, size=1373, df=True)
    # Untouched pairs keep the full overlay MTU.
    assert ping_ok(lab, "node-1/probe", lab.node("node-3")["probe"]["ip"], size=1422, df=True)


def test_vxlan_blocked_cuts_pods_not_nodes(lab: labmod.Lab, fault) -> None:  # type: ignore[no-untyped-def]
    fault("vxlan-blocked", ["node-2"])
    assert ping_ok(lab, "node-1", lab.node("node-2")["ip"])
    assert not ping_ok(lab, "node-1/probe", lab.node("node-2")["probe"]["ip"])
    assert ping_ok(lab, "node-1/probe", lab.node("node-3")["probe"]["ip"])


def test_removing_a_fault_restores_the_lab(lab: labmod.Lab) -> None:
    dst = lab.node("node-2")["probe"]["ip"]
    faults.add(lab, "vxlan-blocked", ["node-2"])
    assert not ping_ok(lab, "node-1/probe", dst)
    faults.remove(lab, "vxlan-blocked", [])
    assert ping_ok(lab, "node-1/probe", dst)
    assert lab.faults == []


def test_ip_forward_off(lab: labmod.Lab, fault) -> None:  # type: ignore[no-untyped-def]
    fault("ip-forward-off", ["node-2"])
    assert netns.read_sysctl(lab.node("node-2")["netns"], "net.ipv4.ip_forward") == "0"
    assert not ping_ok(lab, "node-1/probe", lab.node("node-2")["probe"]["ip"])
    assert ping_ok(lab, "node-1", lab.node("node-2")["ip"])


def test_bridge_nf_off_breaks_local_service_backends(lab: labmod.Lab, fault) -> None:  # type: ignore[no-untyped-def]
    fault("bridge-nf-off", ["node-2"])
    answers = [curl(lab, "node-2/probe", f"http://{lab.service['ip']}/", 1) for _ in range(12)]
    ok = [a for a in answers if a.stdout.startswith("200")]
    assert 0 < len(ok) < len(answers)  # the local echo backend fails, the rest answer
    assert all(curl(lab, "node-1/probe", f"http://{lab.service['ip']}/", 1).stdout.startswith("200")
               for _ in range(6))


def test_egress_port_range_drops_low_source_ports(lab: labmod.Lab, fault) -> None:  # type: ignore[no-untyped-def]
    fault("egress-port-range", ["node-2"])
    url = f"http://{lab.world['ip']}/"
    low = sh(lab, "node-2/probe", "curl", "-s", "-o", "/dev/null", "-m", "1", "--local-port", "2000", url)
    high = sh(lab, "node-2/probe", "curl", "-s", "-o", "/dev/null", "-m", "1", "--local-port", "45000", url)
    host_low = sh(lab, "node-1/probe", "curl", "-s", "-o", "/dev/null", "-m", "1", "--local-port", "2001", url)
    assert low.returncode == 28 and high.returncode == 0 and host_low.returncode == 0


def test_cli_errors_are_one_line(lab: labmod.Lab) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", *args],
                              capture_output=True, text=True)

    for args, words in ((("fault", "add", lab.name, "nope"), "unknown fault"),
                        (("fault", "add", lab.name, "vxlan-blocked", "--node", "node-9"), "unknown node"),
                        (("up", "--name", lab.name), "already exists"),
                        (("status", "nolab"), "no lab named")):
        res = cli(*args)
        assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_a_bad_fault_value_is_one_line_and_changes_nothing(lab: labmod.Lab) -> None:
    """A bad VALUE is refused before the lab is touched: node-2 keeps the underlay-mtu it
    has, in its record and in its rules."""
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "fault", *args],
                              capture_output=True, text=True)

    def rules(node: str) -> list[str]:
        out = sh(lab, node, "iptables", "-S").stdout
        return [line for line in out.splitlines() if "k8snet-fault" in line]

    res = cli("add", lab.name, "underlay-mtu", "--node", "node-2", "--value", "1400")
    assert res.returncode == 0, res.stderr
    try:
        kept = rules("node-2")
        assert kept and all("1401:65535" in line for line in kept), kept
        for value in ("abc", "", "0", "67", "9001", "70000", "-1", "1_400", " 1400"):
            res = cli("add", lab.name, "underlay-mtu", "--node", "node-2", "--value", value)
            assert res.returncode == 2 and "Traceback" not in res.stderr, (value, res.stderr)
            assert res.stderr.strip() == ("k8snet-lab: error: underlay-mtu value must be a "
                                          f"whole number of bytes, 68..9000, got {value!r}")
            assert rules("node-2") == kept, value
            assert labmod.load(lab.name).faults == [
                {"name": "underlay-mtu", "node": "node-2", "value": "1400"}], value
        res = cli("add", lab.name, "vxlan-blocked", "--node", "node-1", "--value", "x")
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip() == "k8snet-lab: error: vxlan-blocked takes no value, got 'x'"
        assert rules("node-1") == [] and len(labmod.load(lab.name).faults) == 1
    finally:
        cli("remove", lab.name, "underlay-mtu")
    assert rules("node-2") == [] and labmod.load(lab.name).faults == []


def test_pod_cidr_overlap_is_built_in() -> None:
    name = f"o{os.getpid()}"
    built = labmod.up(labmod.LabSpec(name=name, nodes=2, faults=(("pod-cidr-overlap", (), None),)))
    try:
        assert built.spec["pod_cidr"] == "172.28.0.0/16"
        assert ping_ok(built, "node-1/probe", built.node("node-2")["probe"]["ip"])
    finally:
        labmod.down(name)
    assert not netns.list_netns(f"k8snet-{name}-")


@pytest.mark.parametrize("delay", [0.15, 0.25, 0.35])
def test_killed_up_is_cleaned_by_down(delay: float) -> None:
    # Killed at different points of the build: a helper `ip -batch` the killed `up` left
    # running must not add namespaces after `down` has listed them.
    name = f"k{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-m", "pytest_k8snet.lab.cli", "up", "--name", name,
                             "--nodes", "8"], stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        labmod.down(name)
        assert not netns.list_netns(f"k8snet-{name}-")
        assert not [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, f"--lab {name} ")]
    finally:
        labmod.down(name)


def _cmdline_has(pid: str, text: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return text in fh.read().replace(b"\0", b" ").decode(errors="replace") + " "
    except OSError:
        return False


def test_run_in_a_user_namespace_leaves_nothing(tmp_path: object) -> None:
    """`k8snet-lab run --userns` takes the path a normal user gets: the suite inside
    `unshare --user --map-root-user --net --mount`, with private /run and /etc/netns."""
    from pytest_k8snet.lab.run import userns_available

    if not userns_available():
        pytest.skip("user namespaces are disabled on this kernel")
    proc = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "run", "--userns",
                           "--name", "userns", "--nodes", "2", "--", sys.executable, "-m", "pytest",
                           "--pyargs", "pytest_k8snet.suite", "-q", "-p", "no:cacheprovider",
                           "-k", "ping or dns or sysctls"],
                          capture_output=True, text=True, timeout=180, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and "failed" not in proc.stdout
    # Its namespaces lived in the user namespace's private /run: the host never saw them.
    assert not netns.list_netns("k8snet-userns-")


def _neighbours(built: labmod.Lab) -> tuple[list[str], list[str], int]:
    """(non-permanent IPv4 entries, IPv6 entries, permanent IPv4 entries) across the lab."""
    dynamic, v6, permanent = [], [], 0
    for name in built.all_netns():
        for line in netns.run(["ip", "-n", name, "-4", "neigh", "show", "nud", "all"]).stdout.splitlines():
            if line.rstrip().endswith("PERMANENT"):
                permanent += 1
            elif line.strip():
                dynamic.append(f"{name}: {line}")
        v6 += [f"{name}: {line}" for line in
               netns.run(["ip", "-n", name, "-6", "neigh", "show", "nud", "all"]).stdout.splitlines()
               if line.strip()]
    return dynamic, v6, permanent


def test_suite_run_needs_no_dynamic_neighbour_entries(tmp_path: object) -> None:
    """The host's neighbour table (gc_thresh3, 1024) is one for every namespace: the lab's
    traffic must not need an entry in it. Entries are permanent; IPv6 (multicast entries
    for every interface) is off; bridges do not snoop (IGMP reports)."""
    name = f"s{os.getpid()}n"
    built = labmod.up(labmod.LabSpec(name=name, nodes=4))
    try:
        env = dict(os.environ, K8SNET_LAB_NAME=name)
        env.pop("K8SNET_LAB", None)
        proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                               "-q", "-p", "no:cacheprovider"], capture_output=True, text=True,
                              timeout=300, cwd=str(tmp_path), env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        dynamic, v6, permanent = _neighbours(built)
    finally:
        labmod.down(name)
    assert not dynamic, "\n".join(dynamic)
    assert not v6, "\n".join(v6[:20])
    # Per node: 3 peers + gateway on eth0, 2 pods on cni0, 3 VTEPs; per pod: gateway + sibling;
    # gateway: 4 nodes + world + dns; world and dns: the gateway.
    assert permanent == 4 * (4 + 2 + 3) + 8 * 2 + 6 + 2


def test_up_beyond_max_nodes_refuses_and_leaves_nothing() -> None:
    name = f"s{os.getpid()}m"
    res = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "up", "--name", name,
                          "--nodes", str(labmod.MAX_NODES + 1)], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == (f"k8snet-lab: error: --nodes must be 1..{labmod.MAX_NODES}, "
                                  f"got {labmod.MAX_NODES + 1}")
    assert not netns.list_netns(f"k8snet-{name}-") and name not in labmod.running_labs()
    assert not (labmod.STATE_ROOT / name).exists()
    assert not (labmod.STATE_ROOT / f".{name}.lock").exists()


def test_lab_of_64_nodes_crosses_without_arp() -> None:
    name = f"s{os.getpid()}w"
    built = labmod.up(labmod.LabSpec(name=name, nodes=64))
    try:
        far = built.node("node-64")
        assert ping_ok(built, "node-1/probe", far["probe"]["ip"])
        assert ping_ok(built, "node-1", far["ip"])
        assert ping_ok(built, "node-64/probe", built.node("node-1")["echo"]["ip"], size=1422, df=True)
        assert curl(built, "node-64/probe", f"http://{built.world['name']}/").stdout.startswith("200")
        assert curl(built, "node-33/probe", f"http://{built.service['ip']}/").stdout.startswith("200")
        dynamic, v6, _ = _neighbours(built)
    finally:
        labmod.down(name)
    assert not dynamic and not v6, dynamic + v6


def test_host_limits_are_named_before_the_lab_is_built(
        tmp_path: "os.PathLike[str]", monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    sysctl = os.path.join(os.fspath(tmp_path), "user")
    os.makedirs(sysctl)
    with open(os.path.join(sysctl, "max_net_namespaces"), "w") as fh:
        fh.write("20\n")
    monkeypatch.setattr(netns, "SYSCTL_ROOT", os.fspath(tmp_path))
    name = f"s{os.getpid()}l"
    with pytest.raises(labmod.LabError) as err:
        labmod.up(labmod.LabSpec(name=name, nodes=8))
    msg = str(err.value)
    assert "user.max_net_namespaces is 20" in msg and "sysctl -w user.max_net_namespaces=" in msg
    assert "\n" not in msg
    assert not netns.list_netns(f"k8snet-{name}-") and name not in labmod.running_labs()
    assert not (labmod.STATE_ROOT / f".{name}.lock").exists()
    # A hard open-files limit below what the server needs: said, with how to raise it.
    monkeypatch.setattr(netns, "SYSCTL_ROOT", "/nonexistent")
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (256, 512))
    monkeypatch.setattr(resource, "setrlimit", lambda _which, _limits: None)
    problems = netns.host_limits(196, 129)
    assert len(problems) == 1 and "ulimit -Hn 1153" in problems[0], problems


@needs_root
def test_a_failed_bring_up_keeps_the_logs_its_error_points_to(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The error of a failed bring-up says "logs in DIR"; teardown removes the state dir, so
    the logs are copied out first and the message names the copy."""
    from pytest_k8snet.lab import bringup, daemons

    name = f"kl{os.getpid()}"

    def fail(lab: labmod.Lab) -> None:
        (lab.state_dir / "node-1").mkdir(parents=True, exist_ok=True)
        (lab.state_dir / "node-1" / "run.log").write_text("kubelet: the last words\n")
        raise netns.LabError(f"not every kubelet registered in time; logs in {lab.state_dir}")

    monkeypatch.setattr(daemons, "start", fail)
    kept = bringup.Path("/var/tmp") / f"k8snet-{name}-logs"
    try:
        with pytest.raises(netns.LabError) as err:
            labmod.up(labmod.LabSpec(name=name, nodes=2))
        assert str(err.value) == (f"not every kubelet registered in time; logs in {kept} "
                                  "(kept for you: remove it when done)")
        assert (kept / "node-1" / "run.log").read_text() == "kubelet: the last words\n"
        assert name not in labmod.running_labs()
        assert not [n for n in netns.list_netns() if f"-{name}-" in n]
    finally:
        labmod.down(name)
        shutil.rmtree(kept, ignore_errors=True)


def test_a_128_node_plan_fits_the_node_network_and_the_pod_cidr() -> None:
    """The lab's most nodes: every node address is in 172.28.128.0/24, none is the
    gateway's (.254) or another's, every node has a /24 of its own, and one more node is
    refused in one line."""
    import ipaddress

    lab = labmod.plan(labmod.LabSpec(name="big", nodes=labmod.MAX_NODES))
    assert labmod.MAX_NODES == 128 and len(lab.nodes) == 128
    net = ipaddress.ip_network("172.28.128.0/24")
    ips = [n["ip"] for n in lab.nodes]
    assert len(set(ips)) == 128 and all(ipaddress.ip_address(ip) in net for ip in ips)
    assert lab.gateway["ip"] == "172.28.128.254" and lab.gateway["ip"] not in ips
    cidrs = [n["pod_cidr"] for n in lab.nodes]
    assert len(set(cidrs)) == 128 and cidrs[-1] == "10.244.127.0/24"
    assert len({n["vtep_mac"] for n in lab.nodes}) == 128
    labmod.LabSpec(name="big", nodes=128).validate()
    with pytest.raises(labmod.LabError, match=r"--nodes must be 1\.\.128, got 129"):
        labmod.LabSpec(name="big", nodes=129).validate()
