"""What ``k8snet-lab status NAME`` says about a lab, as JSON and as lines for people.

A plain lab is all simulated: nodes with a probe and an echo pod each, a Service in front
of them, a DNS server and a world host. A lab built with ``--kubernetes`` has none of the
simulated pods or the Service (the record still plans them, see :func:`.plan.plan`): there
the status names the real cluster's parts instead, with the kubeconfig that reaches them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import processes
from .family import of_lab
from .plan import cni_of, overlay_of, proxy_mode_of
from .state import PREFIX, Lab

# In a plain lab's record only: the simulated pods on every node, and the Service.
SIMULATED_NODE_KEYS = ("probe", "echo")


def status_json(lab: Lab) -> dict[str, Any]:
    """``status --json`` (and ``up --json``): the record, less what this lab does not have."""
    data = asdict(lab)
    data["prefix"] = f"{PREFIX}{lab.name}-"
    data["overlay"] = overlay_of(lab)
    data["ip_family"] = of_lab(lab.spec)
    if not lab.kubernetes:
        return data
    data["cni"] = cni_of(lab)
    data["flannel_backend"] = overlay_of(lab) if cni_of(lab) == "flannel" else None
    data["proxy_mode"] = proxy_mode_of(lab)
    data["kubeconfig"] = lab.kubernetes["kubeconfig"]
    del data["service"]
    for node in data["nodes"]:
        for key in SIMULATED_NODE_KEYS:
            node.pop(key, None)
    # The DNS server stays as the nodes' upstream resolver (CoreDNS forwards to it), but the
    # names it has for the simulated Service and pods lead nowhere here, and only the
    # simulated pods used its search list.
    simulated = {lab.service["fqdn"]}
    simulated.update(name for name in lab.dns["names"]
                     if name.endswith(f".{lab.service['fqdn']}"))
    data["dns"] = {"netns": lab.dns["netns"], "ip": lab.dns["ip"],
                   "names": {n: ip for n, ip in lab.dns["names"].items() if n not in simulated}}
    return data


def status_lines(lab: Lab) -> list[str]:
    """``status NAME``: one line for the lab, one per node, then its other parts and faults."""
    spec = lab.spec
    networks = (f"node network {spec['node_cidr']}, Pod CIDR {spec['pod_cidr']}, "
                f"overlay {overlay_of(lab)}, "
                f"underlay MTU {spec['underlay_mtu']}, overlay MTU {spec['overlay_mtu']}")
    if lab.kubernetes:
        lines = _kubernetes_lines(lab, networks)
    else:
        lines = [f"lab {lab.name}: {len(lab.nodes)} nodes, {networks}"]
        lines += [f"  {node['name']:8} {node['ip']:15} pods {node['pod_cidr']:18} "
                  f"probe {node['probe']['ip']}  ({node['netns']})" for node in lab.nodes]
        lines.append(f"  service {lab.service['fqdn']} {lab.service['ip']}:"
                     f"{lab.service['port']}{_node_port(lab)}  dns {lab.dns['ip']}  "
                     f"world {lab.world['name']} {lab.world['ip']}")
    active = ", ".join(f"{f['name']}{':' + f['node'] if f['node'] else ''}"
                       f"{'=' + f['value'] if f['value'] else ''}" for f in lab.faults)
    lines.append(f"  faults: {active or 'none'}")
    return lines


def _kubernetes_lines(lab: Lab, networks: str) -> list[str]:
    k = lab.kubernetes
    state = lab.state_dir
    cni = ("flanneld " + overlay_of(lab) if cni_of(lab) == "flannel"
           else "hand-wired (--cni lab)")
    lines = [f"lab {lab.name}: real Kubernetes {k['version']}, {len(lab.nodes)} nodes, "
             f"pod network {cni}, {networks}",
             f"  kubeconfig {k['kubeconfig']}  (API server https://127.0.0.1:{k['api_port']} "
             f"from this machine{_exited(lab, 'forward', state / 'forward.log')})",
             f"  control plane {k['cp_ip']}: etcd, kube-apiserver, kube-controller-manager, "
             f"kube-scheduler  ({k['cp_netns']})"
             + _exited(lab, "control-plane", state / "cp" / "run.log")]
    daemons = (f"containerd, kubelet, kube-proxy ({proxy_mode_of(lab)})"
               + (", flanneld" if cni_of(lab) == "flannel" else ""))
    for node in lab.nodes:
        lines.append(f"  {node['name']:8} {node['ip']:15} pods {node['pod_cidr']:18} "
                     f"{daemons}  ({node['netns']})"
                     + _exited(lab, node["name"], state / node["name"] / "run.log"))
    lines.append(f"  cluster DNS CoreDNS {k['cluster_dns']} (kube-dns), Services "
                 f"{k['service_cidr']}  upstream dns {lab.dns['ip']}  "
                 f"world {lab.world['name']} {lab.world['ip']}")
    return lines


def _exited(lab: Lab, part: str, log: Path) -> str:
    """A warning when the supervisor of ``part`` no longer runs: the record says it was
    started, which is not the same as running now."""
    pid = lab.pids.get(part)
    if pid is None or processes.alive(pid):
        return ""
    return f"  EXITED, see {log}"


def _node_port(lab: Lab) -> str:
    port = lab.service.get("node_port")
    return f" nodePort {port}" if port else ""
