"""What a run tests, said up front: lab or cluster, kubeconfig or in-cluster (issue 8),
the shape of ``--k8s-lab``, and the setup timeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet import options as settings_mod
from tests.conftest import needs_root

pytest_plugins = ["pytester"]

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://192.0.2.10:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
"""

SHOW = """
def test_show(k8s_settings):
    print("KIND", k8s_settings.kind, "IN_CLUSTER", k8s_settings.in_cluster,
          "LAB", k8s_settings.lab, "NAME", k8s_settings.lab_name)
"""


@pytest.fixture
def no_cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kubeconfig and not in a pod, whatever the machine running the tests has."""
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "K8SNET_LAB", "K8SNET_LAB_NAME",
                "K8SNET_BACKEND"):
        monkeypatch.delenv(var, raising=False)


NODE_TEST = "def test_node(k8s_node):\n    pass\n"
NO_TARGET_LINE = ("ERROR: k8snet: no cluster to test: no kubeconfig (--k8s-kubeconfig, "
                  "KUBECONFIG or ~/.kube/config) and not running in a pod.*--k8s-lab*")


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_no_cluster_is_a_usage_error_never_a_green_run(pytester: pytest.Pytester,
                                                        no_cluster_env: None,
                                                        xdist: list[str]) -> None:
    """No kubeconfig, no pod, no lab asked for (a CI job that forgot to mount its
    kubeconfig): the run stops with one line saying what to give, exit 4, and tests
    nothing; it never falls back to a simulated lab."""
    pytester.makepyfile(test_nodes=NODE_TEST, test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([NO_TARGET_LINE])
    out = result.stdout.str() + result.stderr.str()
    assert "passed" not in out and "Traceback" not in out and "INTERNALERROR" not in out
    assert "SIMULATED" not in out
    result.stdout.fnmatch_lines(["k8snet target: none: k8snet tests need a kubeconfig*"])
    # Test runs without k8snet tests in the same environment are not affected ...
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", *xdist, "test_plain.py")
    assert plain.ret == pytest.ExitCode.OK, plain.stdout.str() + plain.stderr.str()
    # ... and --collect-only lists the tests offline.
    listed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    assert listed.ret == pytest.ExitCode.OK
    listed.stdout.fnmatch_lines(["test_nodes.py::test_node[[]cluster-nodes[]]"])


def test_a_cluster_fixture_alone_also_needs_a_target(pytester: pytest.Pytester,
                                                     no_cluster_env: None) -> None:
    """Not only node and pair tests: a test that uses k8s_cluster itself stops the same way,
    before it runs."""
    pytester.makepyfile("def test_c(k8s_cluster):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([NO_TARGET_LINE])


def test_a_missing_kubeconfig_from_the_environment_stops_before_the_tests(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        no_cluster_env: None) -> None:
    """A KUBECONFIG naming a missing file: the header says so, and the run stops after
    collection with the same one line as --k8s-kubeconfig gives (no Exit: prefix)."""
    missing = pytester.path / "gone" / "config"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    pytester.makepyfile(NODE_TEST)
    for xdist in ([], ["-n", "2"]):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *xdist)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stdout.fnmatch_lines([f"k8snet target: Kubernetes cluster unknown: cannot read "
                                     f"kubeconfig {missing}: No such file or directory*"])
        result.stderr.fnmatch_lines([f"ERROR: k8snet: cannot read kubeconfig {missing}: "
                                     "No such file or directory"])
        out = result.stdout.str() + result.stderr.str()
        assert "Exit:" not in out and "Traceback" not in out and "INTERNALERROR" not in out
    named = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--k8s-kubeconfig",
                                          str(missing))
    assert named.ret == pytest.ExitCode.USAGE_ERROR
    named.stderr.fnmatch_lines([f"ERROR: k8snet: cannot read kubeconfig {missing}: *"])


@needs_root
def test_a_lab_run_says_simulated_in_every_report(pytester: pytest.Pytester,
                                                  no_cluster_env: None) -> None:
    """A lab asked for is tested, and every report says it was a simulated lab: the
    terminal header, the results file, every JUnit test case and the HTML title and
    summary."""
    pytester.makepyfile(NODE_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--k8s-lab", "--k8s-lab-nodes", "2", "--k8s-results",
        "results.json", "--junitxml", "junit.xml", "--html", "report.html")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "k8snet target: SIMULATED lab, not a Kubernetes cluster (lab r* of 2 nodes brought up "
        "for this run) [[]--k8s-lab asked for a lab]"])
    cluster = json.loads((pytester.path / "results.json").read_text())["cluster"]
    assert cluster["kind"] == "lab" and cluster["simulated"] is True
    assert cluster["target"].startswith("SIMULATED lab") and cluster["in_cluster"] is False
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count('<property name="simulated" value="true"') == 2, junit
    assert junit.count('<property name="k8snet_target" value="SIMULATED lab') == 2, junit
    html = (pytester.path / "report.html").read_text()
    assert ">SIMULATED lab, not a Kubernetes cluster: report.html</title>" in html
    assert 'id="k8s-simulated">SIMULATED lab, not a Kubernetes cluster (lab r' in html


def test_a_cluster_run_names_its_server_without_contacting_it(pytester: pytest.Pytester,
                                                               no_cluster_env: None) -> None:
    config = pytester.path / "kubeconfig"
    config.write_text(KUBECONFIG)
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--k8s-kubeconfig", str(config), "--k8s-results", "r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["k8snet target: Kubernetes cluster https://192.0.2.10:6443 "
                                 f"(kubeconfig {config})*"])
    cluster = json.loads((pytester.path / "r.json").read_text())["cluster"]
    assert cluster["simulated"] is False and cluster["kind"] == "kube"


def test_auto_in_a_pod_uses_the_service_account(pytester: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 no_cluster_env: None, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setattr(settings_mod, "SERVICE_ACCOUNT_TOKEN", str(token))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    pytester.makepyfile(SHOW + """
from pytest_k8snet.options import kubeconfig_path

