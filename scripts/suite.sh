#!/usr/bin/env bash
# The main job: install, then run the built-in acceptance suite on a lab brought up for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest --pyargs pytest_k8snet.suite --k8s-lab -p no:cacheprovider \
  --html report.html --self-contained-html --k8s-results results.json "$@"
