"""``k8snet-lab``: bring labs up and down, switch faults, and run commands inside them."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import describe, faults, owner
from .bringup import up
from .kube import binaries as kube_binaries
from .netns import LabError, require_root, tool_env
from .family import IP_FAMILIES
from .plan import (CNIS, FLANNEL_BACKENDS, MAX_NODES, OVERLAYS, PROXY_MODES, LabSpec,
                   check_name, default_overlay_mtu)
from .run import run, run_with_cluster
from .state import STATE_ROOT, lab_owner, load, lock_path, locked, running_labs
from .teardown import down, down_all

# What `k8snet-lab --help` shows: plain text for people (the module docstring is for Sphinx).
DESCRIPTION = """\
Bring simulated Kubernetes cluster networks ("labs": nodes, pods, VXLAN overlay, a Service,
cluster DNS and an outside world, in Linux network namespaces) up and down, switch the
incidents' faults on and off, and run commands inside them."""

EPILOG = """\
examples:
  k8snet-lab up --name lab --nodes 4 --fault underlay-mtu:node-2
  pytest --pyargs pytest_k8snet.suite --k8s-lab-name lab
  k8snet-lab fault add lab vxlan-blocked --node node-3
  k8snet-lab exec lab node-1/probe -- ping -c1 10.244.1.2
  k8snet-lab down lab
  k8snet-lab run --nodes 3 -- pytest --pyargs pytest_k8snet.suite   # also as a normal user

`k8snet-lab COMMAND --help` describes each command."""

FAULT_RE = re.compile(r"^(?P<name>[a-z0-9-]+)(?::(?P<nodes>[a-z0-9,-]+))?(?:=(?P<value>.+))?$")


