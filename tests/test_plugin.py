"""The plugin itself, with pytester: options, precedence, ids, markers and bad input."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_help_lists_the_k8snet_group_offline(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*Kubernetes network acceptance tests*", "*--k8s-kubeconfig*",
                                 "*--k8s-pairs*", "*ini: k8s_pairs, env: K8SNET_PAIRS*"])
    assert result.ret == 0


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    for name in ("k8s_cluster", "k8s_nodes", "k8s_node", "pod_pair", "host_pair", "path_mtu",
                 "k8s_node_host", "k8s_settings"):
        assert f"{name}" in result.stdout.str()


def test_precedence_cli_over_ini_over_env(pytester: pytest.Pytester,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nk8s_timeout = 7\nk8s_pairs = ring\n")
    pytester.makepyfile("""
        def test_settings(k8s_settings):
            print("SETTINGS", k8s_settings.timeout, k8s_settings.pairs, k8s_settings.egress_attempts)
    """)
    monkeypatch.setenv("K8SNET_TIMEOUT", "3")
    monkeypatch.setenv("K8SNET_PAIRS", "all")
    monkeypatch.setenv("K8SNET_EGRESS_ATTEMPTS", "9")
    result = pytester.runpytest("-s", "--k8s-pairs", "sample:2")
    result.stdout.fnmatch_lines(["*SETTINGS 7.0 sample:2 9*"])


def test_pair_ids_and_collect_only_are_offline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_pairs(pod_pair):
            pass
        def test_nodes(k8s_node):
            pass
    """)
    result = pytester.runpytest("--collect-only", "-q", "--k8s-lab", "--k8s-lab-nodes", "3")
    result.stdout.fnmatch_lines(["*test_pairs[[]node-1->node-2[]]*",
                                 "*test_pairs[[]node-3->node-2[]]*", "*test_nodes[[]node-3[]]*"])
    assert len([line for line in result.stdout.lines if "test_pairs[" in line]) == 6


def test_marker_narrows_pairs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.k8snet(pairs="ring")
        def test_ring(pod_pair):
            pass
    """)
    result = pytester.runpytest("--collect-only", "-q", "--k8s-lab", "--k8s-lab-nodes", "4",
                                "--strict-markers")
    assert len([line for line in result.stdout.lines if "test_ring[" in line]) == 4


@pytest.mark.parametrize("args, words", [
    (["--k8s-pairs", "bogus"], "--k8s-pairs must be all, ring or sample:K"),
    (["--k8s-node-selector", "nolabel"], "--k8s-node-selector must be LABEL=VALUE"),
    (["--k8s-timeout", "soon"], "must be a number"),
    (["--k8s-baseline", "/nonexistent.json"], "no such file"),
])
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], words: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{words}*"])
    assert "Traceback" not in result.stderr.str()


def test_unknown_lab_is_one_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(pod_pair): pass\ndef test_y(pod_pair): pass")
    result = pytester.runpytest("--k8s-lab-name", "nosuchlab")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "no lab named 'nosuchlab'" in out and "Traceback" not in out


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
"""


def test_unrelated_tests_do_no_cluster_io(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): assert True")
    config = pytester.path / "kubeconfig"
    config.write_text(KUBECONFIG)  # points at a closed port: any API call would fail
    result = pytester.runpytest("--k8s-kubeconfig", str(config))
    result.assert_outcomes(passed=1)


def test_missing_kubeconfig_or_context_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): assert True")
    result = pytester.runpytest("--k8s-kubeconfig", "/nonexistent/config")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot read kubeconfig /nonexistent/config*"])
    config = pytester.path / "kubeconfig"
    config.write_text(KUBECONFIG)
    result = pytester.runpytest("--k8s-kubeconfig", str(config), "--k8s-context", "prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*context 'prod' is not in*contexts: ctx*"])
    assert "Traceback" not in result.stderr.str()
