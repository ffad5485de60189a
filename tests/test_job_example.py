"""What CI users copy from examples/: the Job (job.yaml, run-job.sh, Containerfile), the
ServiceAccount kubeconfig (sa-kubeconfig.sh) and the GitHub Actions workflow.

Without a cluster: every option the Job and the workflow give pytest exists, the workflow
publishes the files its suite step writes, the Job writes its reports where its volume is,
the scripts parse, and the Job's script hands reports and exit status over through its log,
also when it is stopped with SIGTERM.

On the lab's real cluster (one bring-up, the session's ``real_cluster``; or a running lab
named by ``K8SNET_KUBE_LAB``): an image made as examples/Containerfile makes it, examples/
job.yaml as the `k8snet` ServiceAccount of examples/rbac.yaml in a namespace that enforces
Pod Security "restricted", passing and failing, with the reports fetched by run-job.sh; and
the workflow's steps with the secret from sa-kubeconfig.sh.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import kube

from .conftest import kube_artifacts_missing

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
JOB = EXAMPLES / "job.yaml"
WORKFLOW = EXAMPLES / "github-workflow.yml"
RUN_JOB = EXAMPLES / "run-job.sh"
SA_KUBECONFIG = EXAMPLES / "sa-kubeconfig.sh"
LAB = os.environ.get("K8SNET_KUBE_LAB", "")
BEGIN, END = "----- BEGIN K8SNET REPORTS", "----- END K8SNET REPORTS"
# What the workflow's `${{ }}` expressions may be; the runner below knows exactly these.
SECRET = re.compile(r"^\$\{\{\s*secrets\.(\w+)\s*\}\}$")

real_only = pytest.mark.skipif(
    os.geteuid() != 0 or (not LAB and kube_artifacts_missing() is not None),
    reason="the real cluster needs root and the lab's Kubernetes build "
           + (kube_artifacts_missing() or ""))


# -- reading the examples -------------------------------------------------------------------

def job_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(JOB.read_text())
    return doc


def suite_container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "suite"
    return dict(container)


def job_script(doc: dict[str, Any]) -> str:
    command = suite_container(doc)["command"]
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 4, command
    return str(command[2])


def workflow_steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    (job,) = doc["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def step(steps: list[dict[str, Any]], step_id: str) -> dict[str, Any]:
    (found,) = [s for s in steps if s.get("id") == step_id]
    return found


def pytest_calls(script: str) -> list[list[str]]:
    """The argument lists of every `pytest` / `python -m pytest` in a shell script."""
    calls = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word == "pytest" and (i == 0 or words[i - 1] == "-m"):
                calls.append([w for w in words[i + 1:] if w != "&"])
                break
    return calls


def option_value(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# -- without a cluster ----------------------------------------------------------------------

DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def expand(args: list[str], values: dict[str, str]) -> list[str]:
    """$NAME and ${NAME} as the shell would (only the names given); "$@" goes."""
    return [re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], a)
            for a in args if a != "$@"]


def test_the_job_and_the_workflow_give_pytest_only_options_it_has(tmp_path: Path) -> None:
    """Their pytest command lines, variables filled in, parsed by pytest itself: an option
    it lacks or a bad value is a usage error (exit 4). --collect-only: no cluster I/O."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(DUMMY_KUBECONFIG)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("K8SNET_") and k != "KUBECONFIG"}
    (job_args,) = pytest_calls(job_script(job_doc()))
    suites = [pytest_calls(s["run"]) for s in workflow_steps() if pytest_calls(s.get("run", ""))]
    assert len(suites) == 1 and len(suites[0]) == 1, suites
    calls = {  # the Job finds its pod's service account; a kubeconfig stands in for it here
        "job.yaml": (expand(job_args, {"REPORTS": str(tmp_path / "job")}),
                     {**env, "KUBECONFIG": str(kubeconfig)}),
        "workflow": (expand(suites[0][0], {"RUNNER_TEMP": str(tmp_path)}), env)}
    for where, (args, call_env) in calls.items():
        assert "--pyargs" in args and "pytest_k8snet.suite" in args, (where, args)
        (tmp_path / "job").mkdir(exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env=call_env)
        assert proc.returncode == 0, (where, proc.stdout + proc.stderr)
        assert re.search(r"^\d+ tests collected", proc.stdout, re.M), (where, proc.stdout)
        for option in ("--junitxml", "--html", "--k8s-results"):
            assert (tmp_path / option_value(args, option)).is_file(), (where, option)