def _fault_arg(text: str) -> tuple[str, tuple[str, ...], str | None]:
    m = FAULT_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad --fault {text!r}: use FAULT[:NODE[,NODE]][=VALUE]")
    nodes = tuple(n for n in (m["nodes"] or "").split(",") if n)
    return m["name"], nodes, m["value"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k8snet-lab", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    fault_help = ("switch FAULT on, on the given nodes (default: all) with VALUE; repeatable "
                  "(`k8snet-lab fault list` lists them)")
    u = sub.add_parser("up", help="build a lab", description="Build a lab and leave it running.")
    u.add_argument("--name", default="lab", help="lab name (default: %(default)s)")
    u.add_argument("--nodes", type=int, default=3, help=f"1..{MAX_NODES} (default: %(default)s)")
    u.add_argument("--underlay-mtu", type=int, default=1500, metavar="BYTES",
                   help="MTU of the node network (default: %(default)s)")
    u.add_argument("--overlay", choices=OVERLAYS, default=None,
                   help="how pod traffic crosses nodes: a VXLAN device (flannel.1, UDP 8472) "
                   "or host-gw routes via each peer's node address, no tunnel "
                   "(default: vxlan)")
    u.add_argument("--overlay-mtu", type=int, default=None, metavar="BYTES",
                   help="MTU of the pod network (default: the underlay MTU less 50 bytes "
                   "with vxlan, the underlay MTU with host-gw)")
    u.add_argument("--pod-cidr", default="10.244.0.0/16", metavar="CIDR",
                   help="default: %(default)s")
    u.add_argument("--node-cidr", default="172.28.128.0/24", metavar="CIDR",
                   help="default: %(default)s")
    u.add_argument("--fault", action="append", default=[], type=_fault_arg,
                   metavar="FAULT[:NODE[,NODE]][=VALUE]", help=fault_help)
    u.add_argument("--json", action="store_true", help="print the status JSON")
    u.add_argument("--kubernetes", action="store_true",
                   help="run a real Kubernetes cluster on the lab (root; builds its binaries "
                   "and images once, ~8 min) and write a kubeconfig usable from this machine")
    _shape_args(u)
    d = sub.add_parser("down", help="remove a lab and whatever a crashed run of it left",
                       description="Remove lab NAME, or with --all every lab you created "
                       "(same user and same $K8SNET_LAB_RUN). Other users' and other runs' "
                       "labs are left alone unless --everyone is given too.")
    d.add_argument("name", nargs="?")
    d.add_argument("--all", action="store_true", help="every lab you created")
    d.add_argument("--everyone", action="store_true",
                   help="with --all: every lab on this host, whoever created it")
    s = sub.add_parser("status", help="describe a lab, or list the running labs")
    s.add_argument("name", nargs="?")
    s.add_argument("--json", action="store_true")
    s.add_argument("--all", action="store_true", help="list running labs and their owners")
    f = sub.add_parser("fault", help="switch faults on and off in a running lab")
    fsub = f.add_subparsers(dest="fault_cmd", required=True, metavar="SUBCOMMAND")
    fsub.add_parser("list", help="the faults and their incidents")
    for verb in ("add", "remove"):
        fa = fsub.add_parser(verb, help=f"{verb} FAULT in lab NAME")
        fa.add_argument("name")
        fa.add_argument("fault")
        fa.add_argument("--node", action="append", default=[],
                        help="repeatable (default: every node)")
        if verb == "add":
            fa.add_argument("--value", help="the fault's value (underlay-mtu: bytes, 68..9000; "
                            "route-missing: the peer node whose pod route goes)")
    r = sub.add_parser("run", help="bring a lab up, run a command with K8SNET_LAB_NAME set, "
                       "take it down; as a normal user, inside an unprivileged user namespace",
                       description="Bring a lab up, run COMMAND with K8SNET_LAB_NAME=NAME, take the "
                       "lab down, exit with COMMAND's status (127: not found). A normal user "
                       "gets the lab inside an unprivileged user namespace.")
    r.add_argument("--name", default="lab", help="lab name (default: %(default)s)")
    r.add_argument("--nodes", type=int, default=3, help=f"1..{MAX_NODES} (default: %(default)s)")
    r.add_argument("--fault", action="append", default=[], type=_fault_arg,
                   metavar="FAULT[:NODE[,NODE]][=VALUE]", help=fault_help)
    r.add_argument("--overlay", choices=OVERLAYS, default=None,
                   help="vxlan or host-gw, as for `up` (default: vxlan)")
    r.add_argument("--kubernetes", action="store_true",
                   help="a real Kubernetes cluster on the lab (root only); COMMAND gets "
                   "KUBECONFIG and the K8SNET_* settings that point the plugin at it")
    _shape_args(r)
    r.add_argument("--userns", action="store_true",
                   help="use a user namespace even as root (what a normal user gets)")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    sub.add_parser("build", help="build the real-cluster mode's binaries and images once",
                   description="Build Kubernetes, CoreDNS, flanneld and the probe and pause images into "
                   "$K8SNET_CACHE (default /var/cache/k8snet); a no-op when they are there.")
    e = sub.add_parser("exec", help="run a command on a node (host network) or in NODE/probe",
                       description="Run COMMAND in lab NAME: TARGET is NODE (its host network), "
                       "NODE/probe or NODE/echo.")
    e.add_argument("name")
    e.add_argument("target")
    e.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    return p


def _shape_args(p: argparse.ArgumentParser) -> None:
    """The real cluster's network shape: its CNI, flannel's backend, kube-proxy's mode."""
    p.add_argument("--cni", choices=CNIS, default=None,
                   help="with --kubernetes: flannel (the real flanneld on every node, the "
                   "default) or lab (the pod network hand-wired as flannel would program it; "
                   "the only one without --kubernetes)")
    p.add_argument("--flannel-backend", choices=FLANNEL_BACKENDS, default=None,
                   help="with --cni flannel: vxlan, host-gw or wireguard (through "
                   "wireguard-go: this kernel has no WireGuard) (default: vxlan)")
    p.add_argument("--proxy-mode", choices=PROXY_MODES, default="iptables",
                   help="with --kubernetes: kube-proxy's mode (default: %(default)s)")
    p.add_argument("--ip-family", choices=IP_FAMILIES, default="ipv4",
                   help="the cluster's IP families: pods, Service, DNS and overlay in IPv4, "
                   "IPv6 (ULA fd00::/8) or both (default: %(default)s)")


