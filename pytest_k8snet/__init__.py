"""pytest-k8snet: Kubernetes network acceptance testing."""

__version__ = "0.1.0"
