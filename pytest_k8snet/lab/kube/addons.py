"""What a cluster has besides its components: CoreDNS behind ``kube-dns``, as kubeadm deploys it,
and the one-shot pods that prove DNS answers from every node before the lab says Ready."""

from __future__ import annotations

from .constants import CLUSTER_DNS, CLUSTER_DOMAIN, COREDNS_IMAGE, PROBE_IMAGE

DNS_CHECK_LABEL = "k8snet.io/lab-dns-check"


def coredns(replicas: int, cluster_dns6: str | None = None) -> str:
    """CoreDNS as kubeadm deploys it; ``cluster_dns6``: a dual-stack cluster's DNS Service
    gets this second ClusterIP (pods still use the first, the kubelet's clusterDNS)."""
    dual = (f"\n  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]"
            f"\n  clusterIPs: [{CLUSTER_DNS}, {cluster_dns6}]") if cluster_dns6 else ""
    return f"""apiVersion: v1
kind: ServiceAccount
metadata: {{name: coredns, namespace: kube-system}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "system:coredns"}}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "system:coredns"}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}}
subjects: [{{kind: ServiceAccount, name: coredns, namespace: kube-system}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: coredns, namespace: kube-system}}
data:
  Corefile: |
    .:53 {{
        errors
        health {{
            lameduck 5s
        }}
        ready
        kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }}
        forward . /etc/resolv.conf {{
            max_concurrent 1000
        }}
        cache 30
        loop
        reload
        loadbalance
    }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {{k8s-app: kube-dns}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{k8s-app: kube-dns}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 1}}}}
  template:
    metadata: {{labels: {{k8s-app: kube-dns}}}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      tolerations:
      - {{key: CriticalAddonsOnly, operator: Exists}}
      - {{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector: {{matchLabels: {{k8s-app: kube-dns}}}}
              topologyKey: kubernetes.io/hostname
      containers:
      - name: coredns
        image: {COREDNS_IMAGE}
        imagePullPolicy: Never
        command: [/coredns]
        args: [-conf, /etc/coredns/Corefile]
        resources:
          requests: {{cpu: 50m, memory: 40Mi}}
          limits: {{memory: 170Mi}}
        volumeMounts: [{{name: config-volume, mountPath: /etc/coredns, readOnly: true}}]
        ports:
        - {{containerPort: 53, name: dns, protocol: UDP}}
        - {{containerPort: 53, name: dns-tcp, protocol: TCP}}
        - {{containerPort: 9153, name: metrics, protocol: TCP}}
        livenessProbe:
          httpGet: {{path: /health, port: 8080}}
          initialDelaySeconds: 20
          timeoutSeconds: 5
          failureThreshold: 5
        readinessProbe:
          httpGet: {{path: /ready, port: 8181}}
          periodSeconds: 1
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {{add: [NET_BIND_SERVICE], drop: [ALL]}}
          readOnlyRootFilesystem: true
      volumes:
      - name: config-volume
        configMap:
          name: coredns
          items: [{{key: Corefile, path: Corefile}}]
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {{k8s-app: kube-dns, kubernetes.io/name: CoreDNS}}
spec:
  selector: {{k8s-app: kube-dns}}
  clusterIP: {CLUSTER_DNS}{dual}
  ports:
  - {{name: dns, port: 53, protocol: UDP}}
  - {{name: dns-tcp, port: 53, protocol: TCP}}
  - {{name: metrics, port: 9153, protocol: TCP}}
"""


def dns_check_pod(node: str) -> str:
    """A pod pinned to ``node`` that exits 0 once the cluster DNS Service answers there:
    Ready must mean what the probes need, not a finished rollout (a node's kube-proxy can
    still REJECT the DNS Service for a moment after CoreDNS is Ready)."""
    script = (f"for i in $(seq 1 300); do "
              f"dig +short +time=1 +tries=1 kubernetes.default.svc.{CLUSTER_DOMAIN} "
              f"| grep -q . && exit 0; sleep 0.2; done; exit 1")
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: k8snet-dns-check-{node}
  namespace: kube-system
  labels: {{{DNS_CHECK_LABEL}: "true"}}
spec:
  nodeName: {node}
  restartPolicy: Never
  activeDeadlineSeconds: 120
  terminationGracePeriodSeconds: 0
  automountServiceAccountToken: false
  tolerations: [{{operator: Exists}}]
  containers:
  - name: check
    image: {PROBE_IMAGE}
    imagePullPolicy: Never
    command: [/bin/sh, -c, "{script}"]
"""


def kubeadm_config(pod_cidr: str, service_cidr: str, version: str) -> str:
    """kubeadm's record of the cluster's networks, as a kubeadm cluster has it: the one place
    a client can read the cluster's Pod CIDR (each node only carries its own /24). Both
    CIDRs are comma-separated IPv4,IPv6 on a dual-stack cluster, as kubeadm writes them."""
    return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: kubeadm-config, namespace: kube-system}}
data:
  ClusterConfiguration: |
    apiVersion: kubeadm.k8s.io/v1beta4
    kind: ClusterConfiguration
    kubernetesVersion: {version}
    networking:
      dnsDomain: {CLUSTER_DOMAIN}
      podSubnet: {pod_cidr}
      serviceSubnet: {service_cidr}
"""
