#!/usr/bin/env bash
# Build everything the lab's real Kubernetes mode runs, into one cache directory keyed by version:
#
#   $K8SNET_CACHE/kube-$K8S_VERSION/bin/k8snet-kube   kube-apiserver, kube-controller-manager,
#                                                      kube-scheduler, kubelet, kube-proxy, kubectl
#                                                      in one binary (dispatch on argv[0] or argv[1])
#   $K8SNET_CACHE/coredns-$COREDNS_VERSION/coredns     CoreDNS with the plugins a cluster uses
#   $K8SNET_CACHE/flannel-$FLANNEL_VERSION-patch-<hash>/flanneld  flanneld (--cni flannel), all but
#                                                      two backends, with flannel-wireguard-go.patch
#   $K8SNET_CACHE/wireguard-go-$WIREGUARD_GO_VERSION/wireguard-go  userspace WireGuard (the
#                                                      wireguard backend: this kernel has none)
#   $K8SNET_CACHE/images/coredns-$COREDNS_VERSION.tar  OCI archive of CoreDNS alone
#   $K8SNET_CACHE/images/pause-1.tar                   OCI archive of a 1 MiB pause image
#   $K8SNET_CACHE/images/probe-<hash>.tar              OCI archive of a minimal Debian with the probe tools
#
#   k8snet-lab build  (or: bash pytest_k8snet/lab/kube/build.sh [all|kube|coredns|flannel|pause|probe|paths]
#
# Go's module and build caches live under $K8SNET_CACHE/go too, so CI caches one directory.
# A second run finds the outputs and does nothing; with the Go caches warm, a rebuild of the
# Kubernetes binary takes ~15 s. Debian packages (etcd, containerd, runc, CNI plugins, umoci,
# debootstrap) come from apt: scripts/setup-kube.sh installs them and runs this.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.33.13}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
FLANNEL_VERSION="${FLANNEL_VERSION:-v0.28.10}"
# The version flannel v0.28.10 itself requires: no module download beyond flannel's.
WIREGUARD_GO_VERSION="${WIREGUARD_GO_VERSION:-v0.0.0-20231211153847-12269c276173}"
K8SNET_CACHE="${K8SNET_CACHE:-/var/cache/k8snet}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-}"
SUITE="${SUITE:-bookworm}"
# Tools the probes run; python3 (not -minimal) for http.server.
PROBE_PACKAGES="iputils-ping,curl,dnsutils,iperf3,iputils-tracepath,python3,iproute2,netcat-openbsd,ca-certificates,iptables,procps"

export GOMODCACHE="$K8SNET_CACHE/go/mod" GOCACHE="$K8SNET_CACHE/go/build"
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

KUBE_BIN="$K8SNET_CACHE/kube-$K8S_VERSION/bin/k8snet-kube"
COREDNS_BIN="$K8SNET_CACHE/coredns-$COREDNS_VERSION/coredns"
# flanneld's wireguard backend falls back to wireguard-go with this patch (FLANNEL_WG_USERSPACE);
# its hash is in the binary's name, so a changed patch is a new binary, built again.
FLANNEL_PATCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/flannel-wireguard-go.patch"
[[ -f "$FLANNEL_PATCH" ]] || { echo "build-kube: ERROR: $FLANNEL_PATCH is missing" >&2; exit 1; }
# (The directory, not the binary: the process stays "flanneld" for ps, pgrep and logs.)
FLANNEL_BIN="$K8SNET_CACHE/flannel-$FLANNEL_VERSION-patch-$(sha256sum <"$FLANNEL_PATCH" | cut -c1-12)/flanneld"
WIREGUARD_GO_BIN="$K8SNET_CACHE/wireguard-go-$WIREGUARD_GO_VERSION/wireguard-go"
IMAGES="$K8SNET_CACHE/images"
mkdir -p "$K8SNET_CACHE"

