#!/usr/bin/env bash
# The project's tests: install everything, then run unit, plugin, lab and suite tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The lab's real Kubernetes mode: etcd, containerd, runc and CNI from apt; Kubernetes (one
# multi-command binary), CoreDNS, flanneld and the probe and pause images built into one cache
# directory, $K8SNET_CACHE (default /var/cache/k8snet): ~11 min cold on 2 cores (flanneld
# ~2 of them), seconds warm.
export K8SNET_CACHE="${K8SNET_CACHE:-/var/cache/k8snet}"
export GOMODCACHE="$K8SNET_CACHE/go/mod" GOCACHE="$K8SNET_CACHE/go/build"
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
timeout 2400 bash scripts/setup-kube.sh
# The kube API tests' exec-only fake kubelet (a few lines around the kubelet's streaming
# code), next to the API server and controller manager of that same build.
WITH_KCM=1 WITH_FAKE_KUBELET=1 timeout 900 bash tools/kube-apiserver.sh build \
  || echo "fake kubelet build failed: the kube API tests will skip"
# kwok (go install through the module proxy, ~2 min cold on 2 cores, seconds warm) stands in
# for kubelets in tests/test_kwok.py.
timeout 900 bash tools/kwok.sh build || echo "kwok build failed: tests/test_kwok.py will skip"
# Test-only tools: Chromium renders the HTML report; busybox and socat are the probe pod's
# fallback HTTP servers. Each test skips, saying so, if its tool could not be installed.
missing=""
for tool in chromium:chromium busybox:busybox socat:socat; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing="$missing ${tool#*:}"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq $missing; } >/dev/null 2>&1 \
    || echo "could not install$missing: the tests that need them will skip"
fi
# Packaging: the install the README shows (a built wheel, in a fresh venv) must give the
# plugin, the lab command, --html and -n.
wheeldir=$(mktemp -d)
.venv/bin/pip wheel -q --no-deps -w "$wheeldir" .
.venv/bin/python -m venv "$wheeldir/venv"
"$wheeldir/venv/bin/pip" install -q "$wheeldir"/pytest_k8snet-*.whl
(cd "$wheeldir" && venv/bin/python -m pytest --help > help.txt && venv/bin/k8snet-lab --help >/dev/null)
for opt in --k8s-lab-name --html --numprocesses; do
  grep -q -- "$opt" "$wheeldir/help.txt" || { echo "wheel install: pytest --help lacks $opt"; exit 1; }
done
rm -rf "$wheeldir"
# A bystander: a lab this run did not create (another job's, so marked as its owner), up
# while the tests run. The tests must leave it alone: checked after them, then removed.
bystander="bystander$$"
by_run="bystander-$(hostname)-$$"
K8SNET_LAB_RUN="$by_run" .venv/bin/k8snet-lab up --nodes 2 --name "$bystander" >/dev/null
by_down() { K8SNET_LAB_RUN="$by_run" .venv/bin/k8snet-lab down --all >/dev/null 2>&1 || true; }
trap by_down EXIT
trap 'by_down; exit 130' INT
trap 'by_down; exit 143' TERM
by_netns() { ip netns list | awk '{print $1}' | grep -c "^k8snet-$bystander-" || true; }
by_before=$(by_netns)
set +e
# Every lab this run creates records this marker as its owner (the tests' labs, the plugin's
# per-run labs), so that the cleanup below removes those and no other user's or job's lab.
export K8SNET_LAB_RUN="test-$(hostname)-$$-$(date +%s%N)"
# The 25 slowest tests are listed: where the time goes when CI nears its budget.
.venv/bin/python -m pytest -p no:cacheprovider -q -rfEs --durations=25 tests
code=$?
# The examples are user-style tests: they run on a lab brought up for them.
.venv/bin/python -m pytest -p no:cacheprovider -q -rfEs examples --k8s-lab
ex=$?
if [ "$code" -eq 0 ]; then code=$ex; fi
set -e
.venv/bin/k8snet-lab down --all >/dev/null 2>&1 || true  # this run's labs only (K8SNET_LAB_RUN)
# The bystander: all its namespaces still there, and its suite still passes.
bydir=$(mktemp -d)
py="$PWD/.venv/bin/python"
if [ "$(by_netns)" != "$by_before" ] || ! (cd "$bydir" && "$py" -m pytest \
     --pyargs pytest_k8snet.suite -p no:cacheprovider -q --k8s-lab-name "$bystander" \
     >"$bydir/suite.log" 2>&1); then
  echo "the tests touched lab $bystander, which they did not create ($by_before namespaces" \
       "before, $(by_netns) after):"; tail -5 "$bydir/suite.log"
  if [ "$code" -eq 0 ]; then code=1; fi
else
  echo "bystander lab $bystander untouched: $by_before namespaces, its suite passes"
fi
rm -rf "$bydir"
# pytest exit 5 means no tests ran: for CI that is a failure, not a pass.
if [ "$code" -eq 5 ]; then echo "no tests ran"; exit 1; fi
exit "$code"
