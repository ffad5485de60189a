"""The kube backend against a real kube-apiserver v1.33 (+ etcd and kube-controller-manager).

``tools/kube-apiserver.sh`` runs the real API server on 127.0.0.1; there is no kubelet, so
pods stay Pending and no container ever runs. What only a kubelet does -- setting a pod's
status, emitting its Events -- is played by these tests through the API (``Kubelet``
below, and each test says so). Exec goes through the real API server to the *fake
kubelet* of ``WITH_FAKE_KUBELET=1 tools/kube-apiserver.sh`` (the kubelet's own streaming
code, running the command on this machine, not in a container) for nodes pointing at it,
and fails realistically for nodes whose kubelet refuses or does not answer.

The pure tests read objects in tests/data/kube_*.json, captured from that API server by
``python -m tests.test_kube_api capture KUBECONFIG`` (the same helpers, ``managedFields``
dropped).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.backends import BackendError, Node
from pytest_k8snet.backends import kube as kb
from pytest_k8snet.backends.kube.api import KubeApi
from pytest_k8snet.backends.kube.exec import _close_ws
from pytest_k8snet.options import DEFAULT_IMAGE, Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SCRIPT = ROOT / "tools" / "kube-apiserver.sh"
BIN = Path(os.environ.get("K8SNET_CACHE", "/var/cache/k8snet")) / "bin"
SUITE_LABEL = "k8snet-test/suite"
IMAGE = DEFAULT_IMAGE


def _why_no_apiserver() -> str | None:
    if os.geteuid() != 0:
        return "the kube-apiserver tests run as root (tools/kube-apiserver.sh)"
    for name in ("kube-apiserver", "kube-controller-manager"):
        if not os.access(BIN / name, os.X_OK):
            return (f"{BIN / name} missing: run `WITH_KCM=1 WITH_FAKE_KUBELET=1 "
                    "tools/kube-apiserver.sh build`")
    if not shutil.which(os.environ.get("ETCD", "etcd")):
        return "etcd missing: run `WITH_KCM=1 WITH_FAKE_KUBELET=1 tools/kube-apiserver.sh build`"
    return None


def read(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def settings(**over: Any) -> Settings:
    values: dict[str, Any] = dict(
        kubeconfig=None, context=None, backend="kube", lab=None, lab_nodes=3, namespace=None,
        probe_image=IMAGE, node_selector=None, pairs="all", expect_mtu=None, timeout=0.3,
        keep=False, results=None, baseline=None, baseline_tolerance=20.0,
        egress_url="http://example.com/", egress_attempts=5, run_id=secrets.token_hex(4))
    values.update(over)
    # no kubelet runs here: wait what the old bound was (10 x timeout), not minutes
    values.setdefault("setup_timeout", 10 * float(values["timeout"]))
    return Settings(**values)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- what a kubelet would do, done through the API ------------------------------------------


def node_manifest(name: str, ip: str, ready: str | None, *, cidrs: list[str] | None = None,
                  labels: dict[str, str] | None = None, port: int = 10250,
                  conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    conds = list(conditions or [])
    if ready is not None:
        conds.insert(0, {"type": "Ready", "status": ready, "lastHeartbeatTime": now(),
                         "lastTransitionTime": now(),
                         **({"reason": "KubeletReady", "message": "kubelet is posting ready "
                             "status"} if ready == "True" else
                            {"reason": "KubeletNotReady", "message": "container runtime network "
                             "not ready: NetworkReady=false reason:NetworkPluginNotReady "
                             "message:Network plugin returns error: cni plugin not initialized"})})
    spec: dict[str, Any] = {}
    if cidrs:
        spec = {"podCIDR": cidrs[0], "podCIDRs": cidrs}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": spec,
            # no Hostname address: the API server would dial the kubelet by that name first
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                       "conditions": conds}}


def set_taints(core: Any, name: str, taints: list[dict[str, str]]) -> None:
    """TaintNodesByCondition admission adds not-ready:NoSchedule to every new Node; a real
    cluster's node lifecycle controller lifts it once the node is Ready."""
    core.patch_node(name, {"spec": {"taints": taints or None}})


def mark_running(core: Any, pod: dict[str, Any], ip: str) -> None:
    """Pod status as a kubelet reports a started, ready container."""
    t = now()
    image = pod["spec"]["containers"][0]["image"]
    status = {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": t,
        "hostIP": ip if pod["spec"].get("hostNetwork") else "192.0.2.99",
        "conditions": [{"type": c, "status": "True", "lastTransitionTime": t} for c in (
            "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
            "PodScheduled")],
        "containerStatuses": [{
            "name": "probe", "image": image, "imageID": f"{image}@sha256:{'0' * 64}",
            "containerID": f"containerd://{'1' * 64}", "ready": True, "started": True,
            "restartCount": 0, "state": {"running": {"startedAt": t}}}]}
    core.patch_namespaced_pod_status(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                     {"status": status})


def image_pull_backoff(core: Any, pod: dict[str, Any]) -> None:
    """Pod status as a kubelet reports an image it cannot pull (message as containerd's)."""
    image = pod["spec"]["containers"][0]["image"]
    msg = (f'Back-off pulling image "{image}": ErrImagePull: failed to pull and unpack image '
           f'"{image}": failed to resolve reference "{image}": failed to do request: Head '
           '"https://registry-1.docker.io/v2/nicolaka/netshoot/manifests/v0.13": dial tcp: '
           "lookup registry-1.docker.io: no such host")
    t = now()
    core.patch_namespaced_pod_status(pod["metadata"]["name"], pod["metadata"]["namespace"], {
        "status": {"phase": "Pending", "startTime": t, "hostIP": "192.0.2.99",
                   "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": t,
                                   "reason": "ContainersNotReady",
                                   "message": "containers with unready status: [probe]"},
                                  {"type": "PodScheduled", "status": "True",
                                   "lastTransitionTime": t}],
                   "containerStatuses": [{
                       "name": "probe", "image": image, "imageID": "", "ready": False,
                       "started": False, "restartCount": 0,
                       "state": {"waiting": {"reason": "ImagePullBackOff", "message": msg}}}]}})


def crash_loop(core: Any, pod: dict[str, Any]) -> None:
    """A container that keeps exiting (the probe script finding no HTTP server)."""
    image = pod["spec"]["containers"][0]["image"]
    t = now()
    core.patch_namespaced_pod_status(pod["metadata"]["name"], pod["metadata"]["namespace"], {
        "status": {"phase": "Running", "startTime": t, "hostIP": "192.0.2.99",
                   "podIP": "10.244.9.9", "podIPs": [{"ip": "10.244.9.9"}],
                   "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": t}],
                   "containerStatuses": [{
                       "name": "probe", "image": image, "imageID": f"{image}@sha256:{'0' * 64}",
                       "ready": False, "started": False, "restartCount": 4,
                       "state": {"waiting": {"reason": "CrashLoopBackOff",
                                             "message": "back-off 1m20s restarting failed "
                                             "container=probe pod=" + pod["metadata"]["name"]}},
                       "lastState": {"terminated": {
                           "exitCode": 1, "reason": "Error", "startedAt": t, "finishedAt": t,
                           "message": "k8snet: no HTTP server in the probe image (need python3, "
                           "busybox httpd, httpd or socat)\n"}}}]}})


def rejected(core: Any, pod: dict[str, Any]) -> None:
    """A pod the kubelet refused to admit (phase Failed)."""
    core.patch_namespaced_pod_status(pod["metadata"]["name"], pod["metadata"]["namespace"], {
        "status": {"phase": "Failed", "reason": "OutOfcpu", "startTime": now(),
                   "message": "Pod was rejected: Node didn't have enough resource: cpu, "
                   "requested: 10, used: 3995, capacity: 4000"}})


def warning_event(core: Any, pod: dict[str, Any], reason: str, message: str,
                  count: int = 1) -> None:
    """A core/v1 Event about ``pod`` as the kubelet on its node would post it."""
    meta, node = pod["metadata"], pod["spec"]["nodeName"]
    t = now()
    core.create_namespaced_event(meta["namespace"], {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}",
                     "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta["uid"],
                           "resourceVersion": meta["resourceVersion"]},
        "reason": reason, "message": message, "type": "Warning", "count": count,
        "firstTimestamp": t, "lastTimestamp": t,
        "source": {"component": "kubelet", "host": node},
        "reportingComponent": "kubelet", "reportingInstance": node})


SANDBOX_MESSAGE = (
    'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for '
    'sandbox "3f5c0e2c9b7e": plugin type="calico" failed (add): stat /var/lib/calico/nodename: '
    "no such file or directory: check that the calico/node container is running and has "
    "mounted /var/lib/calico/")


