"""The kube backend against a REAL cluster: kube-apiserver, kubelets, containerd, kube-proxy
and CoreDNS running in the lab's namespaces (``k8snet-lab up --kubernetes``).

Nothing here is played by the test: pods are scheduled, pulled and started by kubelets,
commands run in real containers, admission is the API server's own (Pod Security,
ValidatingAdmissionPolicy, API Priority and Fairness), tokens are real ServiceAccount
tokens. ``K8SNET_KUBE_LAB=NAME`` uses a running lab with Kubernetes (left up); otherwise the
session's ``real_cluster`` (tests/conftest.py) is brought up for the run.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_k8snet import lab as labmod
from pytest_k8snet.backends import BackendError, Node
from pytest_k8snet.backends import kube as kb
from pytest_k8snet.lab import kube as labkube
from pytest_k8snet.options import Settings

from .conftest import kube_artifacts_missing

ROOT = Path(__file__).resolve().parents[1]
LAB = os.environ.get("K8SNET_KUBE_LAB", "")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or (not LAB and kube_artifacts_missing() is not None),
    reason="the real cluster needs root and the lab's Kubernetes build "
           + (kube_artifacts_missing() or ""))


@dataclass
class Real:
    """The real cluster: its admin kubeconfig, kubectl and the probe image."""

    name: str
    kubeconfig: str
    image: str
    domain: str

    def kubectl(self, *args: str, kubeconfig: str | None = None, stdin: str | None = None,
                check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(labkube.artifacts().kube), "kubectl", "--kubeconfig",
                               kubeconfig or self.kubeconfig, *args], input=stdin,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return proc

    def token_kubeconfig(self, path: Path, namespace: str, sa: str) -> str:
        """A kubeconfig for a ServiceAccount's real token (``kubectl create token``)."""
        token = self.kubectl("-n", namespace, "create", "token", sa).stdout.strip()
        doc = yaml.safe_load(Path(self.kubeconfig).read_text())
        doc["users"] = [{"name": sa, "user": {"token": token}}]
        for ctx in doc["contexts"]:
            ctx["context"]["user"] = sa
        path.write_text(yaml.safe_dump(doc))
        return str(path)


@pytest.fixture(scope="module")
def real(request: pytest.FixtureRequest) -> Real:
    if LAB:
        lab = labmod.load(LAB)
        assert lab.kubernetes, f"lab {LAB} runs no Kubernetes (k8snet-lab up --kubernetes)"
    else:
        lab = request.getfixturevalue("real_cluster")
    k = lab.kubernetes
    return Real(lab.name, k["kubeconfig"], k["images"]["probe"], k.get("cluster_domain", ""))


def settings(real: Real, **over: Any) -> Settings:
    values: dict[str, Any] = dict(
        kubeconfig=real.kubeconfig, context=None, backend="kube", lab=False, lab_nodes=3,
        namespace=None, probe_image=real.image, node_selector=(), pairs="all",
        expect_mtu=None, timeout=5.0, keep=False, results=None, baseline=None,
        baseline_tolerance=20.0, egress_url="http://world.example.com/", egress_attempts=5,
        run_id="kr" + secrets.token_hex(3), setup_timeout=120.0)
    values.update(over)
    return Settings(**values)


def backend_for(real: Real, s: Settings, kubeconfig: str | None = None,
                shared_dir: Path | None = None) -> kb.KubeBackend:
    return kb.KubeBackend.from_settings(s, kubeconfig or real.kubeconfig, None,
                                        shared_dir=shared_dir)


def run_pods(real: Real, namespace: str, run_id: str) -> list[dict[str, Any]]:
    out = real.kubectl("-n", namespace, "get", "pods", "-l", f"k8snet.io/run={run_id}",
                       "-o", "json", check=False)
    return list(json.loads(out.stdout or "{}").get("items") or []) if out.returncode == 0 else []


