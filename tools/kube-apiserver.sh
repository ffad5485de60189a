#!/usr/bin/env bash
# Real kube-apiserver + etcd on 127.0.0.1 for pytest-k8snet backend tests (no kubelet).
#
#   tools/kube-apiserver.sh build       # build kube-apiserver from the Go module proxy, apt-install etcd
#   tools/kube-apiserver.sh start DIR   # start etcd + kube-apiserver, write DIR/kubeconfig, DIR/pids
#   tools/kube-apiserver.sh stop DIR    # stop both, leave nothing behind
#
# With WITH_KCM=1 (for build and start) kube-controller-manager is built and run too (+~100 s
# cold build). It provides what the apiserver alone lacks: the "default" ServiceAccount in new
# namespaces (required by the default ServiceAccount admission plugin to create pods), namespace
# deletion (namespace controller), Endpoints/EndpointSlices for Services, garbage collection.
# Node lifecycle/taint eviction are disabled so fake Nodes (no kubelet) keep their pods.
#
# Environment:
#   K8S_VERSION        k8s.io/kubernetes version to build (default v1.33.13)
#   K8SNET_CACHE       cache dir (default /var/cache/k8snet); binary at $K8SNET_CACHE/bin/kube-apiserver
#   KUBE_APISERVER     use this binary instead of the cached one
#   ETCD               etcd binary (default: etcd from PATH, /usr/bin/etcd from Debian etcd-server)
#   READY_TIMEOUT      seconds to wait for /readyz (default 60)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.33.13}"
K8SNET_CACHE="${K8SNET_CACHE:-/var/cache/k8snet}"
KUBE_APISERVER="${KUBE_APISERVER:-$K8SNET_CACHE/bin/kube-apiserver}"
KUBE_CONTROLLER_MANAGER="${KUBE_CONTROLLER_MANAGER:-$K8SNET_CACHE/bin/kube-controller-manager}"
WITH_KCM="${WITH_KCM:-0}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"

# Staging modules of k8s.io/kubernetes imported by cmd/kube-apiserver and cmd/kube-controller-manager.
# They are taken from the Go module proxy at the matching v0.X.Y tag. All other staging modules
# are replaced by empty local stubs (not imported; several are missing on the proxy we have).
# v1.33.13 is the default because the proxy here lacks several v0.31.x staging modules.
NEEDED_STAGING="api apiextensions-apiserver apimachinery apiserver client-go cloud-provider
cluster-bootstrap component-base component-helpers controller-manager csi-translation-lib
dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kubelet mount-utils
pod-security-admission cri-api cri-client kube-controller-manager kube-scheduler kubectl metrics"