def _overlay(args: argparse.Namespace) -> str:
    """--overlay, or flannel's backend: one setting, refused when the two disagree."""
    if args.cni is None:
        args.cni = "flannel" if args.kubernetes else "lab"
    if args.flannel_backend is not None and args.cni != "flannel":
        raise LabError("--flannel-backend goes with --cni flannel")
    if args.cni == "flannel" and getattr(args, "overlay_mtu", None) is not None:
        raise LabError("--overlay-mtu does not go with --cni flannel: flanneld sets the pod "
                       "MTU from the underlay's")
    if (args.flannel_backend and args.overlay
            and args.flannel_backend != args.overlay):
        raise LabError(f"--flannel-backend {args.flannel_backend} and --overlay "
                       f"{args.overlay} disagree: give one")
    return str(args.flannel_backend or args.overlay or "vxlan")


@contextmanager
def _locked_lab(name: str) -> Iterator[None]:
    """The lab's lock, for a lab that exists. ``locked`` creates /run/k8snet/.NAME.lock;
    a command on a missing lab must not leave that file behind."""
    load(name)  # fails, before any lock file exists, when there is no such lab
    with locked(name):
        try:
            yield
        finally:
            # Removed (by `down`) while we waited: the file we hold is ours alone to remove.
            if not (STATE_ROOT / name).exists():
                lock_path(name).unlink(missing_ok=True)


def _progress() -> Callable[[str], None]:
    """Prints a real cluster's bring-up stages to stderr, with the seconds since the
    command started: stdout stays the command's answer (``up --json``'s JSON, ``run``'s
    command output)."""
    start = time.monotonic()

    def say(stage: str) -> None:
        print(f"k8snet-lab: {stage} ({time.monotonic() - start:.1f} s)", file=sys.stderr,
              flush=True)
    return say


def _check_faults(wanted: list[tuple[str, tuple[str, ...], str | None]]) -> None:
    """Every --fault's name and value, refused with one line before anything else runs."""
    for fault_name, _nodes, value in wanted:
        faults.check(fault_name, value)