def gone(real: Real, namespace: str) -> bool:
    out = real.kubectl("get", "namespace", namespace, "-o", "json", check=False)
    return out.returncode != 0 or json.loads(out.stdout)["status"].get("phase") == "Terminating"


# -- one healthy start shared by several checks ----------------------------------------------


@pytest.fixture(scope="module")
def started(real: Real) -> Iterator[tuple[kb.KubeBackend, list[Node], float]]:
    s = settings(real)
    backend = backend_for(real, s)
    nodes = backend.nodes()
    lines: list[str] = []
    backend.progress.write = lines.append
    begin = time.monotonic()
    backend.start(nodes)
    took = time.monotonic() - begin
    yield backend, nodes, took
    backend.cleanup()
    assert backend.cleanup_leftovers() == []
    assert gone(real, backend.namespace)


def test_real_least_privilege_probes_pass_every_check(real: Real, started: Any) -> None:
    """Issue 8, least privilege: no privileged container, NET_RAW only (all else dropped),
    activeDeadlineSeconds on every pod; and yet every tool runs, ping included."""
    backend, nodes, took = started
    print(f"\nsetup of {2 * len(nodes)} probes: {took:.1f}s")
    assert backend.node_problems() == {} and backend.missing_tools() == {}
    pods = run_pods(real, backend.namespace, backend.run_id)
    assert len(pods) == 2 * len(nodes)
    for pod in pods:
        c = pod["spec"]["containers"][0]
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW"]}
        assert not c["securityContext"].get("privileged")
        assert pod["spec"]["activeDeadlineSeconds"] >= kb.ACTIVE_DEADLINE_SECONDS
    ns = json.loads(real.kubectl("get", "namespace", backend.namespace, "-o", "json").stdout)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    for node in nodes:
        for net in ("pod", "host"):
            res = backend.endpoint(node.name, net).run(["ping", "-n", "-c", "1", "-W", "2",
                                                        nodes[0].ip], 5)
            assert res.ok, res.transcript()


def test_real_cluster_domain_is_read_from_a_probe(real: Real, started: Any) -> None:
    """Issue 8: the cluster domain comes from a probe pod's resolv.conf, not a constant."""
    backend, _, _ = started
    assert backend.findings.cluster_domain == real.domain == "cluster.local"
    t = backend.targets()
    assert t.cluster_domain == real.domain
    assert t.dns_names[0] == f"kubernetes.default.svc.{real.domain}"
    assert t.external_name == "world.example.com" and t.external_skip == "" == t.egress_skip
    ep = backend.endpoint(backend.nodes()[0].name, "pod")
    res = ep.run(["dig", "+short", t.dns_names[1]])
    assert res.ok and res.stdout.strip() == t.service_ip, res.transcript()
    # the same readiness exec read the interface MTU: no exec for it later
    count = backend.exec_count
    assert backend.interface_mtu(ep) == 1450 and backend.exec_count == count


def test_real_dns_endpoints_and_exec_count(real: Real, started: Any) -> None:
    """Issue 8 item 10: the kube-dns EndpointSlices give (IP, node) of every CoreDNS pod;
    exec_count counts commands (and exec latency is measured here)."""
    backend, nodes, _ = started
    coredns = json.loads(real.kubectl("-n", "kube-system", "get", "pods", "-l",
                                      "k8s-app=kube-dns", "-o", "json").stdout)["items"]
    want = sorted((p["status"]["podIP"], p["spec"]["nodeName"]) for p in coredns)
    assert sorted(backend.dns_endpoints()) == want and want
    before = backend.exec_count
    ep = backend.endpoint(nodes[0].name, "pod")
    times = []
    for _ in range(20):
        res = ep.run(["true"], 5)
        assert res.ok
        times.append(res.seconds * 1000)
    assert backend.exec_count == before + 20
    print(f"\nexec latency: median {statistics.median(times):.0f} ms, "
          f"max {max(times):.0f} ms over 20")