log() { echo "kube-apiserver.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

install_etcd() {
    if command -v "${ETCD:-etcd}" >/dev/null 2>&1; then
        return
    fi
    log "installing etcd-server via apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends etcd-server >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends etcd-server >/dev/null
    fi
    # the package enables a systemd unit; policy-rc.d usually prevents starting it in
    # containers/CI. Make sure no system etcd is left running on 2379.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
        systemctl stop etcd || true
        systemctl disable etcd >/dev/null 2>&1 || true
    fi
    command -v etcd >/dev/null || die "etcd not found after installing etcd-server"
}

cmd_build() {
    install_etcd
    local -a targets=()
    [[ -x "$KUBE_APISERVER" ]] || targets+=("kube-apiserver:$KUBE_APISERVER")
    if [[ $WITH_KCM == 1 && ! -x "$KUBE_CONTROLLER_MANAGER" ]]; then
        targets+=("kube-controller-manager:$KUBE_CONTROLLER_MANAGER")
    fi
    if ((${#targets[@]} == 0)); then
        log "already built: $KUBE_APISERVER$([[ $WITH_KCM == 1 ]] && echo " $KUBE_CONTROLLER_MANAGER")"
        return
    fi
    command -v go >/dev/null || die "go not found"
    local t0 t src minor sv m json moddir target cmd out
    export GOWORK=off GOFLAGS="-mod=mod" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

    t0=$(now)
    json=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION") || die "go mod download failed"
    moddir=$(sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p' <<<"$json")
    [[ -d "$moddir" ]] || die "no module dir in: $json"
    log "go mod download k8s.io/kubernetes@$K8S_VERSION: $(elapsed "$t0")s"

    # k8s.io/kubernetes replaces k8s.io/* with ./staging/src/k8s.io/*, which module zips do not
    # contain. Make a writable copy and point the replaces at the published staging modules.
    src="$K8SNET_CACHE/src/kubernetes-$K8S_VERSION"
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -r "$moddir" "$src"
    chmod -R u+w "$src"
    cd "$src"
    rm -f go.work go.work.sum
    minor="${K8S_VERSION#v1.}"
    sv="v0.$minor"
    for m in $(sed -n 's#^\s*k8s.io/\([a-z0-9-]*\) => \./staging/src/k8s\.io/.*#\1#p' go.mod); do
        if [[ " $(echo $NEEDED_STAGING) " == *" $m "* ]]; then
            go mod edit -replace "k8s.io/$m=k8s.io/$m@$sv"
        else
            mkdir -p "staging/src/k8s.io/$m"
            echo "module k8s.io/$m" >"staging/src/k8s.io/$m/go.mod"
        fi
    done

    t=$(now)
    go list -deps $(printf './cmd/%s ' "${targets[@]%%:*}") >/dev/null || die "resolving dependencies failed"
    log "dependency download (go list -deps): $(elapsed "$t")s"

    local v=k8s.io/component-base/version major=1
    minor=${minor%%.*}
    for target in "${targets[@]}"; do
        cmd=${target%%:*} out=${target#*:}
        t=$(now)
        mkdir -p "$(dirname "$out")"
        go build -trimpath -o "$out.tmp" -ldflags="-s -w \
            -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=$major -X $v.gitMinor=$minor \
            -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" \
            "./cmd/$cmd"
        mv "$out.tmp" "$out"
        log "go build $cmd: $(elapsed "$t")s ($(du -h "$out" | cut -f1))"
    done
    cd /
    rm -rf "$src"
    log "build done in $(elapsed "$t0")s total"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

alive() { # any process of the given process groups (or the pids themselves) still alive?
    local pid
    for pid in "$@"; do
        kill -0 -- "-$pid" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

cmd_stop() {
    local dir=${1:?usage: stop DIR} pid i
    [[ -f "$dir/pids" ]] || { log "no $dir/pids, nothing to stop"; return 0; }
    local -a pids
    mapfile -t pids <"$dir/pids"
    # every component runs in its own session/process group (setsid): TERM the groups in
    # parallel (graceful exit takes ~2-3 s), KILL whatever is left after 15 s.
    for pid in "${pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 150; i++)); do
        alive "${pids[@]}" || break
        sleep 0.1
    done
    if alive "${pids[@]}"; then
        log "processes still alive after 15 s, sending KILL"
        for pid in "${pids[@]}"; do
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        done
        sleep 0.2
    fi
    rm -f "$dir/pids"
}

write_kubeconfig() { # file server token [ca_file]
    local file=$1 server=$2 token=$3 ca=${4:-} cluster_tls
    if [[ -n "$ca" ]]; then
        cluster_tls="    certificate-authority-data: $(base64 -w0 <"$ca")"
    else
        cluster_tls="    insecure-skip-tls-verify: true"
    fi
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: k8snet
  cluster:
    server: $server
$cluster_tls
users:
- name: admin
  user:
    token: $token
contexts:
- name: k8snet
  context:
    cluster: k8snet
    user: admin
current-context: k8snet
EOF
    chmod 600 "$file"
}

cmd_start() {
    local dir=${1:?usage: start DIR}
    [[ -x "$KUBE_APISERVER" ]] || die "$KUBE_APISERVER missing; run '$0 build' first"
    if [[ $WITH_KCM == 1 && ! -x "$KUBE_CONTROLLER_MANAGER" ]]; then
        die "$KUBE_CONTROLLER_MANAGER missing; run 'WITH_KCM=1 $0 build' first"
    fi
    local etcd_bin
    etcd_bin=$(command -v "${ETCD:-etcd}") || die "etcd missing; run '$0 build' first"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -f "$dir/pids" ]]; then
        cmd_stop "$dir"
    fi
    local t0 etcd_port peer_port api_port dead_port token etcd_pid api_pid i code
    t0=$(now)
    etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port); dead_port=$(free_port)
    while [[ $peer_port == "$etcd_port" ]]; do peer_port=$(free_port); done
    while [[ $api_port == "$etcd_port" || $api_port == "$peer_port" ]]; do api_port=$(free_port); done
    token=$(openssl rand -hex 24)
    mkdir -p "$dir/certs"
    rm -rf "$dir/etcd"

    echo "$token,admin,admin,\"system:masters\"" >"$dir/tokens.csv"
    chmod 600 "$dir/tokens.csv"
    openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
    openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null

    : >"$dir/pids"
    setsid "$etcd_bin" \
        --name k8snet \
        --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "k8snet=http://127.0.0.1:$peer_port" \
        --logger zap --log-outputs stderr --log-level warn \
        </dev/null >"$dir/etcd.log" 2>&1 &
    etcd_pid=$!
    echo "$etcd_pid" >>"$dir/pids"

    setsid "$KUBE_APISERVER" \
        --etcd-servers "http://127.0.0.1:$etcd_port" \
        --bind-address 127.0.0.1 \
        --advertise-address 127.0.0.1 \
        --secure-port "$api_port" \
        --cert-dir "$dir/certs" \
        --token-auth-file "$dir/tokens.csv" \
        --service-account-key-file "$dir/sa.pub" \
        --service-account-signing-key-file "$dir/sa.key" \
        --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
        --authorization-mode RBAC \
        --service-cluster-ip-range 10.96.0.0/16 \
        --endpoint-reconciler-type none \
        --allow-privileged=true \
        --profiling=false \
        --v 1 \
        </dev/null >"$dir/kube-apiserver.log" 2>&1 &
    api_pid=$!
    echo "$api_pid" >>"$dir/pids"

    code=""
    for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
        if ! kill -0 "$etcd_pid" 2>/dev/null || ! kill -0 "$api_pid" 2>/dev/null; then
            break
        fi
        code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 \
            -H "Authorization: Bearer $token" "https://127.0.0.1:$api_port/readyz" || true)
        [[ $code == 200 ]] && break
        sleep 0.2
    done
    if [[ $code != 200 ]]; then
        log "kube-apiserver not ready (last /readyz status: ${code:-none}); logs:"
        tail -n 20 "$dir/etcd.log" >&2 || true
        tail -n 40 "$dir/kube-apiserver.log" >&2 || true
        cmd_stop "$dir"
        exit 1
    fi

    # --cert-dir writes apiserver.crt = serving cert followed by its self-signed CA.
    awk '/BEGIN CERTIFICATE/{n++} n>=2' "$dir/certs/apiserver.crt" >"$dir/ca.crt"
    [[ -s "$dir/ca.crt" ]] || cp "$dir/certs/apiserver.crt" "$dir/ca.crt"
    write_kubeconfig "$dir/kubeconfig" "https://127.0.0.1:$api_port" "$token" "$dir/ca.crt"
    write_kubeconfig "$dir/kubeconfig-unreachable" "https://127.0.0.1:$dead_port" "$token" "$dir/ca.crt"

    if [[ $WITH_KCM == 1 ]]; then
        local kcm_pid
        setsid "$KUBE_CONTROLLER_MANAGER" \
            --kubeconfig "$dir/kubeconfig" \
            --secure-port 0 \
            --leader-elect=false \
            --controllers '*,-node-lifecycle-controller,-taint-eviction-controller,-device-taint-eviction-controller,-pod-garbage-collector-controller' \
            --service-account-private-key-file "$dir/sa.key" \
            --root-ca-file "$dir/ca.crt" \
            --use-service-account-credentials=false \
            --concurrent-gc-syncs 5 \
            --v 1 \
            </dev/null >"$dir/kube-controller-manager.log" 2>&1 &
        kcm_pid=$!
        echo "$kcm_pid" >>"$dir/pids"
        # ready once the serviceaccount controller has created default/default
        code=""
        for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
            kill -0 "$kcm_pid" 2>/dev/null || break
            code=$(curl -s --cacert "$dir/ca.crt" -o /dev/null -w '%{http_code}' --max-time 2 \
                -H "Authorization: Bearer $token" \
                "https://127.0.0.1:$api_port/api/v1/namespaces/default/serviceaccounts/default" || true)
            [[ $code == 200 ]] && break
            sleep 0.2
        done
        if [[ $code != 200 ]]; then
            log "kube-controller-manager not ready; log:"
            tail -n 40 "$dir/kube-controller-manager.log" >&2 || true
            cmd_stop "$dir"
            exit 1
        fi
    fi
    cat >"$dir/env" <<EOF
KUBECONFIG=$dir/kubeconfig
K8SNET_APISERVER=https://127.0.0.1:$api_port
K8SNET_ETCD=http://127.0.0.1:$etcd_port
K8SNET_TOKEN=$token
EOF
    log "ready in $(elapsed "$t0")s: https://127.0.0.1:$api_port (KUBECONFIG=$dir/kubeconfig)"
}

case "${1:-}" in
build) cmd_build ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) echo "usage: $0 build | start DIR | stop DIR" >&2; exit 2 ;;
esac
