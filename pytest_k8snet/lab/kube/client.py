"""What points a client (pytest, kubectl) at a lab's real cluster."""

from __future__ import annotations

from ..state import Lab


def client_env(lab: Lab) -> dict[str, str]:
    """What points pytest (and kubectl) at this lab's cluster: the kubeconfig, the locally
    imported probe image and the lab's own egress target (the lab has no internet)."""
    k = lab.kubernetes
    return {"KUBECONFIG": k["kubeconfig"], "K8SNET_BACKEND": "kube",
            "K8SNET_PROBE_IMAGE": k["images"]["probe"],
            "K8SNET_EGRESS_URL": f"http://{lab.world['name']}:{lab.world['port']}/"}

