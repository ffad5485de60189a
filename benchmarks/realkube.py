"""The lab's real Kubernetes mode: bring-up, memory, exec latency and suite time.

Targets (issue 7): bring-up < 30 s warm, suite < 15 s on 3 nodes, cluster memory < 1.5 GiB
for 3 nodes. Run as root once the pieces are built (``k8snet-lab build``)::

    python benchmarks/realkube.py [--sizes 3,8] [--suite-runs 3] [--execs 20]
        [--cni flannel|lab] [--flannel-backend vxlan|host-gw] [--proxy-mode iptables|nftables]
    python benchmarks/realkube.py --shapes all --sizes 3   # lab, flannel vxlan iptables and
                                   # nftables, host-gw, wireguard, dual-stack vxlan in turn

Every figure is printed on a line of its own, prefixed with the shape and node count.

Memory is the proportional set size (PSS) of every process of the cluster (found by the
lab's cgroups, plus the API forwarder), so shared pages of the one Kubernetes binary are
counted once. Exec latency is the plugin's own exec path (the Python client through the
API server and the kubelet) into a probe pod, ``true`` each time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import kube
from pytest_k8snet.lab.plan import default_overlay_mtu

TARGETS = {"up": 30.0, "suite": 15.0, "memory_gib": 1.5}


def pss_mib(name: str, extra: list[int]) -> float:
    total = 0
    for pid in kube.cgroup_pids(name) | set(extra):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(m.group(1)) if m else 0
    return total / 1024


def exec_latency(lab: labmod.Lab, count: int) -> list[float]:
    """Milliseconds per exec through the kubernetes client, into a throwaway probe pod."""
    import kubernetes.client
    import kubernetes.config
    from kubernetes.stream import stream

    kubectl = [str(kube.artifacts().kube), "kubectl", "--kubeconfig",
               lab.kubernetes["kubeconfig"]]
    subprocess.run([*kubectl, "run", "k8snet-bench", "--image", kube.PROBE_IMAGE,
                    "--image-pull-policy", "Never", "--restart", "Never",
                    "--command", "--", "sleep", "600"], check=True, capture_output=True)
    try:
        subprocess.run([*kubectl, "wait", "--for=condition=Ready", "pod/k8snet-bench",
                        "--timeout=60s"], check=True, capture_output=True)
        api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(
            lab.kubernetes["kubeconfig"]))
        times = []
        for _ in range(count):
            t = time.perf_counter()
            stream(api.connect_get_namespaced_pod_exec, "k8snet-bench", "default",
                   command=["true"], stderr=True, stdout=True, stdin=False, tty=False)
            times.append((time.perf_counter() - t) * 1000)
        return times
    finally:
        subprocess.run([*kubectl, "delete", "pod", "k8snet-bench", "--wait=false"],
                       capture_output=True)


def suite_seconds(lab: labmod.Lab) -> tuple[float, str, int | None, float | None]:
    """(wall seconds, pytest's last line, exec sessions, seconds the checks measured: the
    results' timings_s; the rest of the wall time is probe set-up, clean-up and pytest)."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                               "-p", "no:cacheprovider", "-q", "--k8s-results", str(results)],
                              capture_output=True, text=True, cwd=tmp,
                              env={**os.environ, **kube.client_env(lab)})
        took = time.perf_counter() - t
        execs, measured = None, None
        if results.exists():
            data = json.loads(results.read_text())
            execs = data.get("run", {}).get("exec_sessions")
            measured = sum(float(v) for v in (data.get("timings_s") or {}).values())
    last = (proc.stdout.strip().splitlines() or ["?"])[-1]
    return took, last, execs, measured


# The shapes ``--shapes`` measures one after the other:
# (label, cni, overlay, proxy mode, IP family).
SHAPES = {
    "lab": ("--cni lab", "lab", "vxlan", "iptables", "ipv4"),
    "vxlan-iptables": ("--cni flannel vxlan, kube-proxy iptables", "flannel", "vxlan",
                       "iptables", "ipv4"),
    "vxlan-nftables": ("--cni flannel vxlan, kube-proxy nftables", "flannel", "vxlan",
                       "nftables", "ipv4"),
    "host-gw": ("--cni flannel host-gw, kube-proxy iptables", "flannel", "host-gw",
                "iptables", "ipv4"),
    "wireguard": ("--cni flannel wireguard (wireguard-go), kube-proxy iptables", "flannel",
                  "wireguard", "iptables", "ipv4"),
    "dual": ("--cni flannel vxlan --ip-family dual, kube-proxy iptables", "flannel", "vxlan",
             "iptables", "dual"),
}


