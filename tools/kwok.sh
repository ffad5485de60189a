#!/usr/bin/env bash
# kwok (sigs.k8s.io/kwok) standing in for kubelets, on the real kube-apiserver + etcd +
# kube-controller-manager of tools/kube-apiserver.sh: fake Nodes become Ready and pods on
# them Running/Ready without any container, so a run measures the plugin's own
# control-plane cost (benchmarks/kwok_scale.py, tests/test_kwok.py).
#
#   tools/kwok.sh build       # go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION (Go module
#                             # proxy) into $K8SNET_CACHE/bin; the API server's build too
#   tools/kwok.sh start DIR   # API server (WITH_KCM=1) + kwok; DIR/kubeconfig, DIR/pids
#   tools/kwok.sh stop DIR    # stop all of them (kwok's pid is in DIR/pids too)
#
# kwok manages only Nodes annotated kwok.x-k8s.io/node=fake (create them yourself) and the
# pods bound to them. Its stages are kwok's own "fast" ones from the module it was built
# from: node-initialize (Ready, once; no heartbeat: the node lifecycle controller is off),
# pod-ready and pod-delete. The Nodes get no kubelet port, so an exec into their pods fails
# in the API server at once ("cannot exec").
#
# Environment: KWOK_VERSION (default v0.8.0), KWOK (binary, default $K8SNET_CACHE/bin/kwok),
# K8SNET_CACHE (build copies the stages to $K8SNET_CACHE/kwok/stages-$KWOK_VERSION.yaml), and
# what tools/kube-apiserver.sh reads (AUDIT_POLICY, READY_TIMEOUT, ...).
set -euo pipefail

KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
K8SNET_CACHE="${K8SNET_CACHE:-/var/cache/k8snet}"
KWOK="${KWOK:-$K8SNET_CACHE/bin/kwok}"
STAGES="$K8SNET_CACHE/kwok/stages-$KWOK_VERSION.yaml"  # written by build, read by start
READY_TIMEOUT="${READY_TIMEOUT:-60}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$PATH:/usr/local/go/bin"

log() { echo "kwok.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

gomodcache() { GOWORK=off go env GOMODCACHE; }

stages_dir() { echo "$(gomodcache)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"; }

cmd_build() {
    command -v go >/dev/null || die "go not found (install Go or put it on PATH)"
    if [[ ! -x "$KWOK" || ! -d "$(stages_dir)" || ! -s "$STAGES" ]]; then
        local t0=$SECONDS
        mkdir -p "$(dirname "$KWOK")"
        GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOBIN="$(dirname "$KWOK")" \
            go install -trimpath -ldflags='-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
            || die "go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION failed"
        log "go install kwok $KWOK_VERSION: $((SECONDS - t0))s"
        mkdir -p "$(dirname "$STAGES")"
        write_stages "$STAGES.tmp" && mv "$STAGES.tmp" "$STAGES"
    fi
    WITH_KCM=1 bash "$HERE/kube-apiserver.sh" build
    log "have $KWOK"
}

write_stages() { # file: kwok's own stage files, from the module the binary was built from
    local s
    s=$(stages_dir)
    [[ -d "$s" ]] || die "kwok's stage files are not in $s"
    {
        cat "$s/node/fast/node-initialize.yaml"
        echo "---"
        cat "$s/pod/fast/pod-ready.yaml"
        echo "---"
        cat "$s/pod/fast/pod-delete.yaml"
    } >"$1"
}

cmd_start() {
    local dir=${1:?usage: start DIR} port pid code i
    [[ -x "$KWOK" && -s "$STAGES" ]] || die "$KWOK or $STAGES missing; run '$0 build' first"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    cp "$STAGES" "$dir/kwok.yaml"
    WITH_KCM=1 bash "$HERE/kube-apiserver.sh" start "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    setsid "$KWOK" --kubeconfig "$dir/kubeconfig" --config "$dir/kwok.yaml" \
        --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
        --node-lease-duration-seconds 0 \
        --server-address "127.0.0.1:$port" \
        </dev/null >"$dir/kwok.log" 2>&1 &
    pid=$!
    echo "$pid" >>"$dir/pids"
    code=""
    for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
            "http://127.0.0.1:$port/healthz" || true)
        [[ $code == 200 ]] && break
        sleep 0.2
    done
    if [[ $code != 200 ]]; then
        log "kwok not ready; log:"
        tail -n 30 "$dir/kwok.log" >&2 || true
        bash "$HERE/kube-apiserver.sh" stop "$dir"
        exit 1
    fi
    echo "K8SNET_KWOK=http://127.0.0.1:$port" >>"$dir/env"
    log "kwok ready (KUBECONFIG=$dir/kubeconfig)"
}

case "${1:-}" in
build) cmd_build ;;
start) shift; cmd_start "$@" ;;
stop) shift; bash "$HERE/kube-apiserver.sh" stop "$@" ;;
*) echo "usage: $0 build | start DIR | stop DIR" >&2; exit 2 ;;
esac