class Kubelet:
    """Plays the kubelet for a run's pods: ``act(core, pod)`` once per pod, in a thread."""

    def __init__(self, core: Any, namespace: str, run_id: str,
                 act: Callable[[Any, dict[str, Any]], None]) -> None:
        self.core, self.namespace, self.run_id, self.act = core, namespace, run_id, act
        self.done: set[str] = set()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                for pod in list_pods(self.core, self.namespace, self.run_id):
                    if pod["metadata"]["name"] not in self.done:
                        self.done.add(pod["metadata"]["name"])
                        self.act(self.core, pod)
                self._stop.wait(0.05)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            self.error = exc

    def __enter__(self) -> "Kubelet":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise self.error


def list_pods(core: Any, namespace: str, run_id: str | None = None) -> list[dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException

    try:
        resp = core.list_namespaced_pod(
            namespace, label_selector=f"{kb.RUN_LABEL}={run_id}" if run_id else None,
            _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    try:
        return list(json.loads(resp.data)["items"])
    finally:
        resp.release_conn()


def get_json(core: Any, method: str, *args: Any) -> dict[str, Any]:
    resp = getattr(core, method)(*args, _preload_content=False)
    try:
        return dict(json.loads(resp.data))
    finally:
        resp.release_conn()


def namespace_phase(core: Any, name: str) -> str | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return str(get_json(core, "read_namespace", name)["status"]["phase"])
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


# -- the API server for the session ---------------------------------------------------------


@dataclass
class Api:
    dir: Path
    kubeconfig: str
    unreachable: str
    api: Any
    core: Any
    server: str
    kubelet_port: int = 0  # the fake kubelet's, 0 without one

    def need_fake_kubelet(self) -> None:
        if not self.kubelet_port:
            pytest.skip(f"no {BIN / 'fake-kubelet'}: run `WITH_FAKE_KUBELET=1 "
                        "tools/kube-apiserver.sh build`")

    def kubeconfig_for(self, path: Path, token: str, server: str | None = None) -> str:
        ca = base64.b64encode((self.dir / "ca.crt").read_bytes()).decode()
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "c", "cluster": {"server": server or self.server,
                                                   "certificate-authority-data": ca}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}]}))
        return str(path)

    def token_for(self, namespace: str, name: str) -> str:
        from kubernetes.client.exceptions import ApiException

        for kind, fn, body in (
                ("namespace", self.core.create_namespace, {"metadata": {"name": namespace}}),
                ("sa", lambda b: self.core.create_namespaced_service_account(namespace, b),
                 {"metadata": {"name": name}})):
            try:
                fn(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
        tr = self.core.create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": 3600}})
        return str(tr.status.token)


NODES = {
    # name: (InternalIP, Ready, pod CIDRs, labels, kubelet port, extra conditions)
    "kt-ready-1": ("192.0.2.21", "True", ["10.244.1.0/24", "fd00:10:244:1::/64"],
                   {SUITE_LABEL: "yes"}, 10250, []),
    "kt-ready-2": ("192.0.2.22", "True", ["10.244.2.0/24"], {}, 10250, []),
    "kt-notready": ("192.0.2.23", "False", ["10.244.3.0/24"], {SUITE_LABEL: "yes"}, 10250,
                    [{"type": "NetworkUnavailable", "status": "True", "reason": "NoRouteCreated",
                      "message": "Node created without a route",
                      "lastHeartbeatTime": "2024-05-01T10:00:00Z",
                      "lastTransitionTime": "2024-05-01T10:00:00Z"}]),
    # its kubelet "listens" on 127.0.0.1:1, which refuses: exec fails fast
    "kt-refused": ("127.0.0.1", "True", ["10.244.4.0/24"], {}, 1, []),
    # no Ready condition at all: a node whose kubelet never reported
    "kt-silent": ("192.0.2.25", None, [], {}, 10250, []),
}


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """kube-apiserver + etcd + kube-controller-manager for the session, stopped at the end."""
    why = _why_no_apiserver()
    if why:
        pytest.skip(why)
    client, config = kb.kube().client, kb.kube().config

    d = tmp_path_factory.mktemp("apiserver")
    fake_kubelet = os.access(BIN / "fake-kubelet", os.X_OK)
    env = {**os.environ, "WITH_KCM": "1", "WITH_FAKE_KUBELET": "1" if fake_kubelet else "0"}
    # The servers run in sessions of their own, so a SIGKILLed pytest (a CI timeout) would
    # orphan them: a watcher outside pytest stops them once this process is gone, and once
    # more a little later for what a start still under way when pytest died went on to add.
    watcher = subprocess.Popen(
        ["sh", "-c", 'while kill -0 "$2" 2>/dev/null; do sleep 1; done; "$0" stop "$1"; '
         'sleep 15; exec "$0" stop "$1"',
         str(SCRIPT), str(d), str(os.getpid())], start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc = subprocess.run([str(SCRIPT), "start", str(d)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        api = config.new_client_from_config(config_file=str(d / "kubeconfig"))
        core = client.CoreV1Api(api)
        server = str(api.configuration.host)
        envfile = dict(line.split("=", 1) for line in (d / "env").read_text().splitlines())
        a = Api(d, str(d / "kubeconfig"), str(d / "kubeconfig-unreachable"), api, core, server,
                int(envfile.get("K8SNET_FAKE_KUBELET_PORT") or 0))
        for name, (ip, ready, cidrs, labels, port, conds) in NODES.items():
            core.create_node(node_manifest(name, ip, ready, cidrs=cidrs, labels=labels,
                                           port=port, conditions=conds))
        if a.kubelet_port:  # a node whose kubelet is the fake one
            core.create_node(node_manifest("kt-exec", "127.0.0.1", "True", port=a.kubelet_port,
                                           cidrs=["10.244.7.0/24"]))
            set_taints(core, "kt-exec", [])
        set_taints(core, "kt-ready-1", [{"key": "dedicated", "value": "net",
                                         "effect": "NoSchedule"}])
        set_taints(core, "kt-ready-2", [])
        set_taints(core, "kt-refused", [])
        try:
            yield a
        finally:
            api.close()
    finally:
        watcher.kill()
        watcher.wait()
        subprocess.run([str(SCRIPT), "stop", str(d)], capture_output=True, timeout=60)


class HookRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def pytest_k8snet_probe_pod_manifest(self, config: pytest.Config, node: Node,
                                         manifest: dict[str, Any]) -> None:
        self.calls.append((node.name, manifest["metadata"]["name"]))
        manifest["metadata"].setdefault("annotations", {})["example.com/from-hook"] = "yes"
        manifest["metadata"]["labels"].pop(kb.RUN_LABEL)  # the backend must put it back


@pytest.fixture
def hook(pytestconfig: pytest.Config) -> Iterator[HookRecorder]:
    rec = HookRecorder()
    name = f"k8snet-test-hook-{id(rec)}"
    pytestconfig.pluginmanager.register(rec, name)
    yield rec
    pytestconfig.pluginmanager.unregister(name=name)


# -- pure: manifests, parsing, exec status --------------------------------------------------


def test_probe_pod_manifest_pins_tolerates_and_labels() -> None:
    pod = kb.probe_pod_manifest("k8snet-probe-n1", "n1", "abc", "img:1")
    spec, c = pod["spec"], pod["spec"]["containers"][0]
    assert spec["nodeName"] == "n1" and spec["tolerations"] == [{"operator": "Exists"}]
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "pytest-k8snet",
                                         "k8snet.io/run": "abc", "k8snet.io/probe": "pod"}
    least = {"allowPrivilegeEscalation": False, "seccompProfile": {"type": "RuntimeDefault"},
             "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}
    assert c["image"] == "img:1" and c["securityContext"] == least
    assert spec["activeDeadlineSeconds"] == kb.ACTIVE_DEADLINE_SECONDS
    assert c["ports"][0]["containerPort"] == 8080 and not spec.get("hostNetwork")
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    host = kb.host_probe_manifest("k8snet-host-n1", "n1", "abc", "img:1")
    hc = host["spec"]["containers"][0]
    # hostNetwork and NET_RAW, never privileged (issue 8, least privilege)
    assert host["spec"]["hostNetwork"] is True and hc["securityContext"] == least
    assert host["spec"]["activeDeadlineSeconds"] == kb.ACTIVE_DEADLINE_SECONDS
    assert host["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert host["metadata"]["labels"]["k8snet.io/probe"] == "host" and "ports" not in hc
    svc = kb.service_manifest("k8snet-probe", "abc")
    assert svc["spec"]["selector"] == {"k8snet.io/run": "abc", "k8snet.io/probe": "pod"}
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080
    # a NodePort to each node's own probe pod (test_nodeport), allocated by the apiserver
    assert svc["spec"]["type"] == "NodePort" and "nodePort" not in svc["spec"]["ports"][0]
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    plain = kb.service_manifest("k8snet-cidr-probe", "abc", node_port=False)["spec"]
    assert plain["type"] == "ClusterIP" and "externalTrafficPolicy" not in plain
    ns = kb.namespace_manifest("k8snet-abc", "abc")["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "privileged" and ns["k8snet.io/run"] == "abc"


def test_long_node_names_give_valid_distinct_pod_names() -> None:
    a = kb.probe_pod_name("probe", "ip-10-0-1-2." + "x" * 60 + ".compute.internal")
    b = kb.probe_pod_name("probe", "ip-10-0-1-3." + "x" * 60 + ".compute.internal")
    assert len(a) <= 63 and a != b and a[-1].isalnum()
    assert kb.probe_pod_name("host", "node-1") == "k8snet-host-node-1"


def test_node_from_api_on_captured_nodes() -> None:
    """Node objects as stored by kube-apiserver v1.33 (created through the API)."""
    nodes = {n.name: n for n in map(kb.node_from_api, read("kube_nodes.json")["items"])}
    r1 = nodes["kt-ready-1"]
    assert r1.ready and r1.ip == "192.0.2.21" and r1.problems == ()
    assert r1.pod_cidrs == ("10.244.1.0/24", "fd00:10:244:1::/64")
    assert r1.labels[SUITE_LABEL] == "yes"
    # NotReady, conditions and taints are notes, worded as the suite's NotReady exception:
    # probes pinned by nodeName may still run there, so they never make a node unusable.
    bad = nodes["kt-notready"]
    assert not bad.ready and bad.problems == () and bad.notes[0].startswith(
        "node is NotReady: Ready=False: KubeletNotReady: container runtime network not ready")
    assert "cni plugin not initialized" in bad.notes[0]
    assert "NetworkUnavailable: NoRouteCreated: Node created without a route" in bad.notes
    # the not-ready taint the API server added is not repeated for a NotReady node
    assert not any("taint" in p for p in bad.notes)
    silent = nodes["kt-silent"]
    assert not silent.ready and silent.pod_cidrs == () and silent.problems == ()
    assert silent.notes == ("node is NotReady: no Ready condition (the kubelet never reported)",)
    fresh = nodes["kt-fresh"]  # Ready, still carrying the admission-added not-ready taint
    assert fresh.ready and fresh.notes == ("taint node.kubernetes.io/not-ready:NoSchedule",)


def test_pod_problems_on_captured_pods_and_events() -> None:
    """Pods created from our manifests and Events, stored by kube-apiserver v1.33; statuses
    patched and Events posted through the API the way a kubelet would (see Kubelet)."""
    pods = {p["metadata"]["name"]: p for p in read("kube_pods.json")["items"]}
    events = read("kube_events.json")["items"]
    sandbox = kb.pod_problems(pods["k8snet-probe-kt-ready-1"], events)
    assert sandbox == ["pod-network probe k8snet-probe-kt-ready-1 on kt-ready-1: "
                       "FailedCreatePodSandBox: " + kb.one_line(SANDBOX_MESSAGE) + " (x3)"]
    pull = kb.pod_problems(pods["k8snet-probe-kt-ready-2"], events)
    assert len(pull) == 1 and pull[0].startswith(
        f"pod-network probe k8snet-probe-kt-ready-2 on kt-ready-2: ImagePullBackOff: image {IMAGE}")
    assert kb.pod_gave_up(pods["k8snet-probe-kt-ready-2"])
    crash = kb.pod_problems(pods["k8snet-probe-kt-silent"], events)
    assert crash[0].startswith("pod-network probe k8snet-probe-kt-silent on kt-silent: "
                               "CrashLoopBackOff: last exit code 1 (Error): k8snet: no HTTP server")
    failed = kb.pod_problems(pods["k8snet-host-kt-ready-2"], events)
    assert failed == ["host-network probe k8snet-host-kt-ready-2 on kt-ready-2: pod Failed: "
                      "OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu, "
                      "requested: 10, used: 3995, capacity: 4000"]
    assert kb.pod_gave_up(pods["k8snet-host-kt-ready-2"])
    unhealthy = kb.pod_problems(pods["k8snet-probe-kt-notready"], events)
    assert unhealthy == ["pod-network probe k8snet-probe-kt-notready on kt-notready: Unhealthy: "
                         "Readiness probe failed: Get \"http://10.244.3.7:8080/healthz\": dial "
                         "tcp 10.244.3.7:8080: connect: connection refused"]
    running = pods["k8snet-host-kt-ready-1"]
    assert kb.pod_is_ready(running) and kb.pod_problems(running, events) == []
    pending = pods["k8snet-host-kt-notready"]
    assert not kb.pod_is_ready(pending) and not kb.pod_gave_up(pending)
    assert kb.pod_problems(pending, events) == []  # only the Normal event: nothing to say
    assert kb.pod_summary(pending) == "Pending, no container status yet"


@pytest.mark.parametrize("text, code", [
    ('{"metadata":{},"status":"Success"}', 0),
    ('{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: '
     'error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode",'
     '"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}', 3),
    ('{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing '
     'command in container: failed to exec in container: failed to start exec \\"x\\": OCI '
     'runtime exec failed: exec failed: unable to start container process: exec: \\"nope\\": '
     'executable file not found in $PATH: unknown","reason":"InternalError","details":{"causes":'
     '[{"message":"error executing command in container"}]},"code":500}', 127),
    ('{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing '
     'command in container: OCI runtime exec failed: exec failed: permission denied",'
     '"reason":"InternalError","code":500}', 126),
    ("", 125),
    ("not json", 125),
    ('{"status":"Failure","details":{"causes":[{"reason":"ExitCode","message":"x"}]}}', 125),
])
def test_exit_code_from_status(text: str, code: int) -> None:
    """Status channel texts in the shapes the kubelet sends (client-go remotecommand)."""
    assert kb.exit_code_from_status(text) == code


def test_exit_code_from_captured_kubelet_unreachable_status() -> None:
    """Channel 3 as kube-apiserver v1.33 sent it when it could not reach the kubelet."""
    text = (DATA / "kube_exec_status_kubelet_refused.json").read_text()
    assert kb.exit_code_from_status(text) == 125
    assert "connect: connection refused" in kb.status_message(text)
    assert kb.status_message('{"status":"Success"}') == ""


def test_service_cidr_from_captured_message() -> None:
    """The 422 kube-apiserver v1.33 answers to a dry-run Service outside the Service CIDR."""
    body = read("kube_service_cidr_error.json")
    assert kb.service_cidr_from_message(body["message"]) == "10.96.0.0/16"
    assert kb.service_cidr_from_message("The range of valid IPs is 10.96.0.0/12, "
                                        "fd00:10:96::/112") == "10.96.0.0/12,fd00:10:96::/112"
    assert kb.service_cidr_from_message("something else") is None


def _server_tools(kind: str, bindir: Path) -> None:
    """A PATH holding the shell tools the script needs plus only the ``kind`` server."""
    tools = ["mkdir", "head", "dd", "cat", "wc", "tr", "grep", "hostname", "sh"]
    tools += {"python3": ["python3"], "busybox": ["busybox"], "socat": ["socat"], "none": []}[kind]
    for tool in tools:
        # A real interpreter, not a version manager's shim (which needs bash on PATH).
        found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} not installed")
        (bindir / tool).symlink_to(found)


def _free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _udp_echo(port: int, data: bytes) -> bytes:
    """What comes back for one datagram, asked again until the responder has started."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        for _ in range(50):
            s.sendto(data, ("127.0.0.1", port))
            try:
                return s.recv(65535)
            except OSError:
                continue  # not listening yet (refused), or no answer in time
    return b""


@pytest.mark.parametrize("kind", ["python3", "busybox", "socat"])
def test_http_server_script_serves_the_probe_routes(tmp_path: Path, kind: str) -> None:
    """The probe container's command, run here with only one HTTP server on PATH (the
    probe image itself cannot be pulled in this environment)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _server_tools(kind, bindir)
    port, udp_port = _free_port(), _free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(["/bin/sh", "-c", kb.http_server_script(port, str(tmp_path / "www"),
                                                                     udp_port)],
                            env={"PATH": str(bindir), "K8SNET_POD": "k8snet-probe-n1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        def get(path: str) -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return bytes(r.read())

        deadline = time.monotonic() + 30  # generous: CI machines are busy
        while time.monotonic() < deadline:
            try:
                assert get("/healthz") == b"ok\n"
                break
            except OSError:
                time.sleep(0.05)
        assert get("/healthz") == b"ok\n"
        assert get("/") == b"k8snet-probe-n1\n"
        assert get("/?k8snet=3") == b"k8snet-probe-n1\n"
        assert len(get("/1mib")) == 1024 * 1024
        assert len(get("/1mib?k8snet=2")) == 1024 * 1024
        if kind != "busybox":  # python3 or socat echo UDP too (the path-MTU fallback)
            assert _udp_echo(udp_port, b"k8snet" * 200) == b"k8snet" * 200
        if kind == "socat":  # its responder beside the files it serves, not in /tmp
            assert (tmp_path / "www" / ".respond.sh").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_http_server_script_says_when_the_image_has_no_server(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _server_tools("none", bindir)
    proc = subprocess.run(["/bin/sh", "-c", kb.http_server_script(_free_port(),
                                                                   str(tmp_path / "www"))],
                          env={"PATH": str(bindir)}, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1 and "no HTTP server in the probe image" in proc.stderr


# -- against the API server: errors ---------------------------------------------------------


def test_unreachable_api_is_one_fast_error(apiserver: Api) -> None:
    s = settings(timeout=1.0)
    start = time.monotonic()
    with pytest.raises(BackendError) as exc:
        kb.KubeBackend.from_settings(s, apiserver.unreachable, None).nodes()
    assert time.monotonic() - start < s.timeout + 1
    assert str(exc.value).startswith("cannot reach the Kubernetes API at https://127.0.0.1:")
    assert str(exc.value).endswith(": connection refused") and "\n" not in str(exc.value)


def test_silent_api_times_out_fast(apiserver: Api, tmp_path: Path) -> None:
    """A server that accepts the connection and never answers: bounded by --k8s-timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        server = f"https://127.0.0.1:{silent.getsockname()[1]}"
        kc = apiserver.kubeconfig_for(tmp_path / "kc", "x", server=server)
        s = settings(timeout=1.0)
        backend = kb.KubeBackend.from_settings(s, kc, None)
        start = time.monotonic()
        with pytest.raises(BackendError) as exc:
            backend.nodes()
        assert time.monotonic() - start < s.timeout + 1
    assert str(exc.value) == f"cannot reach the Kubernetes API at {server}: no answer within 1s"


def test_missing_kubeconfig_or_context(apiserver: Api, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"^kubeconfig /nonexistent/kc not found"):
        kb.KubeBackend.from_settings(settings(), "/nonexistent/kc", None)
    with pytest.raises(BackendError, match=r"^context 'nope' not found in kubeconfig .* "
                                           r"\(it has: k8snet\)$"):
        kb.KubeBackend.from_settings(settings(context="nope"), apiserver.kubeconfig, None)
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: 3\n")
    with pytest.raises(BackendError) as exc:
        kb.KubeBackend.from_settings(settings(), str(broken), None)
    assert str(exc.value).startswith(f"kubeconfig {broken}") and "\n" not in str(exc.value)


def test_wrong_token_is_unauthorized(apiserver: Api, tmp_path: Path) -> None:
    kc = apiserver.kubeconfig_for(tmp_path / "kc", "not-a-token")
    with pytest.raises(BackendError, match=r"rejected the credentials \(401 Unauthorized\) "
                                           r"while trying to list nodes"):
        kb.KubeBackend.from_settings(settings(), kc, None).nodes()


def test_forbidden_names_the_missing_permission(apiserver: Api, tmp_path: Path) -> None:
    """A ServiceAccount without RBAC rights, with a real token (TokenRequest)."""
    client = kb.kube().client

    kc = apiserver.kubeconfig_for(tmp_path / "kc", apiserver.token_for("kt-rbac", "nobody"))
    with pytest.raises(BackendError) as exc:
        kb.KubeBackend.from_settings(settings(), kc, None).nodes()
    assert str(exc.value) == (
        'forbidden to list nodes: nodes is forbidden: User "system:serviceaccount:kt-rbac:nobody" '
        'cannot list resource "nodes" in API group "" at the cluster scope (the RBAC rules '
        "pytest-k8snet needs are in examples/rbac.yaml)")
    # allowed to read nodes, not to create namespaces: start() says which
    rbac = client.RbacAuthorizationV1Api(apiserver.api)
    rbac.create_cluster_role({"metadata": {"name": "kt-nodes-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]})
    rbac.create_cluster_role_binding({
        "metadata": {"name": "kt-nodes-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "kt-nodes-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": "kt-rbac"}]})
    backend = kb.KubeBackend.from_settings(settings(), kc, None)
    deadline = time.monotonic() + 10
    while True:  # RBAC caches take a moment
        try:
            nodes = backend.nodes()
            break
        except BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with pytest.raises(BackendError, match=r'^forbidden to create namespace k8snet-\w+: .*cannot '
                                           r'create resource "namespaces"'):
        backend.start(nodes[:1])
    backend.cleanup()


# -- against the API server: discovery, start, cleanup --------------------------------------


def test_nodes_parses_live_nodes(apiserver: Api) -> None:
    backend = kb.KubeBackend.from_settings(settings(), apiserver.kubeconfig, None)
    nodes = {n.name: n for n in backend.nodes()}
    assert set(NODES) <= set(nodes)
    assert nodes["kt-ready-1"].ready and nodes["kt-ready-1"].ip == "192.0.2.21"
    assert nodes["kt-ready-1"].pod_cidrs == ("10.244.1.0/24", "fd00:10:244:1::/64")
    assert nodes["kt-ready-2"].problems == ()
    assert nodes["kt-ready-2"].pod_cidrs == ("10.244.2.0/24",)
    assert not nodes["kt-notready"].ready and "cni plugin not initialized" in \
        nodes["kt-notready"].notes[0]
    assert not nodes["kt-silent"].ready
    identity = backend.identity()
    assert identity == {"kind": "kube", "server": apiserver.server, "context": "k8snet",
                        "version": "v1.33.13", "nodes": len(nodes),
                        "namespace": f"k8snet-{backend.run_id}", "cluster_domain": "cluster.local"}
    backend.cleanup()  # never started: nothing to delete, nothing to fail


def test_start_with_the_kubelet_played_by_the_test(apiserver: Api, pytestconfig: pytest.Config,
                                                   hook: HookRecorder) -> None:
    """Probe pods on a Ready node are marked Running/Ready by the test (as a kubelet would);
    those on a NotReady node stay Pending and must not hold up the start."""
    core = apiserver.core
    s = settings(timeout=1.0)
    backend = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, pytestconfig)
    nodes = [n for n in backend.nodes() if n.name in ("kt-ready-1", "kt-notready")]
    ns = f"k8snet-{s.run_id}"

    def kubelet(core: Any, pod: dict[str, Any]) -> None:
        if pod["spec"]["nodeName"] == "kt-ready-1":
            host = pod["spec"].get("hostNetwork")
            mark_running(core, pod, "192.0.2.21" if host else "10.244.1.17")

    start = time.monotonic()
    with Kubelet(core, ns, s.run_id, kubelet):
        backend.start(nodes)
    took = time.monotonic() - start
    assert took < 5, took  # not 10 x timeout: the NotReady node is not waited for

    # the manifest hook saw every probe pod; its change is kept, the run label restored
    assert sorted(hook.calls) == [("kt-notready", "k8snet-host-kt-notready"),
                                  ("kt-notready", "k8snet-probe-kt-notready"),
                                  ("kt-ready-1", "k8snet-host-kt-ready-1"),
                                  ("kt-ready-1", "k8snet-probe-kt-ready-1")]
    nsobj = get_json(core, "read_namespace", ns)
    assert nsobj["metadata"]["labels"]["k8snet.io/run"] == s.run_id
    assert nsobj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pytest-k8snet"
    assert nsobj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    pods = {p["metadata"]["name"]: p for p in list_pods(core, ns, s.run_id)}
    assert set(pods) == {name for _, name in hook.calls}
    for pod in pods.values():
        assert pod["spec"]["nodeName"] == pod["metadata"]["annotations"]["k8snet.io/node"]
        assert {"operator": "Exists"} in pod["spec"]["tolerations"]
        assert pod["metadata"]["annotations"]["example.com/from-hook"] == "yes"
        assert pod["spec"]["containers"][0]["image"] == IMAGE
    assert pods["k8snet-host-kt-ready-1"]["spec"]["hostNetwork"] is True
    svc = get_json(core, "read_namespaced_service", "k8snet-probe", ns)
    assert svc["spec"]["selector"] == {"k8snet.io/run": s.run_id, "k8snet.io/probe": "pod"}
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080

    ep = backend.endpoint("kt-ready-1", "pod")
    assert (ep.ip, ep.name) == ("10.244.1.17", "k8snet-probe-kt-ready-1")
    assert backend.endpoint("kt-ready-1", "host").ip == "192.0.2.21"
    assert backend.service_backends() == ["k8snet-probe-kt-ready-1"]
    assert backend.backend_node("k8snet-probe-kt-ready-1") == "kt-ready-1"
    t = backend.targets()
    assert t.service_ip == svc["spec"]["clusterIP"] and t.service_ip.startswith("10.96.")
    assert t.service_port == 80 and t.service_cidr == "10.96.0.0/16"
    assert t.service_name == f"k8snet-probe.{ns}.svc.cluster.local"
    assert t.dns_names == ("kubernetes.default.svc.cluster.local", t.service_name)
    assert t.external_name == "example.com" and t.egress_url == "http://example.com/"
    assert "10.244.1.0/24" in t.pod_cidrs and "10.244.3.0/24" in t.pod_cidrs

    # the NotReady node: its problems now include the probes that did not start
    notready = next(n for n in nodes if n.name == "kt-notready")
    assert not notready.ready and notready.notes[0].startswith(
        "node is NotReady: Ready=False: KubeletNotReady")
    assert any("probe k8snet-probe-kt-notready on kt-notready: not ready" in p
               for p in notready.problems)
    # the readiness exec (tools, DNS search list) reaches no real kubelet here: said per probe
    assert all("probe does not run commands" in p
               for p in next(n for n in nodes if n.name == "kt-ready-1").problems)
    res = backend.endpoint("kt-notready", "pod").run(["true"])
    assert res.exit_code == 125 and "k8snet-probe-kt-notready is not ready (Pending" in res.stderr

    backend.cleanup()
    backend.cleanup()  # idempotent
    assert list_pods(core, ns) == []
    assert namespace_phase(core, ns) in (None, "Terminating")
    assert "delete namespace -l k8snet.io/run=" + s.run_id in backend.keep_hint()


def test_start_without_a_kubelet_reports_each_node_problem(apiserver: Api) -> None:
    """No kubelet: the wait ends after 10 x timeout with a problem per probe. The test posts
    a FailedCreatePodSandBox Event for one pod and sets another's status to
    ImagePullBackOff (which ends the wait for it at once), as a kubelet would."""
    core = apiserver.core
    s = settings(timeout=0.3)
    backend = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, None)
    all_nodes = backend.nodes()
    chosen = [n for n in all_nodes if n.name in ("kt-ready-1", "kt-ready-2")]

    def kubelet(core: Any, pod: dict[str, Any]) -> None:
        if pod["metadata"]["name"] == "k8snet-probe-kt-ready-1":
            warning_event(core, pod, "FailedCreatePodSandBox", SANDBOX_MESSAGE, count=2)
        elif pod["metadata"]["name"] == "k8snet-probe-kt-ready-2":
            image_pull_backoff(core, pod)

    start = time.monotonic()
    with Kubelet(core, f"k8snet-{s.run_id}", s.run_id, kubelet):
        backend.start(chosen)
    took = time.monotonic() - start
    assert 10 * s.timeout <= took < 10 * s.timeout + 3, took

    problems = {n.name: n.problems for n in chosen}
    assert problems["kt-ready-1"][0] == (
        "pod-network probe k8snet-probe-kt-ready-1 on kt-ready-1: FailedCreatePodSandBox: "
        + kb.one_line(SANDBOX_MESSAGE) + " (x2)")
    assert problems["kt-ready-1"][1].startswith(
        "host-network probe k8snet-host-kt-ready-1 on kt-ready-1: not ready after 3s (Pending, "
        "no container status yet; no Warning events: is the kubelet on kt-ready-1 running?)")
    assert problems["kt-ready-2"][0].startswith(
        f"pod-network probe k8snet-probe-kt-ready-2 on kt-ready-2: ImagePullBackOff: image {IMAGE}"
        f': Back-off pulling image "{IMAGE}"')
    # the same nodes in the list nodes() returned (what the run's node list holds)
    assert {n.name: n.problems for n in all_nodes if n.name in problems} == problems
    assert backend.node_problems() == {k: list(v) for k, v in problems.items()}
    # commands in probes that never came up fail at once, without raising
    for node in ("kt-ready-1", "kt-ready-2"):
        for net in ("pod", "host"):
            r = backend.endpoint(node, "pod" if net == "pod" else "host").run(
                ["ping", "-c1", "10.0.0.1"], 5)
            assert r.exit_code == 125 and r.seconds < 0.1 and "is not ready" in r.stderr
    assert backend.service_backends() == []
    backend.cleanup()
    assert list_pods(core, f"k8snet-{s.run_id}") == []


def test_exec_failures_are_results_not_exceptions(apiserver: Api) -> None:
    """Exec through the real API server to pods whose kubelet cannot be reached: one node's
    kubelet port refuses (fast exit 125 with the API server's message), the other's address
    does not answer (bounded by the timeout). A running container is out of reach here."""
    core = apiserver.core
    s = settings(timeout=0.3)
    backend = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, None)
    nodes = [n for n in backend.nodes() if n.name in ("kt-refused", "kt-ready-2")]

    def kubelet(core: Any, pod: dict[str, Any]) -> None:
        ip = "127.0.0.1" if pod["spec"]["nodeName"] == "kt-refused" else "10.244.2.5"
        mark_running(core, pod, ip)

    with Kubelet(core, f"k8snet-{s.run_id}", s.run_id, kubelet):
        backend.start(nodes)
    refused = backend.endpoint("kt-refused", "pod").run(["true"], 5)
    assert refused.exit_code == 125 and not refused.timed_out and refused.seconds < 2
    assert "dial tcp 127.0.0.1:1: connect: connection refused" in refused.stderr
    start = time.monotonic()
    silent = backend.endpoint("kt-ready-2", "pod").run(["true"], 1.0)
    assert time.monotonic() - start < 2.5 and not silent.ok
    assert (silent.timed_out and silent.exit_code == 124) or silent.exit_code == 125
    backend.cleanup()


def test_exec_through_the_api_server_to_the_fake_kubelet(apiserver: Api) -> None:
    """run() for real: websocket exec through kube-apiserver v1.33 (translated to SPDY) to the
    fake kubelet, which runs the command on this machine. Exit codes, stdout and stderr
    apart, 1 MiB of output, a missing executable, a timeout, concurrency; and the suite's
    readiness check passes. The pods' Running status is set by the test."""
    from pytest_k8snet.measure.cluster import Cluster

    apiserver.need_fake_kubelet()
    s = settings(timeout=2.0)
    backend = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, None)
    nodes = [n for n in backend.nodes() if n.name == "kt-exec"]
    with Kubelet(apiserver.core, f"k8snet-{s.run_id}", s.run_id,
                 lambda core, pod: mark_running(core, pod, "127.0.0.1")):
        backend.start(nodes)
    assert nodes[0].problems == ()
    pod, host = backend.endpoint("kt-exec", "pod"), backend.endpoint("kt-exec", "host")
    r = pod.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.exit_code, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)
    assert pod.run(["true"]).ok and host.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).ok
    big = pod.run(["sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' k"])
    assert big.ok and big.stdout == "k" * 1024 * 1024
    missing = pod.run(["k8snet-no-such-command"])
    assert missing.exit_code == 127 and "executable file not found" in missing.stderr
    start = time.monotonic()
    slow = pod.run(["sleep", "5"], 0.5)
    assert slow.timed_out and slow.exit_code == 124 and time.monotonic() - start < 1.5
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        outs = list(pool.map(lambda i: pod.run(["sh", "-c", f"sleep 0.2; echo {i}"]), range(16)))
    assert [o.stdout for o in outs] == [f"{i}\n" for i in range(16)]
    cluster = Cluster(backend, s, nodes, nodes)
    try:
        assert cluster.readiness() == {"kt-exec": []}
    finally:
        cluster.close()
    backend.cleanup()


def test_user_namespace_loses_only_the_runs_objects(apiserver: Api) -> None:
    core = apiserver.core
    ns = "kt-user-ns"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_pod(ns, {"metadata": {"name": "someone-elses"},
                                    "spec": {"containers": [{"name": "c", "image": "x"}]}})
    s = settings(namespace=ns, timeout=0.2)
    backend = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, None)
    backend.start([n for n in backend.nodes() if n.name == "kt-ready-2"])
    names = {p["metadata"]["name"] for p in list_pods(core, ns)}
    assert names == {"someone-elses", f"k8snet-{s.run_id}-probe-kt-ready-2",
                     f"k8snet-{s.run_id}-host-kt-ready-2"}
    assert backend.targets().service_name == f"k8snet-{s.run_id}-probe.{ns}.svc.cluster.local"
    assert f"-n {ns} delete pods,services -l k8snet.io/run={s.run_id}" in backend.keep_hint()
    backend.cleanup()
    assert {p["metadata"]["name"] for p in list_pods(core, ns)} == {"someone-elses"}
    assert namespace_phase(core, ns) == "Active"
    missing = kb.KubeBackend.from_settings(settings(namespace="kt-nope"), apiserver.kubeconfig,
                                           None)
    with pytest.raises(BackendError, match="namespace kt-nope .* does not exist"):
        missing.start(missing.nodes()[:1])


def test_xdist_workers_share_one_probe_set(apiserver: Api, tmp_path: Path,
                                           pytestconfig: pytest.Config,
                                           hook: HookRecorder) -> None:
    """Two workers, one shared dir: the first creates, the second finds them by label;
    neither deletes; the controller's cleanup_run does, from a fresh client."""
    core = apiserver.core
    s = settings(timeout=0.2)
    first = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, pytestconfig, shared_dir=tmp_path)
    nodes = [n for n in first.nodes() if n.name == "kt-ready-2"]
    first.start(nodes)
    created = {p["metadata"]["uid"] for p in list_pods(core, f"k8snet-{s.run_id}", s.run_id)}
    assert len(created) == 2 and len(hook.calls) == 2
    second = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, pytestconfig,
                                          shared_dir=tmp_path)
    nodes2 = [n for n in second.nodes() if n.name == "kt-ready-2"]
    start = time.monotonic()
    second.start(nodes2)
    assert time.monotonic() - start < 1.5  # no second wait
    assert len(hook.calls) == 2  # nothing new was built
    assert {p["metadata"]["uid"] for p in list_pods(core, f"k8snet-{s.run_id}")} == created
    assert nodes2[0].problems == nodes[0].problems and len(nodes2[0].problems) == 2
    assert second.targets().service_ip == first.targets().service_ip
    first.cleanup()
    second.cleanup()
    assert len(list_pods(core, f"k8snet-{s.run_id}")) == 2
    kb.cleanup_run(s, apiserver.kubeconfig)
    assert list_pods(core, f"k8snet-{s.run_id}") == []
    assert namespace_phase(core, f"k8snet-{s.run_id}") in (None, "Terminating")
    kb.cleanup_run(s, apiserver.kubeconfig)  # again: nothing left, no error
    kb.cleanup_run(s, "/nonexistent/kubeconfig")  # quiet without a kubeconfig


def test_namespace_finalizes_after_cleanup(apiserver: Api) -> None:
    """With the namespace controller running, the run's namespace is gone soon after."""
    s = settings(timeout=0.1)
    backend = kb.KubeBackend.from_settings(s, apiserver.kubeconfig, None)
    backend.start([n for n in backend.nodes() if n.name == "kt-ready-2"])
    backend.cleanup()
    deadline = time.monotonic() + 20
    while namespace_phase(apiserver.core, f"k8snet-{s.run_id}") is not None:
        assert time.monotonic() < deadline, "namespace still there after 20 s"
        time.sleep(0.2)


# -- examples/rbac.yaml ---------------------------------------------------------------------

NEEDED = [  # (verb, resource, subresource, namespaced)
    ("list", "nodes", "", False), ("get", "nodes", "", False),
    ("create", "namespaces", "", False), ("get", "namespaces", "", False),
    ("delete", "namespaces", "", False),
    ("create", "pods", "", True), ("get", "pods", "", True), ("list", "pods", "", True),
    ("watch", "pods", "", True), ("delete", "pods", "", True),
    ("create", "pods", "exec", True), ("get", "pods", "exec", True),
    ("create", "services", "", True), ("get", "services", "", True),
    ("delete", "services", "", True),
    ("list", "events", "", True), ("watch", "events", "", True),
]


def test_rbac_example_grants_what_the_backend_uses(apiserver: Api, tmp_path: Path) -> None:
    """examples/rbac.yaml created as-is (strict field validation), checked verb by verb with
    SubjectAccessReview, then used for real: discovery, start, exec, cleanup as that
    ServiceAccount, with no forbidden error."""
    import yaml
    client = kb.kube().client

    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "rbac.yaml").read_text()) if d]
    rbac = client.RbacAuthorizationV1Api(apiserver.api)
    create = {"Namespace": lambda d: apiserver.core.create_namespace(
                  d, field_validation="Strict"),
              "ServiceAccount": lambda d: apiserver.core.create_namespaced_service_account(
                  d["metadata"]["namespace"], d, field_validation="Strict"),
              "ClusterRole": lambda d: rbac.create_cluster_role(d, field_validation="Strict"),
              "ClusterRoleBinding": lambda d: rbac.create_cluster_role_binding(
                  d, field_validation="Strict"),
              "Role": lambda d: rbac.create_namespaced_role(
                  d["metadata"]["namespace"], d, field_validation="Strict"),
              "RoleBinding": lambda d: rbac.create_namespaced_role_binding(
                  d["metadata"]["namespace"], d, field_validation="Strict"),
              # the admission policy is proven on the real cluster (tests/test_kube_real.py);
              # here it is only created, strictly validated
              "ValidatingAdmissionPolicy": lambda d: client.AdmissionregistrationV1Api(
                  apiserver.api).create_validating_admission_policy(
                  d, field_validation="Strict"),
              "ValidatingAdmissionPolicyBinding": lambda d: client.AdmissionregistrationV1Api(
                  apiserver.api).create_validating_admission_policy_binding(
                  d, field_validation="Strict")}
    for doc in docs:
        create[doc["kind"]](doc)
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]
    assert sa["name"] == "k8snet"
    user = f"system:serviceaccount:{sa['namespace']}:{sa['name']}"
    authz = client.AuthorizationV1Api(apiserver.api)
    denied = []
    for verb, resource, sub, namespaced in NEEDED:
        review = authz.create_subject_access_review({"spec": {
            "user": user, "groups": ["system:serviceaccounts", "system:authenticated",
                                     f"system:serviceaccounts:{sa['namespace']}"],
            "resourceAttributes": {"verb": verb, "resource": resource, "subresource": sub,
                                   **({"namespace": "k8snet-x"} if namespaced else {})}}})
        if not review.status.allowed:
            denied.append((verb, resource, sub))
    assert denied == []
    too_much = authz.create_subject_access_review({"spec": {
        "user": user, "resourceAttributes": {"verb": "get", "resource": "secrets",
                                             "namespace": "kube-system"}}})
    assert not too_much.status.allowed

    kc = apiserver.kubeconfig_for(tmp_path / "kc", apiserver.token_for(sa["namespace"], "k8snet"))
    s = settings(timeout=0.3)
    backend = kb.KubeBackend.from_settings(s, kc, None)
    exec_node = "kt-exec" if apiserver.kubelet_port else "kt-refused"
    nodes = [n for n in backend.nodes() if n.name in (exec_node, "kt-ready-2")]
    with Kubelet(apiserver.core, f"k8snet-{s.run_id}", s.run_id,
                 lambda core, pod: mark_running(core, pod, "127.0.0.1")
                 if pod["spec"]["nodeName"] == exec_node else None):
        backend.start(nodes)
    assert backend.targets().service_cidr == "10.96.0.0/16"
    # the allocated NodePort, read with the get the Service already needs: no new verb
    node_port = backend.targets().node_port
    assert node_port is not None and 30000 <= node_port <= 32767
    assert any("not ready after" in p for p in nodes[[n.name for n in nodes].index(
        "kt-ready-2")].problems)  # events were listed: no Warning events, said so
    r = backend.endpoint(exec_node, "pod").run(["echo", "ok"], 5)
    if apiserver.kubelet_port:
        assert r.ok and r.stdout == "ok\n"
    else:  # authorized: the error is the kubelet's, not RBAC's
        assert r.exit_code == 125 and "connection refused" in r.stderr
    assert "forbidden" not in r.stderr

    # why pods/exec needs get: the client execs over a websocket, a GET (up to 1.34)
    rbac.create_cluster_role({"metadata": {"name": "kt-exec-create-only"}, "rules": [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]})
    rbac.create_cluster_role_binding({
        "metadata": {"name": "kt-exec-create-only"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "kt-exec-create-only"},
        "subjects": [{"kind": "ServiceAccount", "name": "create-only", "namespace": "kt-rbac"}]})
    conf = kb.connect(apiserver.kubeconfig_for(tmp_path / "kc2", apiserver.token_for(
        "kt-rbac", "create-only")), None)[0]
    deadline = time.monotonic() + 10
    while True:
        denied_exec = kb.exec_in_pod(conf.configuration, f"k8snet-{s.run_id}",
                                     backend.endpoint(exec_node, "pod").name, ["true"], 5)
        if "forbidden" in denied_exec.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert denied_exec.exit_code == 125
    assert 'cannot get resource "pods/exec"' in denied_exec.stderr
    conf.close()
    backend.cleanup()
    assert list_pods(apiserver.core, f"k8snet-{s.run_id}") == []
    assert namespace_phase(apiserver.core, f"k8snet-{s.run_id}") in (None, "Terminating")


