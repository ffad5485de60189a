#!/usr/bin/env bash
# Install and build what the lab's real Kubernetes mode runs (root, Debian/Ubuntu):
# etcd, containerd, runc, the CNI plugins, umoci and debootstrap from apt; Kubernetes, CoreDNS,
# flanneld and the probe and pause images built into $K8SNET_CACHE (default /var/cache/k8snet).
# Cold: ~11 min on 2 cores (Go builds and a debootstrap); warm: a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=""
for t in etcd:etcd-server containerd:containerd runc:runc umoci:umoci debootstrap:debootstrap \
         nsenter:util-linux openssl:openssl; do
  command -v "${t%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "${t%%:*}" >/dev/null 2>&1 \
    || need="$need ${t#*:}"
done
[ -x /usr/lib/cni/bridge ] || need="$need containernetworking-plugins"
if [ -n "$need" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# Go >= 1.24 builds Kubernetes (CoreDNS v1.15 wants >= 1.26): the image's /usr/local/go if any.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
bash pytest_k8snet/lab/kube/build.sh all