log() { echo "build-kube: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# The module proxy fails now and then (a DNS timeout once): retry what downloads.
retry() {
    local i
    for i in 1 2 3 4; do
        "$@" && return 0
        log "attempt $i of: $* failed; retrying in $((i * 5)) s"
        sleep $((i * 5))
    done
    "$@"
}

# Staging modules the six commands import, taken from the proxy at v0.X.Y; every other staging
# module becomes an empty local stub (not imported, and some are missing on the proxy).
NEEDED_STAGING="api apiextensions-apiserver apimachinery apiserver client-go cloud-provider
cluster-bootstrap component-base component-helpers controller-manager csi-translation-lib
dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kubelet mount-utils
pod-security-admission cri-api cri-client kube-controller-manager kube-scheduler kubectl metrics
kube-proxy cli-runtime"

write_kube_main() { # dir
    mkdir -p "$1"
    cat >"$1/main.go" <<'EOF'
// k8snet-kube: the Kubernetes commands the lab runs, in one binary. The command is the
// basename of argv[0] or, failing that, the first argument: `k8snet-kube kubelet --flags`.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	commands := map[string]func() *cobra.Command{
		"kube-apiserver":          apiserver.NewAPIServerCommand,
		"kube-controller-manager": kcm.NewControllerManagerCommand,
		"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
		"kubelet":                 kubelet.NewKubeletCommand,
		"kube-proxy":              proxy.NewProxyCommand,
		"kubectl":                 kubectl.NewDefaultKubectlCommand,
	}
	name := filepath.Base(os.Args[0])
	if _, ok := commands[name]; !ok && len(os.Args) > 1 {
		name = os.Args[1]
		os.Args = os.Args[1:]
	}
	build, ok := commands[name]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: k8snet-kube kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kubectl [flags]")
		os.Exit(2)
	}
	os.Exit(cli.Run(build()))
}
EOF
}

# kubectl, kube-apiserver, ... next to the binary: it dispatches on the name it is run by.
link_commands() {
    local c
    for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
        ln -sfn k8snet-kube "$(dirname "$KUBE_BIN")/$c"
    done
}

