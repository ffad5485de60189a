"""flanneld as the real cluster's CNI daemon (``up --kubernetes --cni flannel``).

Each node runs the real flanneld (built by build.sh, kube subnet manager) as a host process
of the node, started by the node's supervisor script: it shares the node's network
namespace, private mount namespace and cgroup, so ``down`` ends it with the node. flanneld
makes flannel.1 (vxlan), the routes via the peers (host-gw) or flannel-wg (wireguard), and
its own masquerade rules; the CNI ``bridge`` plugin makes cni0 from the conflist written here
from flanneld's subnet.env, as flannel's CNI plugin would delegate (that plugin is not on the
module proxy).

This kernel has no WireGuard: with the wireguard backend flanneld (patched by build.sh with
flannel-wireguard-go.patch) runs wireguard-go as its child when the kernel refuses the
device; wireguard-go makes flannel-wg as a TUN device and flanneld configures it through its
UAPI socket exactly as it would the kernel's.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..family import POD_CIDR6, VXLAN6_OVERHEAD
from ..netns import LabError
from ..plan import VXLAN_OVERHEAD

USER = "flannel"  # the client certificate's CN, bound to the ClusterRole below
CONFLIST = "10-flannel.conflist"
# flannel's wireguard backend's default ListenPort (what the overlay needs open).
WIREGUARD_PORT = 51820
# wireguard-go's UAPI sockets: every node's device is flannel-wg, so each node's mount
# namespace gets a tmpfs of its own here (the sockets would collide on the host's /run).
WIREGUARD_RUN = Path("/run/wireguard")


def rbac() -> str:
    """kube-flannel.yml's rules, bound to the lab's flannel user instead of a ServiceAccount."""
    return f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: flannel}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get]
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [nodes/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: flannel}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flannel}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {USER}}}]
"""


def net_conf(pod_cidr: str, backend: str, ipv6: bool = False,
             underlay_mtu: int = 1500) -> dict[str, Any]:
    """kube-flannel.yml's net-conf.json; ``ipv6``: dual-stack, each node's /64 of
    ``IPv6Network`` (from its spec.podCIDRs) on a second device (flannel-v6.1 with vxlan).

    Dual-stack vxlan also sets the backend's ``MTU`` (flannel's documented option, the
    interface MTU it subtracts VXLAN's 50 from) to the underlay's less 20: flanneld
    v0.28 otherwise gives pods underlay-50 (1450) while the kernel caps flannel-v6.1 at
    underlay-70 (1430), and every IPv6 pair's path MTU falls short of the pods' (the suite
    finds it). With it both devices and the pods get underlay-70, one MTU for both
    families, as the plain dual lab has."""
    conf: dict[str, Any] = {"Network": pod_cidr, "EnableIPv4": True, "Backend": {"Type": backend}}
    if ipv6:
        conf.update(EnableIPv6=True, IPv6Network=str(POD_CIDR6))
        if backend == "vxlan":
            conf["Backend"]["MTU"] = underlay_mtu - (VXLAN6_OVERHEAD - VXLAN_OVERHEAD)
    return conf


def write_net_conf(d: Path, pod_cidr: str, backend: str, ipv6: bool = False,
                   underlay_mtu: int = 1500) -> None:
    (d / "flannel").mkdir(parents=True, exist_ok=True)
    (d / "flannel" / "net-conf.json").write_text(
        json.dumps(net_conf(pod_cidr, backend, ipv6, underlay_mtu)))
    # containerd watches the directory: it must exist before the conflist does.
    (d / "cni").mkdir(parents=True, exist_ok=True)


def supervisor_sh(d: Path, node_name: str, flanneld: Path, backend: str = "vxlan",
                  wireguard_go: Path | None = None) -> str:
    """The lines of the node's run.sh that run flanneld and write the conflist.

    flanneld exits while the node has no podCIDR (the lab patches it once the kubelet has
    registered); a DaemonSet's kubelet would restart it, here a loop does. The loop pauses
    while ``flannel/stopped`` exists (the route-missing fault: flanneld down on a node).
    With the wireguard backend flanneld starts ``wireguard_go`` itself (its child: the
    node's cgroup, ended with it) and the node's WireGuard key lives in its state dir.
    """
    f = d / "flannel"
    env = f"NODE_NAME={node_name}"
    mount = ""
    if backend == "wireguard":
        if wireguard_go is None or not wireguard_go.exists():
            raise LabError(f"--flannel-backend wireguard needs wireguard-go ({wireguard_go}): "
                           "run `k8snet-lab build`")
        env += f" WIREGUARD_KEY_FILE={f}/wgkey FLANNEL_WG_USERSPACE={wireguard_go}"
        # run.sh's mount namespace is private: the tmpfs goes with the node.
        mount = (f"mkdir -p {WIREGUARD_RUN}\n"
                 f"mount -t tmpfs -o mode=0700 k8snet-{d.parent.name} {WIREGUARD_RUN}\n")
    return f"""{mount}(
  while :; do
    if [ ! -e {f}/stopped ]; then
      {env} {flanneld} --kube-subnet-mgr --kubeconfig-file={d}/flannel.kubeconfig \\
        --iface=eth0 --subnet-file={f}/subnet.env --net-config-path={f}/net-conf.json \\
        --ip-masq --v=1 >>{d}/flanneld.log 2>&1 &
      echo $! >{f}/flanneld.pid
      wait $! || true
    fi
    sleep 1
  done
) &
(
  until [ -s {f}/subnet.env ]; do sleep 0.2; done
  {sys.executable} -m pytest_k8snet.lab.kube.flannel {d} >>{d}/flanneld.log 2>&1
) &
"""