# -- the plugin, end to end (pytester) ------------------------------------------------------


def test_unreachable_cluster_is_one_clear_line(apiserver: Api, pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(pod_pair):\n    pass\n")
    start = time.monotonic()
    result = pytester.runpytest_subprocess("--k8s-kubeconfig", apiserver.unreachable,
                                           "--k8s-timeout", "2", "-p", "no:cacheprovider")
    assert time.monotonic() - start < 20
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in out.splitlines() if "cannot reach the Kubernetes API" in line]
    assert len(lines) == 1 and "k8snet: cannot reach the Kubernetes API at https://127.0.0.1:" \
        in lines[0] and ": connection refused" in lines[0], out
    assert "Traceback" not in out


def test_suite_without_kubelet_reports_node_problems(apiserver: Api,
                                                     pytester: pytest.Pytester) -> None:
    """The built-in suite on two nodes (one Ready, one NotReady), no kubelet anywhere:
    bounded by --k8s-timeout 2 (20 s of waiting), the node problems are the failures."""
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--pyargs", "pytest_k8snet.suite", "--k8s-kubeconfig", apiserver.kubeconfig,
        "--k8s-timeout", "2", "--k8s-setup-timeout", "20",
        "--k8s-node-selector", f"{SUITE_LABEL}=yes", "-p",
        "no:cacheprovider", "-q", "-rfE", "-k", "test_nodes_ready or test_pod_ping",
        timeout=120)
    took = time.monotonic() - start
    out = result.stdout.str() + result.stderr.str()
    assert took < 60, out
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "Traceback" not in out
    assert "test_nodes_ready[kt-notready]" in out and "test_nodes_ready[kt-ready-1]" in out
    assert "node is NotReady" in out
    assert ("pod-network probe k8snet-probe-kt-ready-1 on kt-ready-1: not ready after 20s "
            "(Pending, no container status yet") in out
    # and the run cleaned up after itself
    leftovers = get_json(apiserver.core, "list_namespace")["items"]
    assert not [n["metadata"]["name"] for n in leftovers
                if n["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by")
                == "pytest-k8snet" and n["status"]["phase"] == "Active"]


