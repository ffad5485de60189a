#!/usr/bin/env bash
# The project's tests: install everything, then run unit, plugin, lab and suite tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest -p no:cacheprovider -q -rfEs tests
code=$?
# The examples are user-style tests: they run on a lab brought up for them.
.venv/bin/python -m pytest -p no:cacheprovider -q -rfEs examples --k8s-lab
ex=$?
if [ "$code" -eq 0 ]; then code=$ex; fi
set -e
.venv/bin/k8snet-lab down --all >/dev/null 2>&1 || true
# pytest exit 5 means no tests ran: for CI that is a failure, not a pass.
if [ "$code" -eq 5 ]; then echo "no tests ran"; exit 1; fi
exit "$code"