def measure(label: str, cni: str, overlay: str, proxy_mode: str, family: str, n: int,
            args: argparse.Namespace) -> None:
    """One cluster of shape (cni, overlay, proxy_mode, IP family) and ``n`` nodes: one
    figure a line."""
    name = f"bk{os.getpid()}n{n}"
    head = f"{label}, {n} nodes:"
    t = time.perf_counter()
    lab = labmod.up(labmod.LabSpec(
        name=name, nodes=n, kubernetes=True, cni=cni, overlay=overlay,
        overlay_mtu=default_overlay_mtu(overlay, 1500, family), proxy_mode=proxy_mode,
        ip_family=family))
    up_s = time.perf_counter() - t
    try:
        print(f"{head} up {up_s:.1f} s (target < {TARGETS['up']:g} s warm)", flush=True)
        time.sleep(5)  # let the first pods settle before sizing memory
        mem = pss_mib(name, [lab.pids.get("forward", 0)])
        print(f"{head} memory {mem:.0f} MiB PSS"
              + (f" (target < {TARGETS['memory_gib'] * 1024:.0f} MiB)" if n == 3 else ""),
              flush=True)
        if args.execs:
            ms = exec_latency(lab, args.execs)
            print(f"{head} exec via the API server: median {statistics.median(ms):.0f} ms, "
                  f"max {max(ms):.0f} ms over {len(ms)}", flush=True)
        for i in range(args.suite_runs):
            took, last, execs, measured = suite_seconds(lab)
            print(f"{head} suite run {i + 1}: {took:.1f} s ({last})"
                  + (f", {execs} exec sessions" if execs else "")
                  + (f"; measuring {measured:.1f} s, probe set-up, clean-up and pytest "
                     f"{took - measured:.1f} s" if measured is not None else "")
                  + (f" (target < {TARGETS['suite']:g} s)" if n == 3 else ""), flush=True)
        if args.suite_runs:
            print(f"{head} memory after the suite "
                  f"{pss_mib(name, [lab.pids.get('forward', 0)]):.0f} MiB PSS", flush=True)
    finally:
        t = time.perf_counter()
        labmod.down(name)
        print(f"{head} down {time.perf_counter() - t:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="3,8")
    parser.add_argument("--suite-runs", type=int, default=3)
    parser.add_argument("--execs", type=int, default=20)
    parser.add_argument("--cni", choices=("lab", "flannel"), default="flannel")
    parser.add_argument("--flannel-backend", choices=("vxlan", "host-gw", "wireguard"),
                        default="vxlan")
    parser.add_argument("--proxy-mode", choices=("iptables", "nftables"), default="iptables")
    parser.add_argument("--shapes", default=None, metavar="SHAPE[,SHAPE]",
                        help=f"measure these shapes in turn ({', '.join(SHAPES)}, or all) "
                        "instead of --cni/--flannel-backend/--proxy-mode")
    args = parser.parse_args()
    if args.shapes:
        wanted = list(SHAPES) if args.shapes == "all" else args.shapes.split(",")
        unknown = [w for w in wanted if w not in SHAPES]
        if unknown:
            parser.error(f"unknown shape {unknown[0]!r}; known: {', '.join(SHAPES)}, all")
        shapes = [SHAPES[w] for w in wanted]
    else:
        overlay = args.flannel_backend if args.cni == "flannel" else "vxlan"
        label = f"--cni {args.cni}" + (f" {overlay}" if args.cni == "flannel" else "")
        shapes = [(f"{label}, kube-proxy {args.proxy_mode}", args.cni, overlay,
                   args.proxy_mode, "ipv4")]
    kube.build()
    for label, cni, overlay, proxy_mode, family in shapes:
        for n in (int(s) for s in args.sizes.split(",")):
            measure(label, cni, overlay, proxy_mode, family, n, args)


if __name__ == "__main__":
    main()