def test_real_endpoints_and_urls_are_ipv6_safe() -> None:
    """Issue 8 item 9: URLs bracket IPv6 addresses (the lab is IPv4-only: pure)."""
    from pytest_k8snet.backends import host_port

    assert host_port("fd00:10:244:1::5", 8080) == "[fd00:10:244:1::5]:8080"
    assert host_port("10.244.1.5", 8080) == "10.244.1.5:8080"


# -- the probe image --------------------------------------------------------------------------


def hide_tools(node: Node, manifest: dict[str, Any]) -> None:
    """Probes whose container deletes a tool from its own root file system before it starts
    (node-2: iperf3), or runs without NET_RAW (node-3): what an image without iperf3, or a
    runtime that drops NET_RAW, gives -- on real containers."""
    c = manifest["spec"]["containers"][0]
    if node.name == "node-2":
        c["command"] = ["/bin/sh", "-c", 'rm -f "$(command -v iperf3)"; ' + c["command"][-1]]
    if node.name == "node-3":
        c["securityContext"]["capabilities"] = {"drop": ["ALL"]}


def test_real_probe_image_lacking_a_tool_is_said_once_not_as_a_network_cause(
        real: Real) -> None:
    """Issue 8 item 1: one exec per probe checks every tool; a missing iperf3 is "probe image
    lacks iperf3" on that node, ping without NET_RAW is said as such, never a network."""
    s = settings(real)
    backend = backend_for(real, s)
    backend.launcher.edit_manifest = hide_tools
    try:
        nodes = backend.nodes()
        backend.start(nodes)
        assert backend.missing_tools() == {"node-2": ["iperf3"]}
        problems = backend.node_problems()
        assert set(problems) == {"node-2", "node-3"}, problems
        (line,) = problems["node-2"]
        assert line.startswith(f"probe image {real.image} lacks iperf3 (in the host and "
                               "pod-network probes)") and "not a network fault" in line
        (ping,) = problems["node-3"]
        assert ping.startswith("ping cannot run in the probe") and "NET_RAW" in ping
        assert "not permitted" in ping.lower() or "permission" in ping.lower(), ping
        # the node list the run uses carries them too
        assert line in next(n for n in nodes if n.name == "node-2").problems
        assert backend.endpoint("node-2", "pod").run(["iperf3", "-v"]).exit_code == 127
    finally:
        backend.cleanup()


# -- setup: progress, image pulls, retries ----------------------------------------------------


def test_real_image_that_cannot_be_pulled_gives_up_at_once_naming_node_and_image(
        real: Real) -> None:
    """Issue 8 item 4: setup_timeout is minutes, yet a pull that fails for good ends the wait
    at once, each node's problem naming the node and the image; progress is said meanwhile."""
    image = "localhost/k8snet-no-such-image:dev"
    s = settings(real, probe_image=image, setup_timeout=300.0)
    backend = backend_for(real, s)
    lines: list[str] = []
    backend.progress.write = lines.append
    backend.progress.every = 0.0  # every look at the pods says how far they got
    try:
        nodes = [n for n in backend.nodes() if n.name in ("node-1", "node-2")]
        begin = time.monotonic()
        backend.start(nodes)
        took = time.monotonic() - begin
        assert took < 20, took
        problems = backend.node_problems()
        for node in ("node-1", "node-2"):
            text = " | ".join(problems[node])
            assert f"on {node}" in text and f"image {image}" in text, text
            assert "ImagePullBackOff" in text or "ErrImagePull" in text, text
        print(f"\ngave up after {took:.1f}s; progress: {lines}")
        assert any(line.startswith("waiting for probes: 0/4 running") for line in lines), lines
    finally:
        backend.cleanup()