build_kube() {
    if [[ -x "$KUBE_BIN" ]]; then log "have $KUBE_BIN"; link_commands; return; fi
    command -v go >/dev/null || die "go not found (Go >= 1.24 is needed to build Kubernetes)"
    local t0 t json moddir src minor sv m
    t0=$(now)
    json=$(retry go mod download -json "k8s.io/kubernetes@$K8S_VERSION") || die "go mod download failed"
    moddir=$(sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p' <<<"$json")
    [[ -d "$moddir" ]] || die "no module dir in: $json"
    # k8s.io/kubernetes replaces k8s.io/* with ./staging/src/k8s.io/*, which module zips lack:
    # build in a writable copy whose replaces point at the published staging modules.
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
    write_kube_main cmd/k8snet-kube
    t=$(now)
    retry go list -deps ./cmd/k8snet-kube >/dev/null || die "resolving dependencies failed"
    log "dependencies: $(elapsed "$t") s"
    local v=k8s.io/component-base/version
    minor=${minor%%.*}
    mkdir -p "$(dirname "$KUBE_BIN")"
    t=$(now)
    go build -trimpath -o "$KUBE_BIN.tmp" -ldflags="-s -w \
        -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor \
        -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" ./cmd/k8snet-kube \
        || die "go build k8snet-kube failed"
    mv "$KUBE_BIN.tmp" "$KUBE_BIN"
    link_commands
    cd /
    rm -rf "$src"
    log "k8snet-kube $K8S_VERSION: build $(elapsed "$t") s, total $(elapsed "$t0") s ($(du -h "$KUBE_BIN" | cut -f1))"
}

build_coredns() {
    if [[ -x "$COREDNS_BIN" ]]; then log "have $COREDNS_BIN"; return; fi
    command -v go >/dev/null || die "go not found"
    local t0 json moddir src
    t0=$(now)
    json=$(retry go mod download -json "github.com/coredns/coredns@$COREDNS_VERSION") || die "go mod download coredns failed"
    moddir=$(sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p' <<<"$json")
    src="$K8SNET_CACHE/src/coredns-$COREDNS_VERSION"
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -r "$moddir" "$src"
    chmod -R u+w "$src"
    cd "$src"
    # Only the plugins a cluster DNS uses: a smaller binary that builds in a minute.
    grep -E '^(metadata|cache|errors|forward|health|hosts|kubernetes|loadbalance|log|loop|metrics|ready|reload|whoami|root|bind|debug|trace|any|chaos|loadbalance):' plugin.cfg >plugin.cfg.new
    mv plugin.cfg.new plugin.cfg
    retry go run directives_generate.go >/dev/null || die "coredns directives_generate failed"
    retry go run owners_generate.go >/dev/null 2>&1 || true
    retry go mod tidy >/dev/null 2>&1 || true
    mkdir -p "$(dirname "$COREDNS_BIN")"
    go build -trimpath -ldflags="-s -w" -o "$COREDNS_BIN.tmp" . || die "go build coredns failed"
    mv "$COREDNS_BIN.tmp" "$COREDNS_BIN"
    cd /
    rm -rf "$src"
    log "coredns $COREDNS_VERSION: $(elapsed "$t0") s ($(du -h "$COREDNS_BIN" | cut -f1))"
}

build_flannel() {
    if [[ -x "$FLANNEL_BIN" ]]; then log "have $FLANNEL_BIN"; return; fi
    command -v go >/dev/null || die "go not found"
    local t0 json moddir src
    t0=$(now)
    json=$(retry go mod download -json "github.com/flannel-io/flannel@$FLANNEL_VERSION") || die "go mod download flannel failed"
    moddir=$(sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p' <<<"$json")
    [[ -d "$moddir" ]] || die "no module dir in: $json"
    # A directory of this build's own: clones on one host share the cache and may build at once.
    mkdir -p "$K8SNET_CACHE/src"
    src=$(mktemp -d "$K8SNET_CACHE/src/flannel-$FLANNEL_VERSION.XXXXXX")
    rmdir "$src"
    cp -r "$moddir" "$src"
    chmod -R u+w "$src"
    cd "$src"
    # Two backends cannot be built here: tencentvpc needs a module version the proxy refuses
    # (403), and udp is cgo (CGO_ENABLED=0). Neither is a shape the lab runs.
    sed -i '/pkg\/backend\/tencentvpc"/d; /pkg\/backend\/udp"/d' main.go
    rm -rf pkg/backend/tencentvpc
    sed -i '/tencentcloud-sdk-go\/tencentcloud\/vpc/d' go.mod go.sum
    patch -s -p1 --no-backup-if-mismatch <"$FLANNEL_PATCH" || die "$FLANNEL_PATCH does not apply to flannel $FLANNEL_VERSION"
    mkdir -p "$(dirname "$FLANNEL_BIN")"
    retry go mod download >/dev/null || die "downloading flannel's modules failed"
    go build -trimpath -o "$FLANNEL_BIN.tmp" \
        -ldflags="-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" . \
        || die "go build flanneld failed"
    mv "$FLANNEL_BIN.tmp" "$FLANNEL_BIN"
    cd /
    rm -rf "$src"
    log "flanneld $FLANNEL_VERSION: $(elapsed "$t0") s ($(du -h "$FLANNEL_BIN" | cut -f1))"
}

# wireguard-go from its own module (its go.mod, not flannel's): ~4 s, 3.4 MB.
build_wireguard_go() {
    if [[ -x "$WIREGUARD_GO_BIN" ]]; then log "have $WIREGUARD_GO_BIN"; return; fi
    command -v go >/dev/null || die "go not found"
    local t0 json moddir src
    t0=$(now)
    json=$(retry go mod download -json "golang.zx2c4.com/wireguard@$WIREGUARD_GO_VERSION") || die "go mod download wireguard-go failed"
    moddir=$(sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p' <<<"$json")
    [[ -d "$moddir" ]] || die "no module dir in: $json"
    mkdir -p "$K8SNET_CACHE/src" "$(dirname "$WIREGUARD_GO_BIN")"
    src=$(mktemp -d "$K8SNET_CACHE/src/wireguard-go.XXXXXX")
    rmdir "$src"
    cp -r "$moddir" "$src"
    chmod -R u+w "$src"
    (cd "$src" && retry go mod download >/dev/null && go build -trimpath -ldflags="-s -w" -o "$WIREGUARD_GO_BIN.tmp" .) \
        || die "go build wireguard-go failed"
    mv "$WIREGUARD_GO_BIN.tmp" "$WIREGUARD_GO_BIN"
    rm -rf "$src"
    log "wireguard-go $WIREGUARD_GO_VERSION: $(elapsed "$t0") s ($(du -h "$WIREGUARD_GO_BIN" | cut -f1))"
}

# The OCI archive of one rootfs directory, with umoci. $3: the image's command.
pack_oci() { # rootfs out.tar cmd...
    local rootfs=$1 out=$2 work
    shift 2
    command -v umoci >/dev/null || die "umoci not found (apt-get install umoci)"
    work=$(mktemp -d "$K8SNET_CACHE/tmp.XXXXXX")
    (
        cd "$work"
        umoci init --layout oci >/dev/null
        umoci new --image oci:dev >/dev/null
        umoci unpack --rootless --image oci:dev bundle >/dev/null 2>&1 || umoci unpack --image oci:dev bundle >/dev/null
        rm -rf bundle/rootfs
        mv "$rootfs" bundle/rootfs
        umoci repack --image oci:dev bundle >/dev/null
        local -a cfg=(--image oci:dev --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
        local c
        for c in "$@"; do cfg+=(--config.cmd "$c"); done
        umoci config "${cfg[@]}" >/dev/null
        umoci gc --layout oci >/dev/null
        tar -C oci -cf "$out.tmp" .
    )
    rm -rf "$work"
    mv "$out.tmp" "$out"
}

write_pause_main() { # dir
    mkdir -p "$1"
    cat >"$1/go.mod" <<'EOF'
module k8snet.io/pause

go 1.22
EOF
    cat >"$1/main.go" <<'EOF'
// pause: the pod sandbox's process. Holds the namespaces, reaps orphans, exits on INT/TERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
EOF
}

pause_tar() { echo "$IMAGES/pause-1.tar"; }
coredns_tar() { echo "$IMAGES/coredns-$COREDNS_VERSION.tar"; }
probe_tar() { echo "$IMAGES/probe-$SUITE-$(echo "$PROBE_PACKAGES" | sha256sum | cut -c1-12).tar"; }

build_pause() {
    local out t0 work
    out=$(pause_tar)
    if [[ -f "$out" ]]; then log "have $out"; return; fi
    t0=$(now)
    mkdir -p "$IMAGES"
    work=$(mktemp -d "$K8SNET_CACHE/tmp.XXXXXX")
    write_pause_main "$work/src"
    mkdir -p "$work/rootfs"
    (cd "$work/src" && go build -trimpath -ldflags="-s -w" -o "$work/rootfs/pause" .) || die "go build pause failed"
    pack_oci "$work/rootfs" "$out" /pause
    rm -rf "$work"
    log "pause image: $(elapsed "$t0") s ($(du -h "$out" | cut -f1))"
}

build_coredns_image() {
    local out t0 work
    out=$(coredns_tar)
    if [[ -f "$out" ]]; then log "have $out"; return; fi
    build_coredns
    t0=$(now)
    mkdir -p "$IMAGES"
    work=$(mktemp -d "$K8SNET_CACHE/tmp.XXXXXX")
    mkdir -p "$work/rootfs/etc"
    cp "$COREDNS_BIN" "$work/rootfs/coredns"
    pack_oci "$work/rootfs" "$out" /coredns
    rm -rf "$work"
    log "coredns image: $(elapsed "$t0") s ($(du -h "$out" | cut -f1))"
}

build_probe() {
    local out t0 work mirror
    out=$(probe_tar)
    if [[ -f "$out" ]]; then log "have $out"; return; fi
    command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
    t0=$(now)
    mkdir -p "$IMAGES"
    # The mirror apt already uses here (no other host is reachable).
    mirror=$DEBIAN_MIRROR
    if [[ -z "$mirror" ]]; then
        mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
            | awk '$1 ~ /^(URIs:|deb)$/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' || true)
    fi
    [[ -n "$mirror" ]] || die "no Debian mirror found in /etc/apt; set DEBIAN_MIRROR"
    work=$(mktemp -d "$K8SNET_CACHE/tmp.XXXXXX")
    retry debootstrap --variant=minbase --include="$PROBE_PACKAGES" "$SUITE" "$work/rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$work"/rootfs/usr/share/{doc,man,info,locale}/* "$work"/rootfs/var/lib/apt/lists/* \
        "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb
    pack_oci "$work/rootfs" "$out" sleep infinity
    rm -rf "$work"
    log "probe image: $(elapsed "$t0") s ($(du -h "$out" | cut -f1))"
}

case "${1:-all}" in
all)
    # debootstrap waits on the mirror and dpkg more than on CPU: beside the Go builds.
    build_probe &
    probe_pid=$!
    build_kube
    build_coredns_image
    build_flannel
    build_wireguard_go
    build_pause
    wait "$probe_pid" || die "building the probe image failed"
    ;;
kube) build_kube ;;
coredns) build_coredns_image ;;
flannel) build_flannel; build_wireguard_go ;;
pause) build_pause ;;
probe) build_probe ;;
paths)
    echo "kube=$KUBE_BIN"
    echo "coredns=$COREDNS_BIN"
    echo "flanneld=$FLANNEL_BIN"
    echo "wireguard_go=$WIREGUARD_GO_BIN"
    echo "pause=$(pause_tar)"
    echo "coredns_image=$(coredns_tar)"
    echo "probe=$(probe_tar)"
    ;;
*) echo "usage: $0 [all|kube|coredns|flannel|pause|probe|paths]" >&2; exit 2 ;;
esac