def conflist(subnet_env: str, ipam_dir: Path, port_range: str | None = None) -> dict[str, Any]:
    """What flannel's CNI plugin delegates to ``bridge``, from flanneld's subnet.env.

    ``port_range``: a ``tuning`` plugin sets the pods' ``ip_local_port_range`` (the
    egress-port-range fault), as in the lab's own conflist.
    """
    env = dict(line.split("=", 1) for line in subnet_env.splitlines() if "=" in line)
    # FLANNEL_SUBNET is the gateway with its prefix (10.244.0.1/24): host-local wants the
    # network, and refuses every sandbox (adds and deletes) given host bits.
    ranges = [[{"subnet": str(ipaddress.ip_interface(env["FLANNEL_SUBNET"]).network)}]]
    routes = [{"dst": env["FLANNEL_NETWORK"]}]
    if env.get("FLANNEL_IPV6_SUBNET"):  # dual-stack: flannel's CNI plugin adds the second range
        ranges.append([{"subnet": str(ipaddress.ip_interface(env["FLANNEL_IPV6_SUBNET"]).network)}])
        routes.append({"dst": env["FLANNEL_IPV6_NETWORK"]})
    plugins: list[dict[str, Any]] = [
        # isGateway: true is flannel's delegate default; it also sets ip_forward=1 on every
        # new pod (why the ip-forward-off fault is refused on flannel labs).
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True,
         # flanneld --ip-masq masquerades itself; the plugin's would double it.
         "ipMasq": env.get("FLANNEL_IPMASQ") != "true", "hairpinMode": True,
         "mtu": int(env["FLANNEL_MTU"]),
         "ipam": {"type": "host-local", "dataDir": str(ipam_dir),
                  "ranges": ranges, "routes": routes}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]
    if port_range:
        plugins.append({"type": "tuning",
                        "sysctl": {"net.ipv4.ip_local_port_range": port_range}})
    return {"cniVersion": "1.0.0", "name": "cbr0", "plugins": plugins}


def write_conflist(d: Path, port_range: str | None = None, broken: bool = False) -> None:
    """(Re)write node dir ``d``'s conflist; containerd uses it for new sandboxes.
    ``broken``: a plugin that does not exist, so every new sandbox fails (incident 1)."""
    env = d / "flannel" / "subnet.env"
    if not env.exists():
        raise LabError(f"flanneld has not written {env} yet: the node has no Pod subnet")
    data = conflist(env.read_text(), d / "ipam", port_range)
    if broken:
        data["plugins"][0]["type"] = "k8snet-missing-plugin"
    tmp = d / "cni" / f"{CONFLIST}.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(d / "cni" / CONFLIST)


def stop(d: Path, timeout: float = 10.0) -> None:
    """Stop node dir ``d``'s flanneld and keep it stopped (its loop waits) until :func:`resume`."""
    (d / "flannel" / "stopped").touch()
    pid = int((d / "flannel" / "flanneld.pid").read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise LabError(f"flanneld (pid {pid}) did not exit within {timeout:.0f} s")
        time.sleep(0.1)


def resume(d: Path) -> None:
    """Let the loop start flanneld again (within a second); it re-programs what it owns."""
    (d / "flannel" / "stopped").unlink(missing_ok=True)


def restart(d: Path, netns_name: str, peer_cidrs: list[str], timeout: float = 30.0) -> None:
    """Restart node dir ``d``'s flanneld and wait until it has routed every peer's pod
    CIDR again in the node's namespace ``netns_name`` (a restart re-programs its device,
    routes, neighbours and FDB)."""
    stop(d)
    resume(d)
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["ip", "-n", netns_name, "-o", "route", "show"],
                             capture_output=True, text=True, check=False).stdout
        routed = {line.split()[0] for line in out.splitlines() if line.strip()}
        if set(peer_cidrs) <= routed:
            return
        if time.monotonic() > deadline:
            raise LabError(f"flanneld on {d.name} did not route {', '.join(peer_cidrs)} "
                           f"within {timeout:.0f} s of its restart (see {d}/flanneld.log)")
        time.sleep(0.2)


if __name__ == "__main__":  # run.sh, once flanneld has written subnet.env
    write_conflist(Path(sys.argv[1]))
