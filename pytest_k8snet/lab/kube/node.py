"""One Kubernetes node inside a lab node's network namespace: containerd, kubelet, kube-proxy.

Each node gets its own containerd root, state and socket, kubelet root, cgroup root and CNI
configuration, and runs in a mount namespace of its own where /run/netns, /run/containerd
and /var/log/pods are private and the host-wide sysctls the kubelet insists on are files.
Two nodes then never collide, and nothing shows up on the host or outlives the node.

The node's supervisor is a shell script started with ``nsenter --net`` (not ``ip netns exec``,
which remounts /sys and hides the cgroup mounts the kubelet needs). It moves itself into
the node's cgroup first, so every process of the node, containers included, is findable there.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from .cgroups import cgroup_name, join_cgroup_sh
from .constants import CLUSTER_DNS, CLUSTER_DOMAIN, PAUSE_IMAGE

# What the kubelet would otherwise write into the host's /proc/sys.
KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}


def cni_conflist(node: dict[str, Any], overlay_mtu: int, ipam_dir: Path,
                 port_range: str | None = None) -> dict[str, Any]:
    """The bridge plugin on the lab's cni0; the lab's static VXLAN routes carry the rest.

    ``port_range``: a ``tuning`` plugin sets the pods' ``ip_local_port_range`` (the
    egress-port-range fault: pods that pick low source ports).
    """
    plugins: list[dict[str, Any]] = [
        # isGateway false: the lab already gave cni0 the gateway address, and with it true the
        # plugin sets ip_forward=1 on every new pod, silently undoing a reset like
        # incident 5's (flannel's default config does exactly that on real clusters).
        {"type": "bridge", "bridge": "cni0", "isGateway": False, "ipMasq": False,
         "hairpinMode": True, "mtu": overlay_mtu,
         "ipam": {"type": "host-local", "dataDir": str(ipam_dir),
                  "ranges": [[{"subnet": node["pod_cidr"],
                               "rangeStart": _host(node["pod_cidr"], 10),
                               "gateway": node["pod_gateway"]}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]
    if port_range:
        plugins.append({"type": "tuning",
                        "sysctl": {"net.ipv4.ip_local_port_range": port_range}})
    return {"cniVersion": "1.0.0", "name": "k8snet", "plugins": plugins}


def _host(cidr: str, n: int) -> str:
    import ipaddress

    return str(ipaddress.ip_network(cidr).network_address + n)


def write_cni(d: Path, node: dict[str, Any], overlay_mtu: int, port_range: str | None = None,
              broken: bool = False) -> None:
    """(Re)write the node's CNI config; containerd picks changes up for new sandboxes."""
    conf = d / "cni"
    conf.mkdir(parents=True, exist_ok=True)
    data = cni_conflist(node, overlay_mtu, d / "ipam", port_range)
    if broken:  # a plugin that does not exist: every new sandbox fails, as in incident 1
        data["plugins"][0]["type"] = "k8snet-missing-plugin"
    tmp = conf / "10-k8snet.conflist.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(conf / "10-k8snet.conflist")


def containerd_toml(d: Path) -> str:
    return f"""version = 2
root = "{d}/containerd/root"
state = "/run/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # This machine's bounding set lacks CAP_SYS_RESOURCE: no oom_score_adj below our own.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
"""


def kubelet_yaml(d: Path, lab_name: str, node: dict[str, Any], ca: Path, resolv: Path) -> str:
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: AlwaysAllow}}
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_name(lab_name, node['name'])}
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
clusterDNS: [{CLUSTER_DNS}]
clusterDomain: {CLUSTER_DOMAIN}
resolvConf: {resolv}
containerRuntimeEndpoint: unix://{d}/containerd.sock
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
protectKernelDefaults: false
makeIPTablesUtilChains: true
nodeStatusUpdateFrequency: 4s
nodeStatusReportFrequency: 20s
syncFrequency: 10s
fileCheckFrequency: 20s
evictionHard: {{memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%",
  nodefs.inodesFree: "1%"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
podPidsLimit: -1
maxPods: 60
"""


def node_ips(node: dict[str, Any]) -> str:
    """The kubelet's ``--node-ip``: the underlay's IPv4, and with IPv6 (a dual-stack lab)
    its IPv6 too, so the node's InternalIPs (and host-network pods) have both families."""
    return str(node["ip"]) + (f",{node['ip6']}" if "ip6" in node else "")


def kube_proxy_yaml(d: Path, node: dict[str, Any], cluster_cidr: str,
                    mode: str = "iptables") -> str:
    """``mode``: iptables or nftables (each reads its own sync section); ``cluster_cidr``:
    the Pod CIDR, or IPv4,IPv6 for a dual-stack cluster."""
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {d}/kube-proxy.kubeconfig}}
mode: {mode}
clusterCIDR: {cluster_cidr}
hostnameOverride: {node['name']}
bindAddress: 0.0.0.0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# 0: leave the host-wide conntrack settings alone.
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
iptables: {{syncPeriod: 10s, minSyncPeriod: 0s}}
nftables: {{syncPeriod: 10s, minSyncPeriod: 0s}}
"""


def supervisor_script(d: Path, lab_name: str, node: dict[str, Any], kube_bin: Path,
                      images: list[tuple[Path, str]], cni_daemon: str = "") -> str:
    """The script that runs the node; ``down`` finds all it started by cgroup and path.

    ``cni_daemon``: shell lines that start the node's CNI daemon (flannel.supervisor_sh)."""
    cg = cgroup_name(lab_name, node["name"])
    q = shlex.quote
    sysctl_binds = "\n".join(
        f"printf '%s\\n' {q(v)} >{d}/sysctl-{k.replace('/', '-')}; "
        f"mount --bind {d}/sysctl-{k.replace('/', '-')} /proc/sys/{k}"
        for k, v in KUBELET_SYSCTLS.items())
    imports = "\n".join(
        f"ctr --address {d}/containerd.sock -n k8s.io images import "
        f"--base-name {q(base)} {q(str(tar))} >>{d}/import.log 2>&1 "
        f"|| {{ echo 'image import failed: {tar}' >&2; exit 1; }}"
        for tar, base in images)
    return f"""set -eu
{join_cgroup_sh(cg)}
mount --make-rprivate /
mount -t tmpfs -o mode=0755 k8snet-{lab_name} /run/netns
mount -t tmpfs -o mode=0755 k8snet-{lab_name} /run/containerd
mkdir -p {d}/log/pods {d}/log/containers
mount --bind {d}/log /var/log
{sysctl_binds}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
containerd --config {d}/containerd.toml >{d}/containerd.log 2>&1 &
i=0
until ctr --address {d}/containerd.sock version >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 300 ] || {{ echo 'containerd did not start' >&2; exit 1; }}; sleep 0.1
done
{imports}
{q(str(kube_bin))} kubelet --config {d}/kubelet.yaml --kubeconfig {d}/kubelet.kubeconfig \\
  --root-dir {d}/kubelet --hostname-override {node['name']} --node-ip {node_ips(node)} \\
  --v 1 >{d}/kubelet.log 2>&1 &
{q(str(kube_bin))} kube-proxy --config {d}/kube-proxy.yaml --v 1 >{d}/kube-proxy.log 2>&1 &
{cni_daemon}echo started >{d}/started
wait
"""