def test_real_429_is_retried_with_backoff_then_answered(real: Real) -> None:
    """Issue 8 item 4: the API server's own 429 (an eviction a PodDisruptionBudget blocks)
    is retried with backoff until the budget is lifted, then answered; a 403 is never
    retried. (Retry-After itself: test_kube_api's pure retry tests.)"""
    ns = "k8snet-test-429-" + secrets.token_hex(2)
    _namespace(real, ns, "privileged")
    try:
        real.kubectl("-n", ns, "run", "victim", f"--image={real.image}", "--labels=app=victim",
                     "--image-pull-policy=IfNotPresent", "--command", "--", "sleep", "3600")
        real.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/victim", "--timeout=60s")
        real.kubectl("-n", ns, "create", "poddisruptionbudget", "victim", "--selector=app=victim",
                     "--min-available=1")
        deadline = time.monotonic() + 30
        while "0" != real.kubectl("-n", ns, "get", "pdb", "victim", "-o",
                                  "jsonpath={.status.disruptionsAllowed}").stdout.strip() \
                or not real.kubectl("-n", ns, "get", "pdb", "victim", "-o",
                                    "jsonpath={.status.observedGeneration}").stdout.strip():
            assert time.monotonic() < deadline
            time.sleep(0.5)
        backend = backend_for(real, settings(real))
        lift = threading.Timer(3.0, lambda: real.kubectl("-n", ns, "delete", "pdb", "victim"))
        lift.start()
        begin = time.monotonic()
        backend.api.call("evict pod victim", backend.api.core.create_namespaced_pod_eviction,
                         "victim", ns, {"apiVersion": "policy/v1", "kind": "Eviction",
                                        "metadata": {"name": "victim", "namespace": ns}},
                         _preload_content=False)
        took = time.monotonic() - begin
        lift.join()
        waits = backend.api.retry_waits
        print(f"\n429s retried: {len(waits)}, waits {waits}, answered after {took:.1f}s")
        assert len(waits) >= 2 and took >= 3.0
        # this 429 carries no Retry-After (the PDB's eviction answer): exponential backoff
        assert all(b > a for a, b in zip(waits, waits[1:])), waits
        # a 403 will not change: one request, no retry
        kc_missing = backend_for(real, settings(real))
        from kubernetes.client.exceptions import ApiException

        calls = []

        def forbidden() -> None:
            calls.append(1)
            raise ApiException(status=403, reason="Forbidden")

        with pytest.raises(ApiException):
            kb.call_with_retries(forbidden)
        assert calls == [1] and kc_missing.api.retries == 0
    finally:
        real.kubectl("delete", "namespace", ns, "--wait=false", check=False)


# -- admission ----------------------------------------------------------------------------------


def _namespace(real: Real, name: str, level: str) -> None:  # noqa: D103
    real.kubectl("create", "namespace", name)
    real.kubectl("label", "namespace", name, f"pod-security.kubernetes.io/enforce={level}")


