"""The kube backend's own control-plane cost at N nodes: a real kube-apiserver + etcd +
kube-controller-manager, kwok standing in for the kubelets (tools/kwok.sh), the built-in
suite run against it with the kube backend.

kwok's pods never run a container and its Nodes have no kubelet port, so every exec fails
in the API server: what this measures is node listing, creating 2 probe pods per node,
waiting for them, the exec sessions the plugin attempts, and cleanup -- not the network.

Prints one figure per line:

* ``setup_s``: the backend's ``nodes()`` + ``start()`` (listing, creation, readiness
  waits, readiness execs), timed inside pytest;
* ``cleanup_s``: the backend's ``cleanup()``;
* ``api_requests`` total and ``per_node``, and per verb/resource: every request of the
  run's identity (the ``k8snet`` ServiceAccount of examples/rbac.yaml, so the run also
  proves that RBAC is enough) in the API server's audit log;
* ``exec_sessions``: pods/exec requests in that log;
* ``pytest_peak_rss_mib``: pytest's maximum resident set size (getrusage of the child);
* ``items`` and ``items_per_node``: the items pytest collected;
* ``pytest_wall_s`` and the exit code.

Run as root, after ``tools/kwok.sh build``:
``python benchmarks/kwok_scale.py [--nodes 1000] [-- extra pytest args]`` (default pytest
args: ``--k8s-pairs ring``: with ``all`` 1,000 nodes are a million pair items).
Everything it starts is stopped at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KWOK_SH = ROOT / "tools" / "kwok.sh"
RBAC = ROOT / "examples" / "rbac.yaml"
SA_USER = "system:serviceaccount:k8snet:k8snet"
AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: ["{SA_USER}"]
- level: None
"""
# Loaded into pytest with -p: times the backend's phases and counts items, into a JSON file.
TIMER_PLUGIN = '''
import json, os, time
from pytest_k8snet.backends.kube import backend as _b

_OUT = os.environ["K8SNET_KWOK_TIMES"]
_times = {"nodes": 0.0, "start": 0.0, "cleanup": 0.0, "items": 0}


def _save():
    with open(_OUT, "w") as f:
        json.dump(_times, f)


def _timed(name, fn):
    def wrapper(*args, **kwargs):
        t = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            _times[name] += time.monotonic() - t
            _save()
    return wrapper


for _name in ("nodes", "start", "cleanup"):
    setattr(_b.KubeBackend, _name, _timed(_name, getattr(_b.KubeBackend, _name)))


def pytest_collection_finish(session):
    _times["items"] = len(session.items)
    _save()
'''


def sh(*argv: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {proc.stderr.strip()[-2000:]}")


@contextmanager
def control_plane(work: Path) -> Iterator[Path]:
    """API server + etcd + kube-controller-manager + kwok in ``work``, stopped on exit."""
    policy = work / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    env = {**os.environ, "AUDIT_POLICY": str(policy)}
    try:
        sh("bash", str(KWOK_SH), "start", str(work), env=env)
        yield work
    finally:
        subprocess.run(["bash", str(KWOK_SH), "stop", str(work)], capture_output=True,
                       timeout=120)


def admin_api(work: Path) -> Any:
    from kubernetes import client, config

    conf = client.Configuration()
    conf.connection_pool_maxsize = 64
    return config.new_client_from_config(config_file=str(work / "kubeconfig"),
                                         client_configuration=conf)


def make_nodes(api: Any, n: int) -> None:
    """``n`` Nodes for kwok (annotated for it), each with an address and a Pod CIDR."""
    from kubernetes import client

    core = client.CoreV1Api(api)

    def create(i: int) -> None:
        name = f"kwok-{i:05d}"
        core.create_node({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": name,
                                    "type": "kwok"}},
            "spec": {"podCIDR": f"10.{64 + i // 256}.{i % 256}.0/24",
                     "podCIDRs": [f"10.{64 + i // 256}.{i % 256}.0/24"]},
            "status": {"addresses": [
                {"type": "InternalIP", "address": f"172.{16 + i // 65536}.{i // 256 % 256}."
                                                  f"{i % 256}"},
                {"type": "Hostname", "address": name}]}})

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(create, range(n)))
    deadline = time.monotonic() + 300
    while True:
        items = api.sanitize_for_serialization(core.list_node().items)
        ready = sum(1 for node in items for c in (node.get("status") or {}).get("conditions") or []
                    if c["type"] == "Ready" and c["status"] == "True")
        if ready >= n:
            return
        if time.monotonic() > deadline:
            sys.exit(f"only {ready} of {n} kwok nodes Ready after 300 s")
        time.sleep(1)


