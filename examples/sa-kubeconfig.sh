#!/bin/sh
# Print a kubeconfig for the k8snet ServiceAccount of examples/rbac.yaml: the API server and
# CA of your current kubectl context, and a token from the TokenRequest API. Store it as the
# CI secret that examples/github-workflow.yml writes out.
#
#   kubectl apply -f examples/rbac.yaml
#   sh examples/sa-kubeconfig.sh [DURATION] >k8snet.kubeconfig      # DURATION default 720h
#
# The API server may cap the token's lifetime (--service-account-max-token-expiration); the
# expiry it granted is printed on stderr. Renew the secret before then. For the namespace
# variant (examples/rbac-namespace.yaml) set K8SNET_SA_NAMESPACE=k8snet-probes.
set -eu
duration=${1:-720h}
ns=${K8SNET_SA_NAMESPACE:-k8snet}
sa=${K8SNET_SA:-k8snet}

view() { kubectl config view --minify --flatten -o jsonpath="$1"; }
server=$(view '{.clusters[0].cluster.server}')
ca=$(view '{.clusters[0].cluster.certificate-authority-data}')
[ -n "$server" ] || { echo "no server in the current kubectl context" >&2; exit 1; }
granted=$(kubectl -n "$ns" create token "$sa" --duration "$duration" \
  -o jsonpath='{.status.token} {.status.expirationTimestamp}')
token=${granted% *}
echo "token of $ns/$sa valid until ${granted#* }" >&2

cat <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: k8snet
    cluster:
      server: $server
EOF
if [ -n "$ca" ]; then
  echo "      certificate-authority-data: $ca"
fi
cat <<EOF
users:
  - name: $ns-$sa
    user:
      token: $token
contexts:
  - name: k8snet
    context:
      cluster: k8snet
      user: $ns-$sa
      namespace: $ns
current-context: k8snet
EOF
