"""The control plane in its own namespace on the management network.

etcd on the namespace's loopback; kube-apiserver on 6443, reaching kubelets by hostname over
the management network (resolved through the control plane's own /etc/hosts), so a fault on
a node's underlay never cuts exec or the node's heartbeat; kube-controller-manager and
kube-scheduler with their own client certificates.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from .cgroups import cgroup_name, join_cgroup_sh


def hosts_file(lab_nodes: list[dict[str, Any]], mgmt: dict[str, Any]) -> str:
    lines = ["127.0.0.1 localhost"]
    lines += [f"{mgmt['nodes'][n['name']]} {n['name']}" for n in lab_nodes]
    return "\n".join(lines) + "\n"


def supervisor_script(d: Path, lab_name: str, kube_bin: Path, advertise: str,
                      cluster_cidr: str, service_cidr: str) -> str:
    """Start etcd, then the API server, then the controller manager and scheduler.

    ``cluster_cidr``, ``service_cidr``: one CIDR, or IPv4,IPv6 for a dual-stack cluster."""
    cg = cgroup_name(lab_name, "cp")
    k = shlex.quote(str(kube_bin))
    p = d / "pki"
    return f"""set -eu
{join_cgroup_sh(cg)}
mount --make-rprivate /
mount --bind {d}/hosts /etc/hosts
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
etcd --name k8snet --data-dir {d}/etcd \\
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \\
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \\
  --initial-cluster k8snet=http://127.0.0.1:2380 --logger zap --log-outputs stderr \\
  --log-level warn --quota-backend-bytes 1073741824 >{d}/etcd.log 2>&1 &
{k} kube-apiserver --etcd-servers http://127.0.0.1:2379 \\
  --bind-address 0.0.0.0 --secure-port 6443 --advertise-address {advertise} \\
  --tls-cert-file {p}/apiserver.crt --tls-private-key-file {p}/apiserver.key \\
  --client-ca-file {p}/ca.crt \\
  --service-account-key-file {p}/sa.pub --service-account-signing-key-file {p}/sa.key \\
  --service-account-issuer https://kubernetes.default.svc.cluster.local \\
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \\
  --service-cluster-ip-range {service_cidr} --allow-privileged=true \\
  --kubelet-client-certificate {p}/apiserver-kubelet.crt \\
  --kubelet-client-key {p}/apiserver-kubelet.key \\
  --kubelet-preferred-address-types Hostname,InternalIP \\
  --profiling=false --v 1 >{d}/kube-apiserver.log 2>&1 &
i=0
until curl -sf --max-time 2 --cacert {p}/ca.crt --cert {p}/admin.crt --key {p}/admin.key \\
    https://127.0.0.1:6443/readyz >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 600 ] || {{ echo 'kube-apiserver did not become ready' >&2; exit 1; }}
  sleep 0.1
done
{k} kube-controller-manager --kubeconfig {d}/controller-manager.kubeconfig \\
  --authentication-kubeconfig {d}/controller-manager.kubeconfig \\
  --authorization-kubeconfig {d}/controller-manager.kubeconfig \\
  --secure-port 0 --leader-elect=false --use-service-account-credentials=true \\
  --service-account-private-key-file {p}/sa.key --root-ca-file {p}/ca.crt \\
  --cluster-cidr {cluster_cidr} --service-cluster-ip-range {service_cidr} \\
  --allocate-node-cidrs=false \\
  --node-monitor-grace-period 20s --v 1 >{d}/kube-controller-manager.log 2>&1 &
{k} kube-scheduler --kubeconfig {d}/scheduler.kubeconfig \\
  --authentication-kubeconfig {d}/scheduler.kubeconfig \\
  --authorization-kubeconfig {d}/scheduler.kubeconfig \\
  --secure-port 0 --leader-elect=false --v 1 >{d}/kube-scheduler.log 2>&1 &
echo started >{d}/started
wait
"""
