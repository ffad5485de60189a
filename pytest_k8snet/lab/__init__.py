"""The lab: a multi-node cluster network in Linux network namespaces.

``up`` builds one, ``load`` finds a running one by name, ``down`` removes it, and
``faults.add`` / ``faults.remove`` switch the incidents on and off. ``plan`` says what a
lab would be without building it; ``view_of`` gives a built lab's typed view.

Its modules, each depending only on those above it: :mod:`.netns`, :mod:`.owner` and
:mod:`.processes` (host tools, ownership, our child processes); :mod:`.state` (a lab's
record); :mod:`.kube` (the real-cluster mode's parts); :mod:`.plan` (names and addresses);
:mod:`.network`, :mod:`.daemons`, :mod:`.faults`, :mod:`.teardown` (building, running,
breaking and removing a lab); :mod:`.bringup` and :mod:`.run` (putting them together);
:mod:`.describe` (what ``k8snet-lab status`` says); :mod:`.cli` (``k8snet-lab``).
:mod:`.server` runs as the lab's HTTP server process.
"""

from .bringup import up
from .faults import FAULTS
from .netns import LabError
from .plan import EXTERNAL_NAME, MAX_NODES, WORLD_PORT, LabSpec, plan
from .state import STATE_ROOT, Lab, kubeconfig_path, load, running_labs, runs_kubernetes
from .teardown import down, down_all
from .view import LabNode, LabPod, LabService, LabView, LabWorld, view_of

__all__ = ["EXTERNAL_NAME", "FAULTS", "Lab", "LabError", "LabNode", "LabPod", "LabService",
           "LabSpec", "LabView", "LabWorld", "MAX_NODES", "STATE_ROOT", "WORLD_PORT", "down",
           "down_all", "kubeconfig_path", "load", "plan", "running_labs", "runs_kubernetes", "up",
           "view_of"]