def test_path(k8s_settings):
    assert kubeconfig_path(k8s_settings) == ""
""")
    result = pytester.runpytest_inprocess("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "k8snet target: Kubernetes cluster of this pod (in-cluster service account, "
        "https://10.96.0.1:443) [[]auto: no kubeconfig, running in a pod: its service account]",
        "*KIND kube IN_CLUSTER True*"])
    # A kubeconfig, when there is one, still wins (a CI pod may mount one on purpose) ...
    config = pytester.path / "kubeconfig"
    config.write_text(KUBECONFIG)
    result = pytester.runpytest_inprocess("-s", "-k", "show", "--k8s-kubeconfig", str(config))
    result.stdout.fnmatch_lines(["*KIND kube IN_CLUSTER False*"])
    # ... and without the token file it is not a pod with a service account.
    token.unlink()
    result = pytester.runpytest_inprocess("-s", "-k", "show")
    result.stdout.fnmatch_lines(["*KIND none IN_CLUSTER False*"])


def test_k8s_lab_does_not_eat_a_path(pytester: pytest.Pytester, no_cluster_env: None) -> None:
    """``pytest --k8s-lab tests/`` looked for a lab named ``tests/`` before."""
    sub = pytester.mkdir("checks")
    (sub / "test_a.py").write_text("def test_nodes(k8s_node):\n    pass\n")
    (pytester.path / "test_elsewhere.py").write_text("def test_other():\n    pass\n")
    result = pytester.runpytest("--k8s-lab", "checks", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    lines = [line for line in result.stdout.lines if "::" in line]
    assert lines == [f"checks/test_a.py::test_nodes[node-{i}]" for i in (1, 2, 3)]


@pytest.mark.parametrize("args, env, kind, lab, name", [
    (["--k8s-lab"], {}, "lab", True, None),
    (["--k8s-lab-name", "p7"], {}, "lab", False, "p7"),
    ([], {"K8SNET_LAB": "1"}, "lab", True, None),
    ([], {"K8SNET_LAB_NAME": "p8"}, "lab", False, "p8"),
    ([], {"K8SNET_LAB": "0", "K8SNET_LAB_NAME": "p9"}, "lab", False, "p9"),
    ([], {"K8SNET_LAB": ""}, "none", False, None),  # set but empty: not given
])
def test_lab_flag_and_name(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                           no_cluster_env: None, args: list[str], env: dict[str, str], kind: str,
                           lab: bool, name: str | None) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s", *args)
    result.stdout.fnmatch_lines([f"*KIND {kind} IN_CLUSTER False LAB {lab} NAME {name}*"])


def test_lab_flag_in_ini_must_be_yes_or_no(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nk8s_lab = mylab\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini k8s_lab for --k8s-lab must be one of*got 'mylab'*"])


def test_lab_flag_in_env_must_be_yes_or_no(pytester: pytest.Pytester,
                                           monkeypatch: pytest.MonkeyPatch,
                                           no_cluster_env: None) -> None:
    """K8SNET_LAB is a yes/no flag: a lab name there is a usage error (K8SNET_LAB_NAME names
    a lab), never a run of some other lab."""
    monkeypatch.setenv("K8SNET_LAB", "mylab")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*env K8SNET_LAB for --k8s-lab must be one of*got 'mylab'*"])


def test_setup_timeout_precedence(pytester: pytest.Pytester,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("""
        def test_settings(k8s_settings):
            print("SETUP", k8s_settings.setup_timeout)
    """)
    assert pytester.runpytest("-s").stdout.str().count("SETUP 300.0") == 1
    monkeypatch.setenv("K8SNET_SETUP_TIMEOUT", "120")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*SETUP 120.0*"])
    pytester.makeini("[pytest]\nk8s_setup_timeout = 600\n")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*SETUP 600.0*"])
    pytester.runpytest("-s", "--k8s-setup-timeout", "90").stdout.fnmatch_lines(["*SETUP 90.0*"])
    bad = pytester.runpytest("--k8s-setup-timeout", "0")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--k8s-setup-timeout must be positive*"])


@needs_root
def test_lab_flag_takes_no_value(pytester: pytest.Pytester, lab: labmod.Lab) -> None:
    """``--k8s-lab`` is a flag: a lab name after it is a path to pytest, which says so in one
    line (never a green run that tested another lab)."""
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--k8s-lab", lab.name)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*file or directory not found: {lab.name}*"])


def test_loss_threshold_precedence(pytester: pytest.Pytester,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("""
        def test_settings(k8s_settings):
            print("LOSS", k8s_settings.loss_threshold)
    """)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*LOSS 5.0*"])
    monkeypatch.setenv("K8SNET_LOSS_THRESHOLD", "2")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*LOSS 2.0*"])
    pytester.makeini("[pytest]\nk8s_loss_threshold = 1.5\n")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*LOSS 1.5*"])
    pytester.runpytest("-s", "--k8s-loss-threshold", "0").stdout.fnmatch_lines(["*LOSS 0.0*"])
    bad = pytester.runpytest("--k8s-loss-threshold", "100")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--k8s-loss-threshold must be 0..99.9 percent*"])


def test_lab_kubernetes_option_resolves_to_the_kube_backend_offline(
        pytester: pytest.Pytester) -> None:
    """--k8s-lab --k8s-lab-kubernetes: the kube backend on the lab's own kubeconfig, probe
    image and world host, decided at configure time with no I/O."""
    pytester.makepyfile("""
        def test_settings(k8s_settings):
            from pytest_k8snet.options import kubeconfig_path
            print("KIND", k8s_settings.kind, k8s_settings.kube_lab)
            print("IMAGE", k8s_settings.probe_image)
            print("EGRESS", k8s_settings.egress_url)
            print("KUBECONFIG", kubeconfig_path(k8s_settings))
    """)
    out = pytester.runpytest("-s", "--k8s-lab", "--k8s-lab-kubernetes").stdout
    out.fnmatch_lines(["*KIND kube True*", "*IMAGE localhost/k8snet-probe:dev*",
                       "*EGRESS http://world.example.com:80/*", "*KUBECONFIG /run/k8snet/r*/kubeconfig*"])