def test_real_restricted_namespace_says_pod_security_denies_the_probes(real: Real) -> None:
    """Issue 8 item 5: under Pod Security ``restricted`` no probe is admitted: one clear
    error quoting the denial, nothing left behind."""
    ns = "k8snet-test-restricted-" + secrets.token_hex(2)
    _namespace(real, ns, "restricted")
    try:
        s = settings(real, namespace=ns)
        backend = backend_for(real, s)
        with pytest.raises(BackendError) as info:
            backend.start(backend.nodes())
        text = str(info.value)
        print("\n" + text)
        assert f"admission denied the pod-network probe in namespace {ns}" in text
        assert 'violates PodSecurity "restricted:latest"' in text
        assert "pod-security.kubernetes.io/enforce=privileged" in text
        backend.cleanup()
        assert backend.cleanup_leftovers() == []
        assert run_pods(real, ns, s.run_id) == []
        assert real.kubectl("-n", ns, "get", "services", "-o", "name").stdout.strip() == ""
    finally:
        real.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_real_baseline_namespace_runs_pod_checks_and_quotes_the_host_denial(real: Real) -> None:
    """Issue 8 item 5: under ``baseline`` the host-network probe is denied (hostNetwork) and
    said per node, quoted; the pod-network probe runs without NET_RAW added (containerd's
    default set has it, so ping still works); the nodes are not unusable."""
    ns = "k8snet-test-baseline-" + secrets.token_hex(2)
    _namespace(real, ns, "baseline")
    try:
        s = settings(real, namespace=ns)
        backend = backend_for(real, s)
        nodes = backend.nodes()
        backend.start(nodes)
        for node in nodes:
            why = backend.endpoint_unavailable(node.name, "host")
            assert why is not None and why.startswith(
                f"host-network probe on {node.name} denied by admission:"), why
            assert 'violates PodSecurity "baseline:latest": non-default capabilities ' \
                   '(container "probe" must not include "NET_RAW" in ' \
                   'securityContext.capabilities.add), host namespaces (hostNetwork=true)' \
                in why, why
            assert backend.endpoint_unavailable(node.name, "pod") is None
            res = backend.endpoint(node.name, "host").run(["true"])
            assert res.exit_code == kb.EXIT_EXEC_FAILED and "denied by admission" in res.stderr
            ok = backend.endpoint(node.name, "pod").run(["ping", "-n", "-c", "1", "-W", "2",
                                                         nodes[0].ip], 5)
            assert ok.ok, ok.transcript()
            assert any("admission denied NET_RAW" in n for n in node.notes), node.notes
        assert backend.node_problems() == {}
        print(f"\n{backend.endpoint_unavailable(nodes[0].name, 'host')}")
        backend.cleanup()
        assert backend.cleanup_leftovers() == [] and run_pods(real, ns, s.run_id) == []
    finally:
        real.kubectl("delete", "namespace", ns, "--wait=false", check=False)


# -- RBAC, least privilege, in-cluster ----------------------------------------------------------

NEEDED = [("get", "nodes", ""), ("list", "nodes", ""), ("create", "namespaces", ""),
          ("get", "namespaces", "k8snet-x"), ("delete", "namespaces", ""),
          ("create", "pods", "k8snet-x"), ("get", "pods", "k8snet-x"),
          ("list", "pods", "k8snet-x"), ("watch", "pods", "k8snet-x"),
          ("delete", "pods", "k8snet-x"), ("create", "pods/exec", "k8snet-x"),
          ("get", "pods/exec", "k8snet-x"), ("create", "services", "k8snet-x"),
          ("get", "services", "k8snet-x"), ("delete", "services", "k8snet-x"),
          ("list", "events", "k8snet-x"), ("watch", "events", "k8snet-x"),
          ("list", "endpointslices.discovery.k8s.io", "kube-system"),
          ("list", "endpointslices.discovery.k8s.io", "k8snet-x")]


def can_i(real: Real, kc: str, verb: str, resource: str, namespace: str) -> bool:
    args = ["auth", "can-i", verb, resource] + (["-n", namespace] if namespace else [])
    return real.kubectl(*args, kubeconfig=kc, check=False).stdout.strip() == "yes"


@pytest.fixture(scope="module")
def rbac(real: Real) -> Iterator[None]:
    real.kubectl("apply", "-f", str(ROOT / "examples" / "rbac.yaml"))
    real.kubectl("apply", "-f", str(ROOT / "examples" / "rbac-namespace.yaml"))
    yield
    real.kubectl("delete", "-f", str(ROOT / "examples" / "rbac.yaml"), "--wait=false",
                 check=False)
    real.kubectl("delete", "-f", str(ROOT / "examples" / "rbac-namespace.yaml"),
                 "--wait=false", check=False)


