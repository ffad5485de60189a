#!/bin/sh
# Run the built-in suite as a Job inside the cluster (examples/job.yaml) and fetch its reports
# from the pod's log into a directory. The exit status is the suite's (pytest's), or 2 when
# the Job produced no reports.
#
#   sh examples/run-job.sh [JOB_YAML] [REPORT_DIR]     defaults: examples/job.yaml, reports
#
# Needs examples/rbac.yaml applied (the Job's own identity), and kubectl pointed at the
# cluster by someone who may create Jobs and read their pods' logs in namespace k8snet: no
# more than examples/rbac-job-runner.yaml grants.
# A previous run's Job of the same name is deleted first. K8SNET_JOB_TIMEOUT: seconds to wait.
set -eu
manifest=${1:-examples/job.yaml}
out=${2:-reports}
timeout=${K8SNET_JOB_TIMEOUT:-1800}

kubectl delete -f "$manifest" --ignore-not-found --cascade=foreground --wait=true >/dev/null
ref=$(kubectl create -f "$manifest" -o jsonpath='{.metadata.namespace} {.metadata.name}')
ns=${ref% *}
job=${ref#* }
echo "job $job created in namespace $ns"

start=$(date +%s)
while :; do
  done_as=$(kubectl -n "$ns" get job "$job" \
    -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}')
  case " $done_as " in *" Complete "* | *" Failed "*) break ;; esac
  # A pod that can never start would otherwise wait for the Job's own deadline.
  waiting=$(kubectl -n "$ns" get pods -l "job-name=$job" \
    -o jsonpath='{.items[*].status.containerStatuses[*].state.waiting.reason}')
  case " $waiting " in
    *" ImagePullBackOff "* | *" InvalidImageName "* | *" ErrImageNeverPull "* | *" CreateContainerConfigError "*)
      echo "job $job cannot start its pod: $waiting" >&2
      kubectl -n "$ns" describe pods -l "job-name=$job" | tail -n 20 >&2
      exit 2 ;;
  esac
  if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
    echo "job $job did not finish within ${timeout}s" >&2
    exit 2
  fi
  sleep 2
done
echo "job $job: $done_as"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
kubectl -n "$ns" logs "job/$job" >"$log"
sed '/^----- BEGIN K8SNET REPORTS/,$d' "$log"   # the suite's terminal output
if ! grep -q '^----- END K8SNET REPORTS' "$log"; then
  echo "job $job left no reports in its log" >&2
  exit 2
fi
mkdir -p "$out"
sed -n '/^----- BEGIN K8SNET REPORTS/,/^----- END K8SNET REPORTS/p' "$log" | sed '1d;$d' \
  | base64 -d | tar -xzf - --no-same-owner -C "$out"
echo "reports in $out:" $(ls "$out")
exit "$(cat "$out/exit-code")"
