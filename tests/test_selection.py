"""Node selection and what a run says it tested (issue 8: no silent greens).

No lab is needed: the lab's node names are computed, and where tests must run, a conftest
stands in a fake ``k8s_cluster`` whose pairs run nothing.
"""

from __future__ import annotations

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.backends import Node
from pytest_k8snet.selection import matches, not_probeable, split_selectors, unreachable_nodes
from tests.conftest import needs_root

pytest_plugins = ["pytester"]

PAIR_AND_NODE_TESTS = """
def test_pairs(pod_pair):
    pass

def test_nodes(k8s_node):
    pass
"""

# A stand-in for k8s_cluster: the selected nodes, endpoints that are never run, and a
# readiness measurement (READY) the summary reads. Run._cluster is set so that the reports
# find the measurements where they find a real cluster's.
FAKE_CLUSTER = """
import pytest
from pytest_k8snet.backends import Endpoint
from pytest_k8snet.measure.cluster import Pair
from pytest_k8snet.run import RUN_KEY

READY = {READY}


class FakeCluster:
    def __init__(self, nodes):
        self.nodes = self.all_nodes = nodes
        self.measurements = {{"ready": READY}} if READY else {{}}

    @property
    def node_names(self):
        return [n.name for n in self.nodes]

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def endpoint(self, node, network="pod"):
        return Endpoint(node, network, "10.0.0.1", node, None)

    def pair(self, src, dst, network="pod"):
        return Pair(self.endpoint(src, network), self.endpoint(dst, network))

    def close(self):
        pass


@pytest.fixture(scope="session")
def k8s_cluster(pytestconfig):
    run = pytestconfig.stash[RUN_KEY]
    cluster = FakeCluster(run.selected_nodes())
    run._cluster = cluster
    yield cluster
"""


def fake_cluster(ready: dict[str, list[str]] | None = None) -> str:
    return FAKE_CLUSTER.format(READY=repr(ready or {}))