# -- capturing tests/data/kube_*.json -------------------------------------------------------


def capture(kubeconfig: str) -> None:
    """Recreate tests/data/kube_*.json from the API server behind ``kubeconfig`` (which must
    have the NODES above, e.g. a session of this module kept running)."""
    client, config = kb.kube().client, kb.kube().config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)

    def clean(obj: dict[str, Any]) -> dict[str, Any]:
        obj.get("metadata", {}).pop("managedFields", None)
        return obj

    def save(name: str, data: Any) -> None:
        (DATA / name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    for name, (ip, ready, cidrs, labels, port, conds) in NODES.items():
        try:
            core.create_node(node_manifest(name, ip, ready, cidrs=cidrs, labels=labels,
                                           port=port, conditions=conds))
        except ApiException as exc:
            if exc.status != 409:
                raise
    core.create_node(node_manifest("kt-fresh", "192.0.2.26", "True", cidrs=["10.244.6.0/24"]))
    set_taints(core, "kt-ready-1", [{"key": "dedicated", "value": "net", "effect": "NoSchedule"}])
    set_taints(core, "kt-ready-2", [])
    nodes = get_json(core, "list_node")
    nodes["items"] = [clean(n) for n in nodes["items"]
                      if n["metadata"]["name"] in (*NODES, "kt-fresh")]
    save("kube_nodes.json", nodes)

    ns, run = "k8snet-capture", "capture"
    core.create_namespace(kb.namespace_manifest(ns, run))
    for _ in range(100):
        try:
            core.read_namespaced_service_account("default", ns)
            break
        except ApiException:
            time.sleep(0.1)
    for node in ("kt-ready-1", "kt-ready-2", "kt-notready", "kt-silent"):
        for build, role in ((kb.probe_pod_manifest, "probe"), (kb.host_probe_manifest, "host")):
            core.create_namespaced_pod(ns, build(f"k8snet-{role}-{node}", node, run, IMAGE))
    pods = {p["metadata"]["name"]: p for p in list_pods(core, ns)}
    warning_event(core, pods["k8snet-probe-kt-ready-1"], "FailedCreatePodSandBox",
                  SANDBOX_MESSAGE, count=3)
    image_pull_backoff(core, pods["k8snet-probe-kt-ready-2"])
    warning_event(core, pods["k8snet-probe-kt-ready-2"], "Failed",
                  f'Failed to pull image "{IMAGE}": no such host')
    crash_loop(core, pods["k8snet-probe-kt-silent"])
    rejected(core, pods["k8snet-host-kt-ready-2"])
    mark_running(core, pods["k8snet-host-kt-ready-1"], "192.0.2.21")
    warning_event(core, pods["k8snet-probe-kt-notready"], "Unhealthy",
                  'Readiness probe failed: Get "http://10.244.3.7:8080/healthz": dial tcp '
                  "10.244.3.7:8080: connect: connection refused")
    normal = dict(pods["k8snet-host-kt-notready"])
    core.create_namespaced_event(ns, {
        "metadata": {"name": "k8snet-host-kt-notready.normal"}, "type": "Normal",
        "reason": "Scheduled", "message": "Successfully assigned pod to kt-notready",
        "involvedObject": {"kind": "Pod", "name": normal["metadata"]["name"], "namespace": ns},
        "source": {"component": "default-scheduler"}, "firstTimestamp": now(),
        "lastTimestamp": now(), "count": 1})
    save("kube_pods.json", {"items": [clean(p) for p in list_pods(core, ns)]})
    save("kube_events.json", {"items": [clean(e) for e in get_json(
        core, "list_namespaced_event", ns)["items"]]})

    svc = kb.service_manifest("x", run, node_port=False)
    svc["spec"]["clusterIP"] = "203.0.113.254"
    try:
        core.create_namespaced_service(ns, svc, dry_run="All")
    except ApiException as exc:
        save("kube_service_cidr_error.json", json.loads(exc.body or "{}"))

    mark = core.create_namespaced_pod(ns, kb.probe_pod_manifest(
        "k8snet-probe-kt-refused", "kt-refused", run, IMAGE))
    ws = kb.kube().stream.stream(core.connect_get_namespaced_pod_exec, mark.metadata.name, ns,
                                 command=["true"], container="probe", stderr=True, stdin=False,
                                 stdout=True, tty=False, _preload_content=False)
    ws.run_forever(timeout=5)
    (DATA / "kube_exec_status_kubelet_refused.json").write_text(
        ws.read_channel(kb.kube().stream.ws_client.ERROR_CHANNEL) + "\n")
    _close_ws(ws)
    kb.delete_run(KubeApi(api, "", 5), kb.RunNames.of(run, None))
    api.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "capture":
        capture(sys.argv[2])
    else:
        sys.exit("usage: python -m tests.test_kube_api capture KUBECONFIG")


# -- issue 8: pure readers and the retry policy -----------------------------------------------


def test_retry_policy_retries_only_what_can_change() -> None:
    """429/5xx and a reset connection are retried (Retry-After honoured, in seconds or as a
    date), every other 4xx is raised at once after one request."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    def api_exc(status: int, headers: dict[str, str] | None = None, body: str = "") -> Any:
        exc = ApiException(status=status, reason="x")
        exc.headers = headers or {}
        exc.body = body
        return exc

    assert kb.retry_delay(api_exc(403), 0) is None and kb.retry_delay(api_exc(404), 3) is None
    assert kb.retry_delay(api_exc(409), 0) is None and kb.retry_delay(api_exc(422), 0) is None
    assert kb.retry_delay(api_exc(429, {"Retry-After": "7"}), 0) == 7.0
    assert kb.retry_delay(api_exc(429, body='{"details": {"retryAfterSeconds": 3}}'), 0) == 3.0
    assert 0.25 <= (kb.retry_delay(api_exc(503), 0) or 0) <= 0.3
    assert 2.0 <= (kb.retry_delay(api_exc(500), 3) or 0) <= 2.4
    reset = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104))
    assert kb.retry_delay(reset, 0) is not None
    refused = urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(  # type: ignore[arg-type]
        None, "Connection refused"))  # type: ignore[arg-type]
    assert kb.retry_delay(refused, 0) is None  # an unreachable API fails at once
    assert kb.retry_after({"retry-after": "Wed, 25 Nov 2026 16:00:10 GMT"},
                          now=datetime(2026, 11, 25, 16, 0, 0, tzinfo=timezone.utc).timestamp()
                          ) == 10.0

    slept: list[float] = []
    answers = [api_exc(429, {"Retry-After": "2"}), api_exc(503), "ok"]

    def call() -> str:
        item = answers.pop(0)
        if isinstance(item, BaseException):
            raise item
        return str(item)

    assert kb.call_with_retries(call, sleep=slept.append) == "ok"
    assert slept[0] == 2.0 and 0.5 <= slept[1] <= 0.6
    calls: list[int] = []

    def forbidden() -> None:
        calls.append(1)
        raise api_exc(403)

    with pytest.raises(ApiException):
        kb.call_with_retries(forbidden, sleep=slept.append)
    assert calls == [1]
    # a server that keeps answering 503 is given up on after the attempts
    calls.clear()

    def down() -> None:
        calls.append(1)
        raise api_exc(503)

    with pytest.raises(ApiException):
        kb.call_with_retries(down, sleep=lambda s: None, attempts=4)
    assert len(calls) == 4


def test_dual_stack_nodes_keep_the_first_address_per_family() -> None:
    """Issue 8 item 9: the first InternalIP of each family, the pod CIDR's family first."""
    status = {"addresses": [{"type": "InternalIP", "address": "fd00::11"},
                            {"type": "InternalIP", "address": "10.0.0.11"},
                            {"type": "InternalIP", "address": "10.0.0.99"},
                            {"type": "InternalIP", "address": "fd00::99"},
                            {"type": "Hostname", "address": "n1"}]}
    assert kb.node_addresses(status, ["10.244.1.0/24", "fd00:10:244:1::/64"]) == (
        "10.0.0.11", "fd00::11")
    assert kb.node_addresses(status, ["fd00:10:244:1::/64"]) == ("fd00::11", "10.0.0.11")
    assert kb.node_addresses({"addresses": [{"type": "ExternalIP", "address": "1.2.3.4"}]},
                             []) == ("1.2.3.4",)
    node = kb.node_from_api({"metadata": {"name": "n1"},
                             "spec": {"podCIDRs": ["fd00:10:244:1::/64", "10.244.1.0/24"]},
                             "status": {**status, "conditions": [
                                 {"type": "Ready", "status": "True"}]}})
    assert node.ip == "fd00::11" and node.ips == ("fd00::11", "10.0.0.11") and node.ready


def test_cordoned_and_pressured_nodes_are_notes_not_problems() -> None:
    """Issue 8 item 7: nothing that leaves pinned pods running makes a node unusable."""
    node = kb.node_from_api({"metadata": {"name": "n1"}, "spec": {
        "unschedulable": True, "taints": [{"key": "node.kubernetes.io/unschedulable",
                                           "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                   "conditions": [{"type": "Ready", "status": "True"},
                                  {"type": "DiskPressure", "status": "True",
                                   "reason": "KubeletHasDiskPressure"}]}})
    assert node.ready and node.problems == ()
    assert node.notes == ("DiskPressure: KubeletHasDiskPressure",
                          "cordoned (spec.unschedulable): probe pods are pinned by nodeName "
                          "and still run")


def test_readiness_script_in_a_real_shell(tmp_path: Path) -> None:
    """The one-exec check, run by a real sh with a PATH that hides all but some tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "cat", "curl", "python3"):
        real_tool = shutil.which(tool)
        if real_tool:
            (bin_dir / tool).symlink_to(real_tool)
    proc = subprocess.run(["sh", "-c", kb.readiness_script(http_server=True)],
                          capture_output=True, text=True, env={"PATH": str(bin_dir)}, timeout=10)
    found = kb.parse_probe_check(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert found.missing == ("ping", "dig", "iperf3", "ip")
    host = kb.parse_probe_check("missing:iperf3\nping-error:ping: socket: Operation not "
                                "permitted\nsearch:ns.svc.corp.example svc.corp.example "
                                "corp.example\nmtu:1450\n")
    assert host.missing == ("iperf3",) and "not permitted" in host.ping_error
    assert kb.cluster_domain_from_search(host.search) == "corp.example" and host.mtu == 1450
    assert kb.cluster_domain_from_search(["example.com"]) is None


def test_dns_endpoints_from_endpointslices() -> None:
    slices: list[dict[str, Any]] = [{"endpoints": [
        {"addresses": ["10.244.1.10"], "nodeName": "node-2", "conditions": {"ready": True}},
        {"addresses": ["10.244.2.7"], "nodeName": "node-3", "conditions": {"ready": False}},
        {"addresses": ["10.244.1.11"], "nodeName": "node-2"}]},
        {"endpoints": [{"addresses": ["10.244.1.10"], "nodeName": "node-2"}]}]
    assert kb.dns_endpoints_from_slices(slices) == [("10.244.1.10", "node-2"),
                                                    ("10.244.1.11", "node-2")]


def test_admission_denials_are_told_from_rbac() -> None:
    psa = json.dumps({"kind": "Status", "message": 'pods "x" is forbidden: violates PodSecurity '
                      '"baseline:latest": host namespaces (hostNetwork=true)'})
    assert kb.admission_denial(403, psa) == ('violates PodSecurity "baseline:latest": host '
                                             'namespaces (hostNetwork=true)')
    hook = json.dumps({"message": 'admission webhook "validate.kyverno.svc-fail" denied the '
                       "request: policy disallow-host-namespaces"})
    assert "kyverno" in (kb.admission_denial(400, hook) or "")
    rbac = json.dumps({"message": 'pods is forbidden: User "x" cannot create resource "pods"'})
    assert kb.admission_denial(403, rbac) is None and kb.admission_denial(500, psa) is None


def test_progress_line_counts_pods_by_state() -> None:
    def pod(name: str, ready: bool = False, reason: str | None = None) -> dict[str, Any]:
        cs = [{"state": {"waiting": {"reason": reason}}}] if reason else []
        return {"metadata": {"name": name}, "spec": {"nodeName": "n"}, "status": {
            "phase": "Running" if ready else "Pending", "containerStatuses": cs,
            "conditions": [{"type": "Ready", "status": "True"}] if ready else []}}

    pods = {"a": pod("a", True), "b": pod("b", True), "c": pod("c", reason="ContainerCreating"),
            "d": pod("d", reason="ContainerCreating"), "e": pod("e", True), "f": pod("f", True)}
    events = [{"involvedObject": {"name": "c"}, "reason": "Pulling", "lastTimestamp": "1"},
              {"involvedObject": {"name": "d"}, "reason": "Pulling", "lastTimestamp": "1"}]
    assert kb.progress_line(pods, 6, events) == "waiting for probes: 4/6 running, 2 pulling image"
    assert kb.progress_line({"a": pod("a", True)}, 3) == \
        "waiting for probes: 1/3 running, 2 not created yet"


def test_err_image_pull_gives_up_at_once() -> None:
    pod = {"status": {"phase": "Pending", "containerStatuses": [
        {"image": "x", "state": {"waiting": {"reason": "ErrImagePull", "message": "nope"}}}]}}
    assert kb.pod_gave_up(pod)


def test_targets_follow_the_egress_url_and_the_cluster_domain() -> None:
    """Issue 8 item 3: external DNS follows the egress URL's host; an IP or no egress URL
    gives a skip reason instead of looking up example.com."""
    client = kb.kube().client
    api = client.ApiClient(client.Configuration())

    def targets(url: str, **over: Any) -> Any:
        b = kb.KubeBackend(api, settings(egress_url=url, **over), None, "https://x", "c", "kc")
        b.discovery.service_ip, b.findings.cluster_domain = "10.96.0.10", "corp.example"
        return b.targets()

    t = targets("http://mirror.internal:8080/x")
    assert t.external_name == "mirror.internal" and not t.external_skip and not t.egress_skip
    assert t.cluster_domain == "corp.example"
    assert t.dns_names[0] == "kubernetes.default.svc.corp.example"
    t = targets("http://203.0.113.5/")
    assert t.external_name == "" and "is an IP address" in t.external_skip and not t.egress_skip
    t = targets("http://[2001:db8::1]:80/")
    assert t.external_name == "" and "2001:db8::1 is an IP address" in t.external_skip
    t = targets("")
    assert t.egress_skip and t.external_skip and t.egress_url == ""
    # --k8s-external-name: looked up whatever the egress target is
    t = targets("http://203.0.113.5/", external_name="registry.corp.example")
    assert t.external_name == "registry.corp.example" and not t.external_skip
    api.close()


def test_pod_subnets_from_kubeadm_config() -> None:
    text = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n"
            "  podSubnet: 10.244.0.0/16,fd00:10:244::/56\n  serviceSubnet: 10.96.0.0/12\n")
    assert kb.pod_subnets_from_kubeadm(text) == ["10.244.0.0/16", "fd00:10:244::/56"]
    assert kb.pod_subnets_from_kubeadm("networking: {}\n") == []
    assert kb.pod_subnets_from_kubeadm(": not yaml :\n  - [") == []