def test_real_rbac_example_verb_by_verb(real: Real, rbac: None, tmp_path: Path) -> None:
    """Issue 8 item 6: examples/rbac.yaml with a real ServiceAccount token: every verb the
    backend uses is allowed, a whole run works with it, and its admission policy keeps the
    cluster-wide rules inside the runs' own namespaces."""
    kc = real.token_kubeconfig(tmp_path / "kc", "k8snet", "k8snet")
    denied = [(v, r, n) for v, r, n in NEEDED if not can_i(real, kc, v, r, n)]
    assert denied == []
    for verb, resource, ns in (("get", "secrets", "kube-system"), ("list", "secrets", ""),
                               ("create", "deployments", "default"),
                               ("patch", "nodes", ""), ("update", "namespaces", "")):
        assert not can_i(real, kc, verb, resource, ns), (verb, resource, ns)
    s = settings(real)
    backend = backend_for(real, s, kubeconfig=kc)
    nodes = backend.nodes()
    backend.start(nodes)
    assert backend.node_problems() == {}
    assert backend.service_settled is True  # the Service's slices, listed with this token
    assert backend.endpoint("node-1", "host").run(["true"]).ok
    assert backend.dns_endpoints()  # kube-system's slices
    backend.cleanup()
    assert backend.cleanup_leftovers() == [] and gone(real, backend.namespace)
    # what RBAC alone would allow, the policy denies: outside a managed-by namespace
    scratch = "k8snet-test-unlabelled-" + secrets.token_hex(2)
    real.kubectl("create", "namespace", scratch)
    try:
        out = real.kubectl("delete", "namespace", scratch, kubeconfig=kc, check=False)
        assert out.returncode != 0 and "managed-by=pytest-k8snet" in out.stderr, out.stderr
        out = real.kubectl("-n", scratch, "run", "x", f"--image={real.image}",
                           kubeconfig=kc, check=False)
        assert out.returncode != 0 and "managed-by=pytest-k8snet" in out.stderr, out.stderr
    finally:
        real.kubectl("delete", "namespace", scratch, "--wait=false", check=False)


def test_real_rbac_precreated_namespace_variant(real: Real, rbac: None, tmp_path: Path) -> None:
    """examples/rbac-namespace.yaml: a namespaced Role only (plus nodes and the DNS slices);
    a run with --k8s-namespace works and nothing outside that namespace is allowed."""
    kc = real.token_kubeconfig(tmp_path / "kc", "k8snet-probes", "k8snet")
    for verb, resource, ns in (("create", "pods", "k8snet-probes"),
                               ("create", "pods/exec", "k8snet-probes"),
                               ("list", "endpointslices.discovery.k8s.io", "k8snet-probes")):
        assert can_i(real, kc, verb, resource, ns), (verb, resource, ns)
    for verb, resource, ns in (("create", "pods", "default"), ("create", "namespaces", ""),
                               ("delete", "namespaces", ""), ("get", "pods/exec", "default")):
        assert not can_i(real, kc, verb, resource, ns), (verb, resource, ns)
    # a Role in a namespace covers GET of that namespace itself (the API server authorizes
    # namespaces/NAME in namespace NAME), and no other namespace
    assert real.kubectl("get", "namespace", "k8snet-probes", kubeconfig=kc, check=False
                        ).returncode == 0
    assert "forbidden" in real.kubectl("get", "namespace", "default", kubeconfig=kc,
                                       check=False).stderr
    s = settings(real, namespace="k8snet-probes")
    backend = backend_for(real, s, kubeconfig=kc)
    nodes = backend.nodes()
    backend.start(nodes)
    assert backend.node_problems() == {}
    assert backend.service_settled is True
    assert backend.endpoint("node-2", "pod").run(["true"]).ok
    backend.cleanup()
    assert backend.cleanup_leftovers() == [] and run_pods(real, "k8snet-probes", s.run_id) == []