def test_selector_matching_no_node_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """The README's own example on a lab: "11 skipped", exit 0, before the fix."""
    pytester.makepyfile(PAIR_AND_NODE_TESTS)
    result = pytester.runpytest("--k8s-lab", "--k8s-node-selector",
                                "node-role.kubernetes.io/worker=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "--k8s-node-selector node-role.kubernetes.io/worker= matches none of the 3 nodes" \
        in out, out
    assert "skipped" not in out and "Traceback" not in out


def test_no_node_for_a_cluster_only_test_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A test on k8s_cluster alone (no node parametrization) skipped before the fix."""
    pytester.makepyfile("def test_cluster(k8s_cluster):\n    pass\n")
    result = pytester.runpytest("--k8s-lab", "--k8s-node-selector", "no=such")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stdout.fnmatch_lines(["*k8snet: --k8s-node-selector no=such matches none of the 3*"])


def test_several_selectors_all_must_match(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PAIR_AND_NODE_TESTS)
    both = pytester.runpytest("--collect-only", "-q", "--k8s-lab", "--k8s-lab-nodes", "4",
                              "--k8s-node-selector", "kubernetes.io/hostname=node-2",
                              "--k8s-node-selector", "k8snet.lab/index=2")
    assert [line for line in both.stdout.lines if "test_nodes[" in line] == \
        ["test_several_selectors_all_must_match.py::test_nodes[node-2]"]
    comma = pytester.runpytest("--collect-only", "-q", "--k8s-lab", "--k8s-node-selector",
                               "kubernetes.io/hostname=node-2,k8snet.lab/index=3")
    assert comma.ret == pytest.ExitCode.USAGE_ERROR
    pytester.makeini("[pytest]\nk8s_node_selector = k8snet.lab/index=1, "
                     "kubernetes.io/hostname=node-1\n")
    ini = pytester.runpytest("--collect-only", "-q", "--k8s-lab")
    assert len([line for line in ini.stdout.lines if "test_nodes[" in line]) == 1


def test_pair_tests_with_one_node_skip_saying_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_pairs(pod_pair):\n    pass\n")
    result = pytester.runpytest("--k8s-lab", "--k8s-lab-nodes", "1", "-rs", "-v")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "*::test_pairs?fewer-than-2-nodes? SKIPPED*",
        "*k8snet: pair tests need at least two nodes; 1 selected (node-1)"])


def test_summary_says_what_was_tested_and_what_was_left_out(pytester: pytest.Pytester) -> None:
    """A Windows node is left out and named; the summary counts the tested nodes and pairs."""
    pytester.makeconftest(fake_cluster() + """
from dataclasses import replace
import pytest_k8snet.backends.lab as lab_backend

_planned = lab_backend.planned_nodes


def planned(name, count):
    nodes = _planned(name, count)
    return [replace(n, labels={**n.labels, "kubernetes.io/os": "windows"})
            if n.name == "node-4" else n for n in nodes]


lab_backend.planned_nodes = planned
""")
    pytester.makepyfile(PAIR_AND_NODE_TESTS)
    result = pytester.runpytest_subprocess("--k8s-lab", "--k8s-lab-nodes", "4")
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines([
        "*k8snet cluster summary*",
        "target: SIMULATED lab, not a Kubernetes cluster*",
        "tested: 3 nodes of 3 selected and 6 node pairs (pod network 6)",
        "left out: node-4 (kubernetes.io/os=windows: the probe image runs on Linux nodes only)",
    ])
    # Under xdist the controller lists no nodes and runs no test: the workers tell it.
    result = pytester.runpytest_subprocess("--k8s-lab", "--k8s-lab-nodes", "4", "-n", "2")
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["tested: 3 nodes of 3 selected and 6 node pairs*",
                                 "left out: node-4 (kubernetes.io/os=windows*"])


def test_cordoned_notready_and_diskpressure_nodes_stay_selected(
        pytester: pytest.Pytester) -> None:
    """Pods pinned by nodeName still run there: such nodes are probed, not left out."""
    pytester.makeconftest("""
from dataclasses import replace
import pytest_k8snet.backends.lab as lab_backend

_planned = lab_backend.planned_nodes


def planned(name, count):
    sick = ("cordoned (spec.unschedulable)", "DiskPressure: KubeletHasDiskPressure")
    return [replace(n, ready=False, notes=sick) if n.name == "node-2" else n
            for n in _planned(name, count)]


lab_backend.planned_nodes = planned
""")
    pytester.makepyfile("def test_nodes(k8s_node):\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--k8s-lab")
    assert len([line for line in result.stdout.lines if "test_nodes[node-2]" in line]) == 1
    result.stdout.fnmatch_lines(["probed although cordoned (spec.unschedulable); DiskPressure: "
                                 "KubeletHasDiskPressure: node-2"])


def test_summary_counts_only_tests_that_ran(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(fake_cluster())
    pytester.makepyfile("""
        import pytest
        def test_pairs(pod_pair):
            pytest.skip("not measured")
    """)
    result = pytester.runpytest("--k8s-lab")
    result.assert_outcomes(skipped=6)
    result.stdout.fnmatch_lines(["tested: 0 nodes of 3 selected and 0 node pairs"])


def test_summary_counts_nodes_the_probes_cannot_reach(pytester: pytest.Pytester) -> None:
    """Cordoned and DiskPressure are not reasons to skip; a probe that runs nothing is."""
    pytester.makeconftest(fake_cluster({
        "node-1": ["cordoned (spec.unschedulable)", "DiskPressure: KubeletHasDiskPressure"],
        "node-2": ["pod-network probe does not run commands: no such pod"],
        "node-3": []}))
    pytester.makepyfile("def test_cluster(k8s_cluster):\n    pass\n")
    result = pytester.runpytest("--k8s-lab")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "unreachable: 1 node the probes cannot run on, their network tests skipped:",
        "  node-2: pod-network probe does not run commands: no such pod"])
    assert "node-1:" not in result.stdout.str()


def node(name: str, **labels: str) -> Node:
    return Node(name=name, ip="10.0.0.1", pod_cidrs=(), labels=dict(labels))


@pytest.mark.parametrize("labels, left_out", [
    ({"kubernetes.io/os": "linux"}, False),
    ({}, False),  # the lab's nodes carry no os label
    ({"kubernetes.io/os": "windows"}, True),
    ({"kubernetes.io/os": "linux", "eks.amazonaws.com/compute-type": "fargate"}, True),
    ({"kubernetes.io/os": "linux", "type": "virtual-kubelet"}, True),
])
def test_nodes_the_probes_cannot_run_on(labels: dict[str, str], left_out: bool) -> None:
    assert (not_probeable(node("n", **labels)) is not None) is left_out


def test_selectors_match_all_labels() -> None:
    n = node("n", a="1", b="")
    assert matches(n, split_selectors("a=1,b="))
    assert matches(n, split_selectors(["a=1", "b="]))
    assert not matches(n, split_selectors("a=1,b=2"))
    assert matches(n, split_selectors(None))


def test_only_probes_that_run_nothing_make_a_node_unreachable() -> None:
    readiness = {"cordoned": ["cordoned (spec.unschedulable)", "Ready=False: KubeletNotReady"],
                 "dead": ["Ready=Unknown", "host-network probe does not run commands: x"]}
    assert unreachable_nodes(readiness) == {"dead": "host-network probe does not run commands: x"}


UNREACHABLE_POD_PROBE = """
from pytest_k8snet.backends import ExecResult
from pytest_k8snet.backends.lab import LabBackend

_run = LabBackend.run


def run(self, endpoint, argv, timeout):
    # node-2's probe pod is gone: every command in it fails, as in a pod that never started
    if endpoint.node == "node-2" and endpoint.network == "pod":
        return ExecResult(tuple(argv), 125, "", "probe pod gone", 0.0)
    return _run(self, endpoint, argv, timeout)


LabBackend.run = run
"""


@needs_root
def test_suite_on_a_lab_counts_the_node_its_probes_cannot_reach(pytester: pytest.Pytester,
                                                                lab: labmod.Lab) -> None:
    """End to end: the real readiness check, the suite's skips and the summary agree."""
    pytester.makeconftest(UNREACHABLE_POD_PROBE)
    result = pytester.runpytest_subprocess("--pyargs", "pytest_k8snet.suite", "--k8s-lab-name",
                                           lab.name, "-p", "no:cacheprovider", "-k",
                                           "nodes_ready or pod_ping", timeout=300)
    result.assert_outcomes(passed=4, failed=1, skipped=4)
    result.stdout.fnmatch_lines([
        "tested: 3 nodes of 3 selected and 2 node pairs (pod network 2)",
        "unreachable: 1 node the probes cannot run on, their network tests skipped:",
        "  node-2: pod-network probe does not run commands: probe pod gone"])