def run_kubeconfig(api: Any, work: Path) -> Path:
    """examples/rbac.yaml applied; a kubeconfig with a token of its ServiceAccount."""
    from kubernetes import client, utils

    utils.create_from_yaml(api, str(RBAC))
    core = client.CoreV1Api(api)
    token = core.create_namespaced_service_account_token(
        "k8snet", "k8snet", {"spec": {"expirationSeconds": 7200}}).status.token
    path = work / "kubeconfig-k8snet"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "k8snet",
        "clusters": [{"name": "kwok", "cluster": {
            "server": api.configuration.host,
            "certificate-authority": str(work / "ca.crt")}}],
        "users": [{"name": "k8snet", "user": {"token": token}}],
        "contexts": [{"name": "k8snet", "context": {"cluster": "kwok", "user": "k8snet"}}]}))
    path.chmod(0o600)
    return path


def run_pytest(work: Path, kubeconfig: Path, extra: list[str]) -> tuple[int, float, float]:
    """The built-in suite through ``kubeconfig``: exit code, wall seconds, peak RSS MiB."""
    (work / "kwok_timer.py").write_text(TIMER_PLUGIN)
    env = {**os.environ, "PYTHONPATH": f"{work}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "K8SNET_KWOK_TIMES": str(work / "times.json")}
    argv = [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
            "-p", "kwok_timer", "-p", "no:cacheprovider", "-q", "--no-header", "-rN",
            "--k8s-kubeconfig", str(kubeconfig), *extra]
    start = time.monotonic()
    with open(work / "pytest.log", "w") as log:
        proc = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    wall = time.monotonic() - start
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return proc.returncode, wall, rss_kib / 1024


def audit_counts(work: Path) -> collections.Counter[str]:
    """Requests of the run's identity by ``verb resource[/subresource]``."""
    counts: collections.Counter[str] = collections.Counter()
    # the API server rotates audit.log at 100 MB (each exec's command is in its URI)
    for path in sorted(work.glob("audit*.log")):
        with open(path) as f:
            for line in f:
                e = json.loads(line)
                if (e.get("user") or {}).get("username") != SA_USER:
                    continue
                ref = e.get("objectRef") or {}
                res = ref.get("resource") or e.get("requestURI", "?").split("?")[0]
                if ref.get("subresource"):
                    res += "/" + ref["subresource"]
                counts[f"{e.get('verb')} {res}"] += 1
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--keep-dir", action="store_true", help="keep the work directory")
    ap.add_argument("pytest_args", nargs="*", default=None,
                    help="after --: pytest arguments (default: --k8s-pairs ring)")
    args = ap.parse_args()
    if args.nodes < 1:
        ap.error("--nodes must be at least 1")
    extra = args.pytest_args or ["--k8s-pairs", "ring"]
    # SIGTERM unwinds like Ctrl-C, so the control plane is stopped either way (SIGINT too
    # when a shell started this in the background with SIGINT ignored).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="kwok-scale-"))
    try:
        with control_plane(work):
            api = admin_api(work)
            t = time.monotonic()
            make_nodes(api, args.nodes)
            print(f"nodes_ready_s {time.monotonic() - t:.1f}  # {args.nodes} kwok Nodes Ready")
            kubeconfig = run_kubeconfig(api, work)
            code, wall, rss = run_pytest(work, kubeconfig, extra)
            api.close()
            times = json.loads((work / "times.json").read_text()) \
                if (work / "times.json").exists() else {}
            counts = audit_counts(work)
            lines = (work / "pytest.log").read_text().strip().splitlines()
            summary = lines[-1] if lines else ""
    except KeyboardInterrupt:
        print("interrupted; control plane stopped", file=sys.stderr)
        return 130
    finally:
        if not args.keep_dir:
            subprocess.run(["rm", "-rf", str(work)])
    n = args.nodes
    total = sum(counts.values())
    execs = sum(v for k, v in counts.items() if k.endswith("pods/exec"))
    items = int(times.get("items") or 0)
    print(f"nodes {n}")
    print(f"pytest_exit {code}  # {summary}")
    print(f"pytest_wall_s {wall:.1f}")
    print(f"setup_s {times.get('nodes', 0) + times.get('start', 0):.1f}")
    print(f"cleanup_s {times.get('cleanup', 0):.1f}")
    print(f"api_requests {total}")
    print(f"api_requests_per_node {total / n:.2f}")
    for key, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"api_requests[{key}] {v} ({v / n:.2f}/node)")
    print(f"exec_sessions {execs}")
    print(f"pytest_peak_rss_mib {rss:.0f}")
    print(f"items {items}")
    print(f"items_per_node {items / n:.2f}")
    if args.keep_dir:
        print(f"work_dir {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