def _print_status(lab_name: str, as_json: bool) -> None:
    lab = load(lab_name)
    if as_json:
        print(json.dumps(describe.status_json(lab), indent=2))
        return
    print("\n".join(describe.status_lines(lab)))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except LabError as exc:
        print(f"k8snet-lab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("k8snet-lab: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.cmd == "up":
        _check_faults(args.fault)
        overlay = _overlay(args)
        overlay_mtu = (default_overlay_mtu(overlay, args.underlay_mtu, args.ip_family)
                       if args.overlay_mtu is None else args.overlay_mtu)
        spec = LabSpec(name=args.name, nodes=args.nodes, node_cidr=args.node_cidr,
                       pod_cidr=args.pod_cidr, underlay_mtu=args.underlay_mtu,
                       overlay_mtu=overlay_mtu, faults=tuple(args.fault),
                       kubernetes=args.kubernetes, overlay=overlay, cni=args.cni,
                       proxy_mode=args.proxy_mode, ip_family=args.ip_family)
        start = time.monotonic()
        lab = up(spec, progress=_progress())
        if args.json:
            print(json.dumps(describe.status_json(lab), indent=2))
        else:
            print(f"lab {lab.name} is up with {len(lab.nodes)} nodes in "
                  f"{time.monotonic() - start:.2f}s; `k8snet-lab down {lab.name}` removes it")
            if lab.kubernetes:
                print(f"Kubernetes {lab.kubernetes['version']}: "
                      f"export KUBECONFIG={lab.kubernetes['kubeconfig']}")
        return 0
    if args.cmd == "build":
        require_root()
        kube_binaries.require_tools()
        arts = kube_binaries.build()
        print(f"built: {arts.kube}, {arts.coredns}, {arts.flanneld}, {arts.wireguard_go}, "
              f"{arts.pause}, {arts.probe}")
        return 0
    if args.cmd == "down":
        if args.all:
            return _down_all(args.everyone)
        if args.everyone:
            raise LabError("--everyone goes with --all")
        if not args.name:
            raise LabError("name a lab, or use --all")
        existed = down(check_name(args.name))
        print(f"lab {args.name} {'removed' if existed else 'was not running'}")
        return 0
    if args.cmd == "status":
        if args.all or not args.name:
            names = running_labs()
            if args.json:
                print(json.dumps(names))
            elif not names:
                print("no labs running")
            else:
                me = owner.current()
                for name in names:
                    who = lab_owner(name)
                    mine = "  (yours)" if owner.owns(who, me) else ""
                    print(f"{name:24} {owner.describe(who)}{mine}")
            return 0
        _print_status(check_name(args.name), args.json)
        return 0
    if args.cmd == "fault":
        if args.fault_cmd == "list":
            for f in faults.FAULTS.values():
                scope = "NODE..." if f.per_node else "lab-wide"
                print(f"{f.name:18} incidents {f.incidents:8} {scope:9} {f.summary}")
            return 0
        require_root()
        faults.check(args.fault, args.value if args.fault_cmd == "add" else None)
        with _locked_lab(check_name(args.name)):
            lab = load(args.name)
            if args.fault_cmd == "add":
                faults.add(lab, args.fault, args.node, args.value)
                lab.save()
                print(f"{args.fault} on in {lab.name}: {', '.join(args.node) or 'all nodes'}")
            else:
                n = faults.remove(lab, args.fault, args.node)
                lab.save()
                print(f"{args.fault} off in {lab.name} ({n} node(s))")
        return 0
    if args.cmd == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise LabError("give a command after --, e.g. -- pytest --pyargs pytest_k8snet.suite")
        _check_faults(args.fault)
        overlay = _overlay(args)
        spec = LabSpec(name=args.name, nodes=args.nodes, faults=tuple(args.fault),
                       kubernetes=args.kubernetes, overlay=overlay, cni=args.cni,
                       proxy_mode=args.proxy_mode, ip_family=args.ip_family,
                       overlay_mtu=default_overlay_mtu(overlay, LabSpec.underlay_mtu,
                                                       args.ip_family))
        spec.validate()  # here too: the user-namespace re-run below passes no --cni
        if args.kubernetes:
            if args.userns:
                raise LabError("--kubernetes needs root: the kubelets need real cgroups")
            require_root()
            return run_with_cluster(spec, command, progress=_progress())
        return run(spec, command, force_userns=args.userns)
    if args.cmd == "exec":
        lab = load(check_name(args.name))
        netns_name = lab.target_netns(args.target)
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise LabError("give a command after --")
        # The lab's PATH (with sbin): `exec lab node-1 -- iptables -S` works for anyone.
        env = tool_env()
        os.execvpe("ip", ["ip", "netns", "exec", netns_name, *command], env)
    return 2


def _down_all(everyone: bool) -> int:
    """``down --all``: the caller's labs only; ``--everyone`` says loudly what it removes."""
    if everyone:
        names = running_labs()
        for name in names:
            print(f"k8snet-lab: removing {name} of {owner.describe(lab_owner(name))}",
                  file=sys.stderr)
        removed = down_all(everyone=True)
        print(f"removed {len(removed)} lab(s), everyone's"
              f"{': ' + ', '.join(removed) if removed else ''}")
        return 0
    if owner.person_uid() == 0 and owner.run_marker() is None:
        # Bare root with no run marker: everyone who logs in as root is this same "owner",
        # so "yours" would mean every root lab on the host. Ask for an explicit scope.
        raise LabError("as root (not via sudo) without K8SNET_LAB_RUN, labs cannot be told "
                       "apart by owner: remove yours by name (`k8snet-lab status --all` lists "
                       "them), set K8SNET_LAB_RUN when you bring them up, or use --all "
                       "--everyone")
    removed = down_all()
    others = [n for n in running_labs() if n not in removed]
    print(f"removed {len(removed)} lab(s){': ' + ', '.join(removed) if removed else ''}")
    if others:
        me = owner.current()
        print(f"left {len(others)} lab(s) that {owner.describe(me)} did not create: "
              + ", ".join(f"{n} ({owner.describe(lab_owner(n))})" for n in others)
              + "; `k8snet-lab down NAME` removes one, `down --all --everyone` all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
