#!/usr/bin/env bash
# Install what pytest-k8snet and its lab need on Debian/Ubuntu (as root), into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v dnsmasq >/dev/null || ! command -v iperf3 >/dev/null || ! command -v dig >/dev/null \
   || ! command -v tracepath >/dev/null || ! command -v iptables >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq iproute2 iptables dnsmasq-base iperf3 libiperf0 dnsutils iputils-ping \
    iputils-tracepath curl procps python3 python3-venv python3-pip >/dev/null
fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[dev]'
