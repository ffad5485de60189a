"""The lab: a multi-node cluster network in Linux network namespaces.

``up`` builds one, ``load`` finds a running one by name, ``down`` removes it, and
``faults.add`` / ``faults.remove`` switch the incidents on and off.
"""

from .faults import FAULTS
from .lab import Lab, LabSpec, down, down_all, load, running_labs, up
from .netns import LabError

__all__ = ["FAULTS", "Lab", "LabError", "LabSpec", "down", "down_all", "load", "running_labs", "up"]