IN_POD = r"""
import json, secrets
from pytest_k8snet.backends import kube as kb
from pytest_k8snet.options import Settings
s = Settings(kubeconfig=None, context=None, backend="kube", lab=False, lab_nodes=3,
             namespace=None, probe_image=IMAGE, node_selector=(), pairs="all",
             expect_mtu=None, timeout=5.0, keep=False, results=None, baseline=None,
             baseline_tolerance=20.0, egress_url="http://world.example.com/",
             egress_attempts=5, run_id="kp" + secrets.token_hex(3), in_cluster=True)
b = kb.KubeBackend.from_settings(s, "", None)
nodes = b.nodes()
b.start(nodes)
r = b.endpoint(nodes[0].name, "pod").run(["dig", "+short", b.targets().dns_names[0]])
b.cleanup()
print(json.dumps({"server": b.api.server, "context": b.context, "nodes": [n.name for n in nodes],
                  "problems": b.node_problems(), "dig": r.stdout.strip(),
                  "leftovers": b.cleanup_leftovers()}))
"""


def test_real_in_cluster_run_from_a_pod(real: Real, rbac: None) -> None:
    """Issue 8 item 2: inside a pod, with no kubeconfig, the backend uses the pod's
    ServiceAccount (examples/rbac.yaml's) and runs: nodes, probes, exec, cleanup."""
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    name = "k8snet-incluster-" + secrets.token_hex(2)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "k8snet"},
           "spec": {"serviceAccountName": "k8snet", "restartPolicy": "Never",
                    "nodeName": "node-1", "activeDeadlineSeconds": 300,
                    "containers": [{
                        "name": "runner", "image": real.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "-c", IN_POD.replace("IMAGE", repr(real.image))],
                        "env": [{"name": "PYTHONPATH", "value": f"{ROOT}:{site}"}],
                        "volumeMounts": [{"name": "src", "mountPath": str(ROOT),
                                          "readOnly": True}]}],
                    "volumes": [{"name": "src", "hostPath": {"path": str(ROOT)}}]}}
    real.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        deadline = time.monotonic() + 120
        while True:
            phase = real.kubectl("-n", "k8snet", "get", "pod", name, "-o",
                                 "jsonpath={.status.phase}").stdout
            if phase in ("Succeeded", "Failed") or time.monotonic() > deadline:
                break
            time.sleep(1)
        logs = real.kubectl("-n", "k8snet", "logs", name, check=False)
        assert phase == "Succeeded", logs.stdout + logs.stderr
        doc = json.loads(logs.stdout.strip().splitlines()[-1])
        print(f"\n{doc}")
        assert doc["context"] == kb.IN_CLUSTER and doc["server"].startswith("https://")
        assert doc["nodes"] == ["node-1", "node-2", "node-3"] and doc["problems"] == {}
        assert doc["dig"] and doc["leftovers"] == []
    finally:
        real.kubectl("-n", "k8snet", "delete", "pod", name, "--grace-period=0", "--wait=false",
                     check=False)


# -- nodes ------------------------------------------------------------------------------------


def test_real_cordoned_node_is_probed(real: Real) -> None:
    """Issue 8 item 7: a cordoned node still runs pods pinned by nodeName: probed, with a
    note, not a problem; Ready says True."""
    real.kubectl("cordon", "node-3")
    try:
        s = settings(real)
        backend = backend_for(real, s)
        nodes = [n for n in backend.nodes() if n.name == "node-3"]
        assert nodes[0].ready and nodes[0].problems == ()
        assert any(n.startswith("cordoned") for n in nodes[0].notes)
        backend.start(nodes)
        assert backend.node_problems() == {}
        assert backend.endpoint("node-3", "pod").run(["true"]).ok
        assert backend.endpoint("node-3", "host").run(["true"]).ok
        backend.cleanup()
    finally:
        real.kubectl("uncordon", "node-3", check=False)


# -- cleanup --------------------------------------------------------------------------------------


