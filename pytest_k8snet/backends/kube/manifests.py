"""Probe pod manifests and the names, labels and constants they carry (pure)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...probes import pmtu_udp

MANAGED_BY = ("app.kubernetes.io/managed-by", "pytest-k8snet")
RUN_LABEL = "k8snet.io/run"
ROLE_LABEL = "k8snet.io/probe"  # "pod" or "host"
NODE_ANNOTATION = "k8snet.io/node"
PROBE_PORT = 8080
SERVICE_PORT = 80
CONTAINER = "probe"
ONE_MIB = 1024 * 1024
# Kubernetes' default; the run reads the real one from a probe pod's resolv.conf.
CLUSTER_DOMAIN = "cluster.local"
# Leaked probes (a SIGKILLed runner) die on their own after this: long enough for any run.
ACTIVE_DEADLINE_SECONDS = 4 * 3600
# Tools the probes run (pytest_k8snet/probes, cluster.py, measure.py), checked at readiness
# in both probes with one exec each, so a missing one reads "probe image lacks X" and never
# a network cause. (tracepath is named in the README but no probe runs it.)
PROBE_TOOLS = ("sh", "cat", "ping", "curl", "dig", "iperf3", "ip")
HTTP_SERVERS = ("python3", "busybox", "httpd", "socat")  # any one serves the pod probe
# Capabilities: ping needs NET_RAW; nothing else the probes do needs one (reading
# /proc/sys, `ip addr`, binding 8080 and iperf3's 5201+ need none). NET_ADMIN is left out on
# purpose: only the firewall *evidence* (iptables-save, nft) would use it.
PROBE_CAPABILITIES = ("NET_RAW",)

# Exit codes for an exec that did not produce one (the command's own codes pass through).
EXIT_TIMEOUT = 124  # like timeout(1)
EXIT_EXEC_FAILED = 125  # the API or the kubelet could not run the exec at all
EXIT_CANNOT_RUN = 126  # the runtime refused the command
EXIT_NOT_FOUND = 127  # the executable is not in the image

# Container waiting reasons after which waiting longer does not help. ErrImagePull too: a
# failed pull is only retried after the kubelet's back-off (ImagePullBackOff, 10 s and up),
# and the message (no such image, no access, registry unreachable) is already the answer.
GIVE_UP_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                             "ErrImageNeverPull", "CreateContainerConfigError",
                             "CrashLoopBackOff"})
WAITING_PROBLEMS = GIVE_UP_REASONS | {"ErrImagePull", "CreateContainerError",
                                      "RunContainerError", "PreStartHookError"}
# Warning events on a pod that explain why it does not come up.
EVENT_PROBLEMS = ("FailedCreatePodSandBox", "FailedScheduling", "NetworkNotReady", "FailedMount",
                  "Unhealthy", "Failed", "BackOff", "FailedSync", "InspectFailed",
                  "ErrImageNeverPull", "Evicted", "Preempting", "OutOfcpu", "OutOfmemory")
# Node conditions other than Ready that matter when they are True.
BAD_CONDITIONS = ("NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure")
# Taints worth a line in the node's problems (probes tolerate every taint anyway).
NOTABLE_TAINTS = ("node.kubernetes.io/network-unavailable", "node.kubernetes.io/not-ready",
                  "node.kubernetes.io/unreachable", "node.kubernetes.io/out-of-service",
                  "node.cloudprovider.kubernetes.io/uninitialized",
                  "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                  "node.kubernetes.io/pid-pressure")
DETAIL_CHARS = 300

# -- pure functions: manifests --------------------------------------------------------------


def http_server_script(port: int = PROBE_PORT, root: str = "/tmp/www",
                       udp_port: int = pmtu_udp.PORT) -> str:
    """The probe container's command: serve ``/`` (the pod's name), ``/1mib`` and ``/healthz``,
    after starting the UDP echo on ``udp_port`` in the background (the path-MTU search's fallback
    where ICMP is filtered: probes/pmtu_udp.py).

    Images differ, so the script uses the first server it finds: ``python3 -m http.server``
    (netshoot ships python3), ``busybox httpd``, ``httpd`` (busybox-extras), then ``socat``
    with a small shell responder. With none it exits with a message that the pod's status
    shows (``terminationMessagePolicy: FallbackToLogsOnError``). The pod's name comes from
    ``$K8SNET_POD`` (downward API).
    """
    respond = (
        "read -r _ p _; p=${p%%\\?*}; case $p in /) f=index.html;; /1mib) f=1mib;; "
        "/healthz) f=healthz;; *) f=;; esac; "
        "if [ -n \"$f\" ]; then printf 'HTTP/1.0 200 OK\\r\\nContent-Type: "
        "application/octet-stream\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n' "
        "\"$(wc -c <\"$f\" | tr -d ' ')\"; cat \"$f\"; "
        "else printf 'HTTP/1.0 404 Not Found\\r\\nContent-Length: 0\\r\\n\\r\\n'; fi")
    return "\n".join([
        "set -u",
        f"mkdir -p {root} && cd {root} || exit 1",
        f"head -c {ONE_MIB} /dev/zero >1mib 2>/dev/null || "
        "dd if=/dev/zero of=1mib bs=1024 count=1024 2>/dev/null",
        "echo ok >healthz",
        'echo "${K8SNET_POD:-$(hostname)}" >index.html',
        pmtu_udp.responder_script(udp_port),
        # --bind :: serves IPv4 and IPv6 (http.server's dual-stack socket; bare, it binds
        # 0.0.0.0 only); a pod whose kernel has no IPv6 keeps the IPv4 server.
        "if command -v python3 >/dev/null 2>&1; then python3 -c 'import socket; "
        "socket.socket(socket.AF_INET6)' 2>/dev/null "
        f"&& exec python3 -m http.server --bind :: {port}; exec python3 -m http.server {port}; fi",
        "if command -v busybox >/dev/null 2>&1 && busybox --list 2>/dev/null | grep -qx httpd; "
        f"then exec busybox httpd -f -p {port} -h {root}; fi",
        f"if command -v httpd >/dev/null 2>&1; then exec httpd -f -p {port} -h {root}; fi",
        "if command -v socat >/dev/null 2>&1; then",
        # Beside the files it serves (not /tmp): the script leaves nothing elsewhere.
        f"  cat >{root}/.respond.sh <<'EOF'\ncd {root}\n{respond}\nEOF",
        f"  exec socat TCP-LISTEN:{port},reuseaddr,fork SYSTEM:'sh {root}/.respond.sh'",
        "fi",
        'echo "k8snet: no HTTP server in the probe image (need python3, busybox httpd, httpd '
        'or socat)" >&2',
        "exit 1",
    ])


HOST_SCRIPT = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"


def probe_pod_name(role: str, node: str, prefix: str = "k8snet") -> str:
    """``<prefix>-<role>-<node>``, shortened with a hash to stay a valid 63-character name."""
    name = f"{prefix}-{role}-{node}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(node.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


@dataclass(frozen=True)
class RunNames:
    """Where a run's objects live and what they are called: the backend that creates them
    and the xdist controller that removes them must agree."""

    run_id: str
    namespace: str
    owns_namespace: bool  # False with --k8s-namespace: the namespace is the user's
    prefix: str  # of every object name; the run id is in it when the namespace is shared
    service_name: str

    @classmethod
    def of(cls, run_id: str, namespace: str | None) -> RunNames:
        """The names for run ``run_id``, in ``namespace`` (``--k8s-namespace``) or in a
        fresh ``k8snet-<run id>``."""
        prefix = "k8snet" if namespace is None else f"k8snet-{run_id}"
        return cls(run_id, namespace or f"k8snet-{run_id}", namespace is None, prefix,
                   f"{prefix}-probe")

    @property
    def selector(self) -> str:
        """The label selector of everything the run created."""
        return f"{RUN_LABEL}={self.run_id}"

    def probe(self, node: str, role: str) -> str:
        """The name of the ``role`` ("pod" or "host") probe on ``node``."""
        return probe_pod_name("probe" if role == "pod" else "host", node, self.prefix)


def run_labels(run_id: str) -> dict[str, str]:
    return {MANAGED_BY[0]: MANAGED_BY[1], RUN_LABEL: run_id}


def namespace_manifest(name: str, run_id: str) -> dict[str, Any]:
    """The run's namespace, labelled Pod Security ``enforce=privileged``.

    No probe is a privileged container, but both break the ``baseline`` level: the
    host-network probe sets ``hostNetwork: true`` (baseline forbids host namespaces) and
    both add ``NET_RAW`` for ping (baseline allows adding only AUDIT_WRITE, CHOWN,
    DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP,
    SETUID and SYS_CHROOT; NET_RAW is not among them). ``privileged`` is the only level
    that admits them. With ``--k8s-namespace`` the namespace is yours and its labels are
    left alone: under ``baseline`` the run degrades (the pod probe without NET_RAW, no
    host-network probe), under ``restricted`` no probe is admitted.
    """
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {
                **run_labels(run_id), "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/warn": "privileged",
                "pod-security.kubernetes.io/audit": "privileged"}}}


def security_context(capabilities: tuple[str, ...] = PROBE_CAPABILITIES) -> dict[str, Any]:
    """Least privilege: every capability dropped but ``capabilities``, no privilege
    escalation, the runtime's seccomp profile. Not ``privileged``."""
    return {"allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": list(capabilities)},
            "seccompProfile": {"type": "RuntimeDefault"}}


