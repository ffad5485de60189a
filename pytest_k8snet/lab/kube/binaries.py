"""The binaries and images the real cluster runs: where they are, building them once, and
the Debian packages this mode needs besides the plain lab's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..netns import LabError
from .constants import COREDNS_VERSION, KUBE_VERSION

BUILD_SCRIPT = Path(__file__).with_name("build.sh")
# The Debian packages this mode runs (besides the plain lab's).
PACKAGES = {"etcd": "etcd-server", "containerd": "containerd", "runc": "runc", "ctr": "containerd",
            "nsenter": "util-linux", "unshare": "util-linux", "openssl": "openssl",
            "curl": "curl"}
CNI_DIR = Path("/usr/lib/cni")



def cache_dir() -> Path:
    return Path(os.environ.get("K8SNET_CACHE", "/var/cache/k8snet"))


@dataclass(frozen=True)
class Artifacts:
    kube: Path
    pause: Path
    probe: Path
    coredns: Path
    flanneld: Path  # run only with --cni flannel, but built with the rest
    wireguard_go: Path  # run only by flanneld's wireguard backend

    def missing(self) -> list[Path]:
        return [p for p in (self.kube, self.pause, self.probe, self.coredns, self.flanneld,
                            self.wireguard_go) if not p.exists()]


def artifacts() -> Artifacts:
    """Where the build puts each piece (the build script is the one source of the paths)."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), "paths"], capture_output=True, text=True,
                          check=False, env={**os.environ, "K8SNET_CACHE": str(cache_dir())})
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        return Artifacts(Path(paths["kube"]), Path(paths["pause"]), Path(paths["probe"]),
                         Path(paths["coredns_image"]), Path(paths["flanneld"]),
                         Path(paths["wireguard_go"]))
    except KeyError:
        raise LabError(f"cannot read the build paths: {proc.stderr.strip()}") from None


def build(quiet: bool = False) -> Artifacts:
    """Build whatever is missing (cold: ~10 min on 2 cores; warm: nothing to do)."""
    arts = artifacts()
    if not arts.missing():
        return arts
    if shutil.which("go") is None:
        raise LabError("the real-cluster mode needs its binaries built once, and that needs Go "
                       ">= 1.24 (e.g. apt-get install golang-1.24 or /usr/local/go); missing: "
                       + ", ".join(str(p) for p in arts.missing()))
    print(f"k8snet-lab: building Kubernetes {KUBE_VERSION}, CoreDNS {COREDNS_VERSION}, flanneld and the "
          f"images into {cache_dir()} (first time: about 10 minutes)", file=sys.stderr, flush=True)
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), "all"], check=False,
                          stdout=subprocess.DEVNULL if quiet else sys.stderr,
                          env={**os.environ, "K8SNET_CACHE": str(cache_dir())})
    if proc.returncode != 0:
        raise LabError(f"building the real-cluster pieces failed (exit {proc.returncode}); "
                       f"see the output above, or run: bash {BUILD_SCRIPT} all")
    return artifacts()


def require_tools(proxy_mode: str = "iptables") -> None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    wanted = {**PACKAGES, **({"nft": "nftables"} if proxy_mode == "nftables" else {})}
    missing = {t: p for t, p in wanted.items() if shutil.which(t, path=path) is None}
    if not (CNI_DIR / "bridge").exists():
        missing["bridge (CNI)"] = "containernetworking-plugins"
    if missing:
        raise LabError(f"the real-cluster mode needs {', '.join(sorted(missing))}; install with: "
                       f"apt-get install -y {' '.join(sorted(set(missing.values())))}")
    if not Path("/sys/fs/cgroup/cpu").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        raise LabError("the real-cluster mode needs cgroups mounted under /sys/fs/cgroup")

