"""Pure readers of API objects: nodes, pods, events, exec status, error bodies."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3

from .. import NOT_READY, Node
from ...text import shorten
from .manifests import (BAD_CONDITIONS, DETAIL_CHARS, EVENT_PROBLEMS, EXIT_CANNOT_RUN,
                        EXIT_EXEC_FAILED, EXIT_NOT_FOUND, GIVE_UP_REASONS, NODE_ANNOTATION,
                        NOTABLE_TAINTS, WAITING_PROBLEMS)

# -- pure functions: reading API objects ----------------------------------------------------


def one_line(text: Any, limit: int | None = DETAIL_CHARS) -> str:
    """``text`` on one line, shortened to ``limit`` characters at a word boundary (None:
    in full): API messages go into one-line problems and errors."""
    line = " ".join(str(text or "").split())
    return line if limit is None else shorten(line, limit)


def _family(address: str) -> int:
    try:
        return ipaddress.ip_address(address.split("/")[0]).version
    except ValueError:
        return 0


def node_addresses(status: Mapping[str, Any], pod_cidrs: Sequence[str]) -> tuple[str, ...]:
    """The node's addresses to probe, primary first: the first InternalIP of each family
    (else the first ExternalIP), the primary being the family of the first pod CIDR, so a
    dual-stack node is probed in the family its pods use. A later address of a family never
    replaces the first (the kubelet lists the one it was told first)."""
    found: dict[int, str] = {}
    for kind in ("InternalIP", "ExternalIP"):
        for a in status.get("addresses") or []:
            address = str(a.get("address") or "")
            fam = _family(address)
            if a.get("type") == kind and fam and fam not in found:
                found[fam] = address
        if found:
            break
    want = _family(pod_cidrs[0]) if pod_cidrs else 0
    ordered = sorted(found.items(), key=lambda kv: (kv[0] != want,))
    return tuple(address for _, address in ordered)


def node_from_api(obj: Mapping[str, Any]) -> Node:
    """A :class:`Node` from a Node object in its JSON form.

    ``ip``: see :func:`node_addresses` (``ips`` has one per family); ``pod_cidrs``:
    ``spec.podCIDRs`` or ``[spec.podCIDR]``; ``ready``: the Ready condition is True.
    ``problems`` holds only what keeps probes off the node before any is tried (no address
    to probe): a pod pinned by ``nodeName`` runs on a cordoned, tainted or pressured node,
    and a NotReady node's host-network probe often still runs, so those go to ``notes``
    (``node is NotReady: <reason>: <message>`` first), for reports. Whether the probes
    really run is for the probes to tell (the pod's status and events).
    """
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    cidrs = tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    ips = node_addresses(status, cidrs)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready_cond = conditions.get("Ready")
    ready = ready_cond is not None and ready_cond.get("status") == "True"
    problems: list[str] = []
    notes: list[str] = []
    if ready_cond is None:
        notes.append(f"{NOT_READY}: no Ready condition (the kubelet never reported)")
    elif not ready:
        why = ": ".join(x for x in (ready_cond.get("reason"), one_line(ready_cond.get("message")))
                        if x)
        notes.append(f"{NOT_READY}: Ready={ready_cond.get('status')}" + (f": {why}" if why else ""))
    for ctype in BAD_CONDITIONS:
        cond = conditions.get(ctype)
        if cond and cond.get("status") == "True":
            why = ": ".join(x for x in (cond.get("reason"), one_line(cond.get("message"))) if x)
            notes.append(f"{ctype}" + (f": {why}" if why else ""))
    if spec.get("unschedulable"):
        notes.append("cordoned (spec.unschedulable): probe pods are pinned by nodeName and "
                     "still run")
    for taint in spec.get("taints") or []:
        key = taint.get("key", "")
        if key not in NOTABLE_TAINTS:
            continue
        if not ready and key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            continue  # already said by NotReady
        value = f"={taint['value']}" if taint.get("value") else ""
        notes.append(f"taint {key}{value}:{taint.get('effect', '')}")
    if not ips:
        problems.append("no InternalIP or ExternalIP address")
    return Node(name=str(meta.get("name", "")), ip=ips[0] if ips else "", pod_cidrs=cidrs,
                ready=ready, labels=dict(meta.get("labels") or {}), problems=tuple(problems),
                notes=tuple(notes), ips=ips)


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """Running with the Ready condition True."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


def pod_gave_up(pod: Mapping[str, Any]) -> bool:
    """True when waiting longer will not make the pod ready (failed, image missing...)."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Failed", "Succeeded"):
        return True
    for c in _containers(pod):
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in GIVE_UP_REASONS:
            return True
    return False


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def pod_problems(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Why ``pod`` is not ready, one line each: from its status, then from Warning events.

    Lines read ``<kind> probe <pod> on <node>: <reason>: <detail>``; image problems name the
    image. ``events`` are core/v1 Events of the namespace in their JSON form (those about
    other objects are ignored).
    """
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    name = str(meta.get("name", "?"))
    node = spec.get("nodeName") or (meta.get("annotations") or {}).get(NODE_ANNOTATION) or "?"
    kind = "host-network" if spec.get("hostNetwork") else "pod-network"
    head = f"{kind} probe {name} on {node}"
    found: list[str] = []
    if status.get("phase") in ("Failed", "Succeeded"):
        found.append(f"{head}: pod {status.get('phase')}: "
                     + ": ".join(x for x in (status.get("reason"),
                                             one_line(status.get("message"))) if x))
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            found.append(f"{head}: not scheduled: {cond.get('reason', '')}: "
                         f"{one_line(cond.get('message'))}")
    for cs in _containers(pod):
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        reason = waiting.get("reason")
        if reason in WAITING_PROBLEMS:
            # An image's pull error in full: its end (``i/o timeout``, ``not found``) is
            # what tells a registry that cannot be reached from a name that does not exist.
            detail = one_line(waiting.get("message"), None if "Image" in reason else DETAIL_CHARS)
            if "Image" in reason:
                found.append(f"{head}: {reason}: image {cs.get('image', '?')}"
                             + (f": {detail}" if detail else ""))
            else:
                if last:
                    detail = (f"last exit code {last.get('exitCode')}"
                              + (f" ({last['reason']})" if last.get("reason") else "")
                              + (f": {one_line(last.get('message'))}" if last.get("message")
                                 else "") + (f"; {detail}" if detail else ""))
                found.append(f"{head}: {reason}" + (f": {detail}" if detail else ""))
        elif terminated:
            found.append(f"{head}: container exited with code {terminated.get('exitCode')}"
                         + (f" ({terminated['reason']})" if terminated.get("reason") else "")
                         + (f": {one_line(terminated.get('message'))}"
                            if terminated.get("message") else ""))
    latest: dict[str, Mapping[str, Any]] = {}
    for ev in sorted(events, key=_event_time):
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if obj.get("kind") != "Pod" or obj.get("name") != name or ev.get("type") != "Warning":
            continue
        if ev.get("reason") in EVENT_PROBLEMS:
            latest[str(ev["reason"])] = ev
    for reason, ev in latest.items():
        if found and reason in ("Failed", "BackOff"):
            continue  # the container status already says it, with the image
        count = int(ev.get("count") or (ev.get("series") or {}).get("count") or 1)
        found.append(f"{head}: {reason}: {one_line(ev.get('message') or ev.get('note'))}"
                     + (f" (x{count})" if count > 1 else ""))
    return list(dict.fromkeys(found))


def pod_summary(pod: Mapping[str, Any]) -> str:
    """Phase and container state in a few words, e.g. ``Pending, no container status yet``."""
    status = pod.get("status") or {}
    parts = [str(status.get("phase") or "Pending")]
    states = []
    for cs in _containers(pod):
        state = cs.get("state") or {}
        if "waiting" in state:
            states.append(str((state["waiting"] or {}).get("reason") or "waiting"))
        elif "running" in state:
            states.append("running, not ready" if not cs.get("ready") else "running")
        elif "terminated" in state:
            states.append("terminated")
    parts.append(", ".join(states) if states else "no container status yet")
    return ", ".join(parts)


def exit_code_from_status(text: str) -> int:
    """The command's exit code from the exec status channel (channel 3).

    ``{"status":"Success"}`` is 0; a ``details.causes`` entry with ``reason: ExitCode`` holds
    the code. A Failure without one: 127 when the executable is missing, 126 when the
    runtime could not start it, else 125 (the exec never reached the container, e.g. the
    API server could not reach the kubelet); no or unreadable status is 125 too.
    """
    try:
        status = json.loads(text) if text and text.strip() else None
    except ValueError:
        return EXIT_EXEC_FAILED
    if not isinstance(status, dict):
        return EXIT_EXEC_FAILED
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return EXIT_EXEC_FAILED
    message = str(status.get("message") or "").lower()
    if status.get("status") != "Failure":
        return EXIT_EXEC_FAILED
    if "executable file not found" in message or "no such file or directory" in message:
        return EXIT_NOT_FOUND
    if any(m in message for m in ("permission denied", "oci runtime", "exec failed",
                                  "failed to exec", "error executing command")):
        return EXIT_CANNOT_RUN
    return EXIT_EXEC_FAILED  # e.g. the API server could not reach the kubelet


# The API server quotes the kubelet URL it could not reach, with the whole command in its
# query (one overlong word): dropped, so that a shortened message still ends in the dial error.
_QUOTED_URL = re.compile(r'\b(?:Get|Post|GET|POST) "[^"]*":\s*')


def without_kubelet_url(message: str) -> str:
    """An exec error without the quoted kubelet URL (``Post "https://...": dial tcp ...``)."""
    return _QUOTED_URL.sub("", message)


def status_message(text: str) -> str:
    """The message of a Failure status (empty for success or a plain non-zero exit)."""
    try:
        status = json.loads(text) if text and text.strip() else {}
    except ValueError:
        return one_line(text)
    if not isinstance(status, dict) or status.get("status") == "Success":
        return ""
    causes = (status.get("details") or {}).get("causes") or []
    if any(c.get("reason") == "ExitCode" for c in causes):
        return ""
    return one_line(without_kubelet_url(str(status.get("message") or "")))


_SERVICE_RANGE = re.compile(r"range of valid IPs is ([0-9a-fA-F.:/]+(?:,\s*[0-9a-fA-F.:/]+)*)")


def service_cidr_from_message(message: str) -> str | None:
    """The Service CIDR(s) named by the apiserver when a Service asks for an IP outside it."""
    match = _SERVICE_RANGE.search(message or "")
    if not match:
        return None
    cidrs = [c.strip() for c in match.group(1).split(",") if c.strip()]
    try:
        return ",".join(str(ipaddress.ip_network(c, strict=False)) for c in cidrs) or None
    except ValueError:
        return None


def api_error_message(status: int | None, body: str | None, reason: str | None,
                      what: str, server: str) -> str:
    """One line for a failed API request (``what``: e.g. ``list nodes``)."""
    message = ""
    try:
        data = json.loads(body) if body else {}
        if isinstance(data, dict):
            message = one_line(data.get("message"))
    except ValueError:
        message = one_line(body)
    if status == 401:
        return (f"the Kubernetes API at {server} rejected the credentials (401 Unauthorized) "
                f"while trying to {what}")
    if status == 403:
        return (f"forbidden to {what}: {message or reason} "
                "(the RBAC rules pytest-k8snet needs are in examples/rbac.yaml)")
    return f"cannot {what}: {status} {reason or ''}".rstrip() + (f": {message}" if message else "")


def connection_error_reason(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed connection to the API server."""
    inner: BaseException | None = exc
    while isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
        inner = inner.reason
    text = str(inner or exc)
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low \
            or "failed to resolve" in low or "name resolution" in low:
        return "host name not found"
    if "unreachable" in low:
        return "network unreachable"
    # (urllib3's NewConnectionError is a ConnectTimeoutError too: test the text first)
    if isinstance(inner, (urllib3.exceptions.TimeoutError, TimeoutError)) \
            or "timed out" in low or "timeout" in low:
        return f"no answer within {timeout:g}s"
    if "certificate" in low or "ssl" in low:
        return "TLS error: " + one_line(text.split("\n")[-1], 200)
    text = re.sub(r"^.*?: (?=\[Errno)", "", text)
    return one_line(text, 200)



# -- readiness exec, cluster DNS, admission, progress ------------------------------------------


@dataclass(frozen=True)
class ProbeCheck:
    """What the readiness script (:func:`~.manifests.readiness_script`) found in a probe."""

    missing: tuple[str, ...] = ()
    ping_error: str = ""
    search: tuple[str, ...] = ()
    mtu: int | None = None
    proxy_sync: str = ""  # host probe: "synced", "pending", "" (no kube-proxy metrics)


def parse_probe_check(stdout: str) -> ProbeCheck:
    missing: list[str] = []
    ping_error, mtu, proxy_sync = "", None, ""
    search: tuple[str, ...] = ()
    for line in stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "missing" and value:
            missing.append(value.strip())
        elif key == "ping-error":
            ping_error = one_line(value, 200)
        elif key == "search":
            search = tuple(value.split())
        elif key == "mtu" and value.strip().isdigit():
            mtu = int(value.strip())
        elif key == "proxy-sync":
            proxy_sync = value.strip()
    return ProbeCheck(tuple(dict.fromkeys(missing)), ping_error, search, mtu, proxy_sync)


def cluster_domain_from_search(search: Sequence[str]) -> str | None:
    """The cluster domain from a pod's resolv.conf search list: the kubelet writes
    ``<ns>.svc.<domain> svc.<domain> <domain>``; the entry after ``svc.`` is the domain."""
    for entry in search:
        if entry.startswith("svc.") and len(entry) > 4:
            return entry[4:].rstrip(".")
    return None


def dns_endpoints_from_slices(slices: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(IP, node) of every ready endpoint in EndpointSlices (discovery.k8s.io/v1, JSON form),
    in order, without repeats (a dual-stack Service has a slice per family)."""
    out: dict[tuple[str, str], None] = {}
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for address in ep.get("addresses") or []:
                out[(str(address), str(ep.get("nodeName") or ""))] = None
    return list(out)


# Admission denials of a pod: Pod Security, validating webhooks (Kyverno, Gatekeeper), CEL
# policies, OpenShift SCC. RBAC's own 403s ("cannot create resource") are not among them.
_DENIAL_MARKERS = ("violates podsecurity", "admission webhook", "denied the request",
                   "validatingadmissionpolicy", "unable to validate against any security "
                   "context constraint", "forbidden: violates")


def admission_denial(status: int | None, body: str | None) -> str | None:
    """The message of an admission denial of a pod create (403/400/422), else None."""
    if status not in (400, 403, 422) or not body:
        return None
    try:
        data = json.loads(body)
        message = str(data.get("message") or "") if isinstance(data, dict) else str(body)
    except ValueError:
        message = str(body)
    low = message.lower()
    if "cannot create resource" in low or not any(m in low for m in _DENIAL_MARKERS):
        return None
    # 'pods "k8snet-...-host-node-1" is forbidden: ' says nothing the caller does not know,
    # and reports cut long lines: the policy's own words come first
    return one_line(re.sub(r'^pods? "[^"]*" is forbidden: ', "", message), 400)


def progress_line(pods: Mapping[str, Mapping[str, Any]], expected: int,
                  events: Iterable[Mapping[str, Any]] = ()) -> str:
    """``waiting for probes: 4/6 running, 2 pulling image`` from the run's pods.

    A pod counts as pulling while its latest ``Pulling`` event has no ``Pulled`` after it;
    other pods are counted by their container's waiting reason or their phase.
    """
    pulling: set[str] = set()
    for ev in sorted(events, key=_event_time):
        name = str((ev.get("involvedObject") or ev.get("regarding") or {}).get("name") or "")
        if ev.get("reason") == "Pulling":
            pulling.add(name)
        elif ev.get("reason") in ("Pulled", "Failed", "BackOff"):
            pulling.discard(name)
    ready = 0
    states: dict[str, int] = {}
    for name, pod in pods.items():
        if pod_is_ready(pod):
            ready += 1
            continue
        if name in pulling:
            what = "pulling image"
        else:
            reasons = [((c.get("state") or {}).get("waiting") or {}).get("reason")
                       for c in _containers(pod)]
            reason = next((r for r in reasons if r), None)
            phase = str((pod.get("status") or {}).get("phase") or "Pending")
            if reason:
                what = str(reason)
            elif phase == "Running":
                what = "starting"
            else:
                what = "scheduling" if not (pod.get("spec") or {}).get("nodeName") else phase
        states[what] = states.get(what, 0) + 1
    missing = expected - len(pods)
    if missing > 0:
        states["not created yet"] = missing
    rest = "".join(f", {n} {what}" for what, n in sorted(states.items(), key=lambda kv: -kv[1]))
    return f"waiting for probes: {ready}/{expected} running{rest}"


def api_endpoints_from_slices(slices: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(address, port) of every ready endpoint of the ``kubernetes`` Service's slices."""
    out: list[tuple[str, int]] = []
    for sl in slices:
        port = next((int(p.get("port") or 0) for p in sl.get("ports") or []
                     if p.get("name") in ("https", None) and p.get("port")), 6443)
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            out += [(str(a), port) for a in ep.get("addresses") or [] if (str(a), port) not in out]
    return out


def pod_subnets_from_kubeadm(cluster_configuration: str) -> list[str]:
    """``networking.podSubnet`` of kubeadm's ClusterConfiguration (YAML; comma-separated for
    dual-stack), as valid CIDRs."""
    import ipaddress

    import yaml

    try:
        doc = yaml.safe_load(cluster_configuration) or {}
    except yaml.YAMLError:
        return []
    raw = str(((doc.get("networking") or {}) if isinstance(doc, dict) else {}).get("podSubnet") or "")
    out = []
    for part in raw.split(","):
        try:
            out.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            continue
    return out