def without_added_capabilities(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with the runtime's default capabilities instead of drop-ALL-add-NET_RAW.

    Pod Security ``baseline`` rejects adding NET_RAW, but containerd's and Docker's default
    set includes it, so ping often still works this way (CRI-O's does not: the readiness
    check then says ping cannot open its socket). Used only after an admission denial.
    """
    out: dict[str, Any] = json.loads(json.dumps(manifest))
    for container in out.get("spec", {}).get("containers") or []:
        ctx = container.get("securityContext") or {}
        ctx.pop("capabilities", None)
        container["securityContext"] = ctx
    return out


def adds_capabilities(manifest: Mapping[str, Any]) -> bool:
    return any(((c.get("securityContext") or {}).get("capabilities") or {}).get("add")
               for c in (manifest.get("spec") or {}).get("containers") or [])


def _base_pod(name: str, node: str, run_id: str, role: str,
              deadline: int = ACTIVE_DEADLINE_SECONDS) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {**run_labels(run_id), ROLE_LABEL: role},
                     "annotations": {NODE_ANNOTATION: node}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 2,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            # the kubelet kills the pod after this, so a probe leaked by a killed run dies
            "activeDeadlineSeconds": int(deadline),
        },
    }


def probe_pod_manifest(name: str, node: str, run_id: str, image: str,
                       deadline: int = ACTIVE_DEADLINE_SECONDS) -> dict[str, Any]:
    """The pod-network probe on ``node``: HTTP on 8080, UDP echo on 8081, ``NET_RAW`` for
    ping."""
    pod = _base_pod(name, node, run_id, "pod", deadline)
    pod["spec"]["containers"] = [{
        "name": CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", http_server_script()],
        "env": [{"name": "K8SNET_POD",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "http", "containerPort": PROBE_PORT, "protocol": "TCP"},
                  {"name": "udp-echo", "containerPort": pmtu_udp.PORT, "protocol": "UDP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": PROBE_PORT},
                           "periodSeconds": 2, "timeoutSeconds": 2},
        "securityContext": security_context(),
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }]
    return pod


def host_probe_manifest(name: str, node: str, run_id: str, image: str,
                        deadline: int = ACTIVE_DEADLINE_SECONDS) -> dict[str, Any]:
    """The host-network probe on ``node``, for node-level checks and host pairs:
    ``hostNetwork`` and ``NET_RAW`` (ping), not privileged."""
    pod = _base_pod(name, node, run_id, "host", deadline)
    pod["spec"].update({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"})
    pod["spec"]["containers"] = [{
        "name": CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", HOST_SCRIPT],
        "securityContext": security_context(),
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }]
    return pod


def service_manifest(name: str, run_id: str, node_port: bool = True) -> dict[str, Any]:
    """The Service over the run's pod-network probes: port 80 -> 8080, and (``node_port``)
    a NodePort the apiserver allocates, with ``externalTrafficPolicy: Local``: a node's
    NodePort leads to that node's own probe pod, so test_nodeport on node-2 tests node-2's
    firewall, not a pod behind the overlay. ClusterIP traffic is not affected by the
    policy. Without ``node_port``: a plain ClusterIP Service (the Service CIDR dry run)."""
    spec: dict[str, Any] = {"type": "NodePort" if node_port else "ClusterIP",
                            "selector": {RUN_LABEL: run_id, ROLE_LABEL: "pod"},
                            "ports": [{"name": "http", "protocol": "TCP", "port": SERVICE_PORT,
                                       "targetPort": PROBE_PORT}]}
    if node_port:
        spec["externalTrafficPolicy"] = "Local"
        # A ClusterIP in each family a dual-stack cluster has (spec.clusterIPs), so the
        # Service is measured in both; a single-stack cluster gives its one family.
        spec["ipFamilyPolicy"] = "PreferDualStack"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": run_labels(run_id)}, "spec": spec}


def readiness_script(http_server: bool) -> str:
    """One shell script, one exec per probe at readiness: which tools are missing, whether
    ping can open its socket, the resolv.conf search list (the cluster domain) and the
    interface MTU. Shell builtins only, so it says something even in a bare image."""
    lines = [f"for t in {' '.join(PROBE_TOOLS)}; do "
             'command -v "$t" >/dev/null 2>&1 || echo "missing:$t"; done']
    if http_server:
        lines.append(" || ".join(f"command -v {t} >/dev/null 2>&1" for t in HTTP_SERVERS)
                     + " || echo missing:http-server")
    lines += [
        # loopback needs no network; a failure here is the image or its capabilities
        "if command -v ping >/dev/null 2>&1; then out=$(ping -n -c 1 -W 1 127.0.0.1 2>&1) "
        '|| echo "ping-error:$(echo $out)"; fi',  # unquoted: one line
        'while read -r k rest; do [ "$k" = search ] && echo "search:$rest"; done '
        "</etc/resolv.conf 2>/dev/null",
        'read -r m </sys/class/net/eth0/mtu 2>/dev/null && echo "mtu:$m"',
        "exit 0",
    ]
    return "\n".join(lines)
