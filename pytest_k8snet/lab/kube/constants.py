"""What the lab's real cluster is: its versions, images, addresses and ports."""

from __future__ import annotations

import ipaddress

KUBE_VERSION = "v1.33.13"
COREDNS_VERSION = "v1.15.0"
PAUSE_IMAGE = "localhost/k8snet-pause:dev"
PROBE_IMAGE = "localhost/k8snet-probe:dev"
COREDNS_IMAGE = "localhost/k8snet-coredns:dev"
SERVICE_CIDR = "10.96.0.0/16"
# A dual-stack cluster's DNS Service's IPv6 ClusterIP (in family.SERVICE_CIDR6).
CLUSTER_DNS6 = "fd00:10:96::a"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
MGMT_CIDR = ipaddress.ip_network("198.19.0.0/24")  # RFC 2544 like the lab's edge: never routed
API_PORT = 6443
