"""The lab's real Kubernetes mode: a real cluster on the lab's network (``up --kubernetes``).

What runs, all real, from one cache directory (``k8snet-lab build`` runs build.sh):
kube-apiserver, kube-controller-manager, kube-scheduler, and per node a kubelet and an
iptables- or nftables-mode kube-proxy (one multi-command binary built from the Go module
proxy); etcd, containerd, runc and the CNI plugins from Debian; CoreDNS as a Deployment behind
``kube-dns``; a locally built probe image and pause image imported into each node.

The plain lab's simulated pods, Service and kube-proxy rules are left out in this mode.
Its modules: :mod:`.binaries` (building its binaries and images), :mod:`.mgmt` (addresses and the
management network), :mod:`.cluster` (starting it), :mod:`.cgroups` (finding and ending
its processes), :mod:`.client` (pointing a client at it); :mod:`.control`, :mod:`.node`,
:mod:`.addons`, :mod:`.pki` and :mod:`.forward` are the parts it is made of, and
:mod:`.flannel` runs the real flanneld instead of the lab's hand-wired pod network
(``--cni flannel``).
"""

from .binaries import Artifacts, artifacts, build, require_tools
from .cgroups import cgroup_pids
from .client import client_env
from .constants import KUBE_VERSION, PROBE_IMAGE

__all__ = ["Artifacts", "KUBE_VERSION", "PROBE_IMAGE", "artifacts", "build", "cgroup_pids",
           "client_env", "require_tools"]