def test_real_cleanup_keeps_going_and_names_the_command(real: Real, tmp_path: Path) -> None:
    """Issue 8 item 8: a token that may delete pods but not services: the pods go, the
    Service stays, and the cleanup says so with the exact command; cleanup_run that cannot
    connect says so too."""
    ns = "k8snet-test-cleanup-" + secrets.token_hex(2)
    _namespace(real, ns, "privileged")
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "no-service-delete", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["pods"],
                       "verbs": ["create", "get", "list", "watch", "delete"]},
                      {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
                      {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "get"]},
                      {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]}
    real.kubectl("apply", "-f", "-", stdin=json.dumps(role))
    real.kubectl("-n", ns, "create", "serviceaccount", "cleaner")
    real.kubectl("-n", ns, "create", "rolebinding", "cleaner", "--role=no-service-delete",
                 f"--serviceaccount={ns}:cleaner")
    try:
        kc = real.token_kubeconfig(tmp_path / "kc", ns, "cleaner")
        s = settings(real, namespace=ns)
        backend = backend_for(real, s, kubeconfig=kc)
        nodes = [n for n in backend_for(real, s).nodes() if n.name == "node-1"]  # as admin
        backend.start(nodes)
        backend.cleanup()
        (line,) = backend.cleanup_leftovers()
        print("\n" + line)
        assert "forbidden to delete service" in line
        assert line.endswith(f"remove it with `kubectl --kubeconfig {kc} -n {ns} delete "
                             f"service k8snet-{s.run_id}-probe`")
        assert run_pods(real, ns, s.run_id) == []
        # the controller's cleanup that cannot connect says so, with the command
        lines = kb.cleanup_run(s, str(tmp_path / "missing-kubeconfig"))
        assert len(lines) == 1 and "could not connect" in lines[0]
        assert f"-l k8snet.io/run={s.run_id}`" in lines[0]
    finally:
        real.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_real_xdist_workers_share_probes_and_only_the_controller_deletes(
        real: Real, tmp_path: Path) -> None:
    """Issue 8 item 8: two workers (one shared dir) share one probe set and its findings;
    neither deletes; the controller's cleanup_run removes the namespace."""
    s = settings(real)
    first = backend_for(real, s, shared_dir=tmp_path)
    second = backend_for(real, s, shared_dir=tmp_path)
    nodes = first.nodes()
    first.start(nodes)
    made = {p["metadata"]["uid"] for p in run_pods(real, first.namespace, s.run_id)}
    second.start(second.nodes())
    assert {p["metadata"]["uid"] for p in run_pods(real, first.namespace, s.run_id)} == made
    assert second.targets().cluster_domain == "cluster.local"
    assert second.endpoint("node-2", "host").run(["true"]).ok
    first.cleanup()
    second.cleanup()
    assert len(run_pods(real, first.namespace, s.run_id)) == len(made)
    assert kb.cleanup_run(s, real.kubeconfig) == []
    assert gone(real, first.namespace)


def test_real_suite_reports_the_missing_tool(real: Real, pytester: pytest.Pytester) -> None:
    """End to end: the built-in suite on the real cluster with iperf3 removed from node-2's
    probes through the public manifest hook: the run names the image, not the VXLAN port."""
    pytester.makeconftest("""
        def pytest_k8snet_probe_pod_manifest(config, node, manifest):
            if node.name == "node-2":
                c = manifest["spec"]["containers"][0]
                c["command"] = ["/bin/sh", "-c", 'rm -f "$(command -v iperf3)"; '
                                + c["command"][-1]]
    """)
    result = pytester.runpytest_subprocess(
        "--pyargs", "pytest_k8snet.suite", "--k8s-kubeconfig", real.kubeconfig,
        "--k8s-backend", "kube", "--k8s-probe-image", real.image,
        "--k8s-egress-url", "http://world.example.com/", "-p", "no:cacheprovider", "-q",
        "-rfs", "-k", "test_nodes_ready or test_udp_8472", timeout=300)
    out = result.stdout.str()
    print(out[-3000:])
    assert "lacks iperf3" in out
    assert "8472 blocked" not in out.lower() and "vxlan port" not in out.lower()