def test_the_workflow_publishes_what_its_suite_step_writes() -> None:
    steps = workflow_steps()
    (args,) = pytest_calls(step(steps, "suite")["run"])
    written = {option_value(args, o) for o in ("--junitxml", "--html", "--k8s-results")}
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert set(upload["with"]["path"].split()) == written
    assert upload["with"].get("if-no-files-found") == "error"
    # Published above all when the suite failed: not under the default `if: success()`.
    assert upload.get("if") in ("${{ !cancelled() }}", "${{ always() }}"), upload.get("if")
    assert steps.index(upload) > steps.index(step(steps, "suite"))
    # The suite reads the kubeconfig an earlier step writes from a secret.
    kubeconfig = option_value(args, "--k8s-kubeconfig")
    writer = step(steps, "kubeconfig")
    assert kubeconfig in writer["run"] and steps.index(writer) < steps.index(step(steps, "suite"))
    assert any(SECRET.match(str(v)) for v in writer["env"].values()), writer["env"]
    for s in steps:
        if "run" in s:
            parsed = subprocess.run(["bash", "-n"], input=s["run"], capture_output=True,
                                    text=True, timeout=10)
            assert parsed.returncode == 0, (s.get("id"), parsed.stderr)


def test_the_job_runs_as_the_rbac_service_account_and_writes_to_its_volume() -> None:
    doc = job_doc()
    pod = doc["spec"]["template"]["spec"]
    rbac = list(yaml.safe_load_all((EXAMPLES / "rbac.yaml").read_text()))
    (sa,) = [d for d in rbac if d and d["kind"] == "ServiceAccount"]
    assert (doc["metadata"]["namespace"], pod["serviceAccountName"]) == (
        sa["metadata"]["namespace"], sa["metadata"]["name"])
    assert doc["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    container = suite_container(doc)
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[env["REPORTS"]]]
    (args,) = pytest_calls(job_script(doc))
    assert {option_value(args, o) for o in ("--junitxml", "--html", "--k8s-results")} == {
        "$REPORTS/junit.xml", "$REPORTS/report.html", "$REPORTS/results.json"}
    for script in (job_script(doc), RUN_JOB.read_text(), SA_KUBECONFIG.read_text()):
        parsed = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True,
                                timeout=10)
        assert parsed.returncode == 0, parsed.stderr


def fake_tools(bindir: Path, python3: str, log: Path | None = None) -> dict[str, str]:
    """A `python3` standing in for pytest, and a `kubectl` that plays back one Job's log."""
    bindir.mkdir()
    (bindir / "python3").write_text("#!/bin/sh\n" + python3)
    (bindir / "kubectl").write_text(f"""#!/bin/sh
case "$*" in
  "delete -f "*) ;;
  "create -f "*) echo "k8snet k8snet-suite" ;;
  *" get job "*) echo "SuccessCriteriaMet Complete " ;;
  *" logs job/k8snet-suite") cat {shlex.quote(str(log))} ;;
  *) echo "fake kubectl: unexpected $*" >&2; exit 1 ;;
esac
""")
    for tool in bindir.iterdir():
        tool.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


PYTEST_STAND_IN = """\
printf '%s\\n' "$@" >"$REPORTS/args"
while [ $# -gt 0 ]; do
  case $1 in --junitxml|--html|--k8s-results) echo "written by $1" >"$2"; shift ;; esac
  shift
done
echo "3 failed, 45 passed"
exit 1
"""


def test_the_job_script_hands_reports_and_status_over_through_its_log(tmp_path: Path) -> None:
    """The Job's own script with pytest played by a shell script, then run-job.sh with a
    kubectl that plays that log back: files, exit status and extra args arrive."""
    reports = tmp_path / "pod-reports"
    reports.mkdir()
    log = tmp_path / "pod.log"
    env = {**fake_tools(tmp_path / "bin", PYTEST_STAND_IN, log), "REPORTS": str(reports)}
    pod = subprocess.run(["sh", "-c", job_script(job_doc()), "k8snet-suite", "own-tests",
                          "-k", "mtu"], capture_output=True, text=True, timeout=30, env=env)
    assert pod.returncode == 1, pod.stderr
    log.write_text(pod.stdout)
    fetched = subprocess.run(["sh", str(RUN_JOB), "job.yaml", "out"], capture_output=True,
                             text=True, timeout=30, cwd=tmp_path, env=env)
    assert fetched.returncode == 1, fetched.stdout + fetched.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "args", "exit-code", "junit.xml", "report.html", "results.json"]
    assert (out / "junit.xml").read_text() == "written by --junitxml\n"
    assert (out / "exit-code").read_text() == "1\n"
    assert (out / "args").read_text().split()[-3:] == ["own-tests", "-k", "mtu"]
    # The suite's terminal output is shown, the encoded block is not.
    assert "3 failed, 45 passed" in fetched.stdout and BEGIN not in fetched.stdout


def test_the_job_script_passes_sigterm_on_to_pytest(tmp_path: Path) -> None:
    """The Job's deadline or a delete sends SIGTERM to the script (PID 1): pytest must get
    it to remove its probes, and the reports must still come out."""
    reports = tmp_path / "reports"
    reports.mkdir()
    stand_in = """\
trap 'echo got TERM >"$REPORTS/term"; exit 143' TERM
touch "$REPORTS/started"
while :; do sleep 0.1; done
"""
    env = {**fake_tools(tmp_path / "bin", stand_in), "REPORTS": str(reports)}
    proc = subprocess.Popen(["sh", "-c", job_script(job_doc()), "k8snet-suite"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not (reports / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:  # the script and whatever it left (its own process group)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert (reports / "term").read_text() == "got TERM\n", err
    assert proc.returncode == 143, err
    assert (reports / "exit-code").read_text() == "143\n"
    assert BEGIN in out and END in out, out


# -- on the lab's real cluster --------------------------------------------------------------

def kubectl_env(lab: labmod.Lab) -> dict[str, str]:
    """kubectl on PATH, pointed at the cluster as its admin (the CI user who applies the Job)."""
    bindir = kube.artifacts().kube.parent
    assert (bindir / "kubectl").exists(), bindir
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
            "KUBECONFIG": lab.kubernetes["kubeconfig"]}


def kubectl(lab: labmod.Lab, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout,
                          env=kubectl_env(lab))


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> labmod.Lab:
    if LAB:
        lab = labmod.load(LAB)
        assert lab.kubernetes, f"lab {LAB} runs no Kubernetes (k8snet-lab up --kubernetes)"
        return lab
    lab = request.getfixturevalue("real_cluster")
    assert isinstance(lab, labmod.Lab)
    return lab


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def runner_image(cluster: labmod.Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    """examples/Containerfile's image without a registry or a container builder: the wheel
    (`pip wheel --no-deps`) pip-installed with its dependencies into a copy of the lab's probe
    image (Debian's python3 standing in for python:3.12-slim, which no registry here serves),
    then imported into every node's containerd as the lab imports its own images."""
    if shutil.which("umoci") is None:
        pytest.skip("umoci is needed to build the runner image (scripts/setup-kube.sh installs it)")
    work = tmp_path_factory.mktemp("image")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
         str(ROOT)])
    (wheel,) = (work / "dist").glob("pytest_k8snet-*.whl")
    version = wheel.name.split("-")[1]
    (work / "oci").mkdir()
    run(["tar", "-C", str(work / "oci"), "-xf", str(kube.artifacts().probe)])
    run(["umoci", "unpack", "--image", f"{work}/oci:dev", str(work / "bundle")])
    rootfs = work / "bundle" / "rootfs"
    (pylib,) = [p for p in (rootfs / "usr" / "lib").glob("python3.*") if p.is_dir()]
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if pylib.name != here:
        pytest.skip(f"pip here installs for {here}, the image has {pylib.name}")
    # What `RUN pip install /tmp/pytest_k8snet-*.whl` does, for the image's interpreter.
    run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target",
         str(rootfs / "usr" / "local" / "lib" / pylib.name / "dist-packages"), str(wheel)])
    oci = f"{work}/oci"
    run(["umoci", "repack", "--image", f"{oci}:dev", str(work / "bundle")])
    run(["umoci", "config", "--image", f"{oci}:dev", "--tag", version,
         "--config.user", "65532:65532", "--config.workingdir", "/reports"])
    run(["umoci", "rm", "--image", f"{oci}:dev"])
    run(["umoci", "gc", "--layout", oci])
    tar = work / "image.tar"
    run(["tar", "-C", oci, "-cf", str(tar), "."])
    base = "localhost/pytest-k8snet"
    for node in cluster.nodes:
        sock = cluster.state_dir / node["name"] / "containerd.sock"
        run(["ctr", "--address", str(sock), "-n", "k8s.io", "images", "import", "--base-name",
             base, str(tar)])
    shutil.rmtree(work)  # ~0.35 GB of rootfs, layout and tar: the nodes hold the image now
    return f"{base}:{version}"


def sa_kubeconfig(cluster: labmod.Lab, sa: str, path: Path) -> Path:
    """examples/sa-kubeconfig.sh run as the admin; the kubeconfig must be that account's."""
    made = subprocess.run(["sh", str(SA_KUBECONFIG)], capture_output=True, text=True, timeout=60,
                          env={**kubectl_env(cluster), "K8SNET_SA": sa})
    assert made.returncode == 0 and "valid until" in made.stderr, made.stderr
    path.write_text(made.stdout)
    who = kubectl(cluster, "--kubeconfig", str(path), "auth", "whoami", "-o",
                  "jsonpath={.status.userInfo.username}")
    assert who.stdout == f"system:serviceaccount:k8snet:{sa}", who.stdout + who.stderr
    return path


@pytest.fixture(scope="module")
def submitter(cluster: labmod.Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """examples/rbac.yaml (the Job's identity) and rbac-job-runner.yaml (who starts it) as
    they are, the Job's namespace enforcing Pod Security "restricted", which the runner pod
    must meet; yields the starter's kubeconfig. Removed again, and waited for."""
    for manifest in ("rbac.yaml", "rbac-job-runner.yaml"):
        applied = kubectl(cluster, "apply", "-f", str(EXAMPLES / manifest))
        assert applied.returncode == 0, applied.stderr
    labelled = kubectl(cluster, "label", "--overwrite", "namespace", "k8snet",
                       "pod-security.kubernetes.io/enforce=restricted")
    assert labelled.returncode == 0, labelled.stderr
    yield sa_kubeconfig(cluster, "k8snet-ci", tmp_path_factory.mktemp("ci") / "kubeconfig")
    kubectl(cluster, "delete", "-f", str(JOB), "--ignore-not-found", "--cascade=foreground",
            "--wait=true", timeout=120)
    for manifest in ("rbac-job-runner.yaml", "rbac.yaml"):
        kubectl(cluster, "delete", "-f", str(EXAMPLES / manifest), "--ignore-not-found",
                "--wait=true", timeout=180)


def render_job(cluster: labmod.Lab, image: str, path: Path, args: list[str]) -> Path:
    """examples/job.yaml with the lab's values: the image just built, the lab's probe image
    (no registry here) and its egress target (no internet); `args` as a user adds them."""
    doc = job_doc()
    container = suite_container(doc)
    container["image"] = image
    env = {e["name"]: e for e in container["env"]}
    lab_env = kube.client_env(cluster)
    for name in ("K8SNET_PROBE_IMAGE", "K8SNET_EGRESS_URL"):
        env[name]["value"] = lab_env[name]
    container["args"] = args
    doc["spec"]["template"]["spec"]["containers"] = [container]
    path.write_text(yaml.safe_dump(doc))
    return path


def run_job(cluster: labmod.Lab, kubeconfig: Path, image: str, tmp_path: Path,
            args: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    """run-job.sh as the CI's `k8snet-ci` account, on examples/job.yaml made for the lab."""
    manifest = render_job(cluster, image, tmp_path / "job.yaml", args)
    proc = subprocess.run(["sh", str(RUN_JOB), str(manifest), "reports"], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path,
                          env={**kubectl_env(cluster), "KUBECONFIG": str(kubeconfig),
                               "K8SNET_JOB_TIMEOUT": "400"})
    return proc, tmp_path / "reports"


def junit_counts(path: Path) -> dict[str, int]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return {k: int(suite.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")}


def probe_namespaces_gone(cluster: labmod.Lab, seconds: float = 90) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        left = kubectl(cluster, "get", "namespaces", "-o", "name", "-l",
                       "app.kubernetes.io/managed-by=pytest-k8snet").stdout.split()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


@real_only
def test_job_example_runs_the_suite_in_the_cluster(cluster: labmod.Lab, runner_image: str,
                                                   submitter: Path, tmp_path: Path) -> None:
    proc, reports = run_job(cluster, submitter, runner_image, tmp_path, [])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^job k8snet-suite: .*\bComplete\b", out, re.M), out
    assert "in-cluster service account" in out, out
    assert sorted(p.name for p in reports.iterdir()) == [
        "exit-code", "junit.xml", "report.html", "results.json"], out
    counts = junit_counts(reports / "junit.xml")
    assert counts["tests"] >= 40 and counts["failures"] == counts["errors"] == 0, counts
    results = json.loads((reports / "results.json").read_text())
    assert results["cluster"]["simulated"] is False and results["cluster"]["in_cluster"] is True
    assert results["cluster"]["kind"] == "kube"
    outcomes = set(results["tests"].values())
    assert "passed" in outcomes and outcomes <= {"passed", "skipped"}, results["tests"]
    assert "Cluster network" in (reports / "report.html").read_text()
    done = kubectl(cluster, "-n", "k8snet", "get", "job", "k8snet-suite", "-o",
                   "jsonpath={.status.succeeded}")
    assert done.stdout == "1", done.stdout + done.stderr
    assert probe_namespaces_gone(cluster) == []


@real_only
def test_job_example_fails_as_the_suite_does_and_still_hands_over_reports(
        cluster: labmod.Lab, runner_image: str, submitter: Path, tmp_path: Path) -> None:
    """A path MTU the cluster does not carry (an extra argument, as the Job's args take
    them): the Job fails, run-job.sh exits 1, and the reports say which tests failed."""
    proc, reports = run_job(cluster, submitter, runner_image, tmp_path,
                            ["--k8s-expect-mtu", "9000"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "FAILED" in out and "test_path_mtu" in out, out
    assert (reports / "exit-code").read_text() == "1\n"
    counts = junit_counts(reports / "junit.xml")
    assert counts["failures"] > 0 and counts["errors"] == 0, counts
    results = json.loads((reports / "results.json").read_text())
    failed = {t.split("[")[0].split("::")[-1] for t, o in results["tests"].items()
              if o == "failed"}
    assert failed == {"test_path_mtu"}, results["tests"]
    assert results["options"]["expect_mtu"] == 9000, results["options"]
    state = kubectl(cluster, "-n", "k8snet", "get", "job", "k8snet-suite", "-o",
                    "jsonpath={.status.failed}")
    assert state.stdout == "1", state.stdout + state.stderr
    assert probe_namespaces_gone(cluster) == []


@real_only
def test_run_job_gives_up_at_once_on_an_image_that_cannot_be_pulled(
        cluster: labmod.Lab, submitter: Path, tmp_path: Path) -> None:
    """A wrong image name: run-job.sh says so and why (exit 2) instead of waiting for the
    Job's deadline; `kubectl describe` works with the starter's rights."""
    started = time.monotonic()
    proc, reports = run_job(cluster, submitter, "localhost/pytest-k8snet:no-such-tag",
                            tmp_path, [])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "cannot start its pod: ImagePullBackOff" in out, out
    assert "localhost/pytest-k8snet:no-such-tag" in out and "forbidden" not in out, out
    assert not reports.exists()
    assert time.monotonic() - started < 120, out


@real_only
def test_workflow_steps_run_the_suite_with_the_service_account_kubeconfig(
        cluster: labmod.Lab, submitter: Path, tmp_path: Path) -> None:
    """Every `run` step of examples/github-workflow.yml but the install (the plugin of this
    checkout is on PATH instead), as the runner runs them, with the K8SNET_KUBECONFIG secret
    made by examples/sa-kubeconfig.sh; then what the upload step publishes must exist."""
    secrets = {"K8SNET_KUBECONFIG":
               sa_kubeconfig(cluster, "k8snet", tmp_path / "sa.kubeconfig").read_text()}
    workspace, runner_temp = tmp_path / "workspace", tmp_path / "runner-temp"
    workspace.mkdir()
    runner_temp.mkdir()
    lab_env = kube.client_env(cluster)
    base_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
                "RUNNER_TEMP": str(runner_temp), "GITHUB_WORKSPACE": str(workspace),
                # the lab's own probe image and egress target: no registry, no internet
                "K8SNET_PROBE_IMAGE": lab_env["K8SNET_PROBE_IMAGE"],
                "K8SNET_EGRESS_URL": lab_env["K8SNET_EGRESS_URL"]}
    steps = workflow_steps()
    ran: list[str | None] = []
    for s in steps:
        if "run" not in s or s.get("id") == "install":
            continue
        env = dict(base_env)
        for name, value in (s.get("env") or {}).items():
            m = SECRET.match(str(value))
            assert m or "${{" not in str(value), f"the runner here cannot evaluate {value}"
            env[name] = secrets[m.group(1)] if m else str(value)
        assert "${{" not in s["run"], s["run"]
        script = runner_temp / f"step-{len(ran)}.sh"
        script.write_text(s["run"])
        proc = subprocess.run(["bash", "-e", str(script)], capture_output=True, text=True,
                              timeout=400, cwd=workspace, env=env)
        assert proc.returncode == 0, f"step {s.get('id')}: {proc.stdout}{proc.stderr}"
        ran.append(s.get("id"))
    assert ran == ["kubeconfig", "suite"], ran
    assert stat.S_IMODE((runner_temp / "kubeconfig").stat().st_mode) == 0o600
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    published = [workspace / p for p in upload["with"]["path"].split()]
    assert all(p.is_file() for p in published), published
    counts = junit_counts(workspace / "reports" / "junit.xml")
    assert counts["tests"] >= 40 and counts["failures"] == counts["errors"] == 0, counts
    results = json.loads((workspace / "reports" / "results.json").read_text())
    assert results["cluster"]["context"] == "k8snet", results["cluster"]
    assert results["cluster"]["simulated"] is False and results["cluster"]["in_cluster"] is False
    assert probe_namespaces_gone(cluster) == []
