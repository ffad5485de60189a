"""``k8snet-lab``: bring labs up and down, switch faults, and run commands inside them."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from . import faults
from .lab import LabSpec, down, down_all, load, locked, require_root, running_labs, up
from .netns import LabError

FAULT_RE = re.compile(r"^(?P<name>[a-z0-9-]+)(?::(?P<nodes>[a-z0-9,-]+))?(?:=(?P<value>.+))?$")


def _fault_arg(text: str) -> tuple[str, tuple[str, ...], str | None]:
    m = FAULT_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad --fault {text!r}: use FAULT[:NODE[,NODE]][=VALUE]")
    nodes = tuple(n for n in (m["nodes"] or "").split(",") if n)
    return m["name"], nodes, m["value"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k8snet-lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="build a lab")
    u.add_argument("--name", default="lab")
    u.add_argument("--nodes", type=int, default=3)
    u.add_argument("--underlay-mtu", type=int, default=1500)
    u.add_argument("--overlay-mtu", type=int, default=1450)
    u.add_argument("--pod-cidr", default="10.244.0.0/16")
    u.add_argument("--node-cidr", default="172.28.128.0/24")
    u.add_argument("--fault", action="append", default=[], type=_fault_arg,
                   metavar="FAULT[:NODE[,NODE]][=VALUE]")
    u.add_argument("--json", action="store_true", help="print the status JSON")
    d = sub.add_parser("down", help="remove a lab and whatever a crashed run of it left")
    d.add_argument("name", nargs="?")
    d.add_argument("--all", action="store_true")
    s = sub.add_parser("status", help="describe a lab")
    s.add_argument("name", nargs="?")
    s.add_argument("--json", action="store_true")
    s.add_argument("--all", action="store_true", help="list running labs")
    f = sub.add_parser("fault", help="switch faults on and off")
    fsub = f.add_subparsers(dest="fault_cmd", required=True)
    fsub.add_parser("list", help="the faults and their incidents")
    for verb in ("add", "remove"):
        fa = fsub.add_parser(verb)
        fa.add_argument("name")
        fa.add_argument("fault")
        fa.add_argument("--node", action="append", default=[])
        if verb == "add":
            fa.add_argument("--value")
    r = sub.add_parser("run", help="bring a lab up, run a command with K8SNET_LAB set, take it "
                       "down; as a normal user, inside an unprivileged user namespace")
    r.add_argument("--name", default="lab")
    r.add_argument("--nodes", type=int, default=3)
    r.add_argument("--fault", action="append", default=[], type=_fault_arg,
                   metavar="FAULT[:NODE[,NODE]][=VALUE]")
    r.add_argument("--userns", action="store_true",
                   help="use a user namespace even as root (what a normal user gets)")
    r.add_argument("command", nargs=argparse.REMAINDER)
    e = sub.add_parser("exec", help="run a command on a node (host network) or in NODE/probe")
    e.add_argument("name")
    e.add_argument("target")
    e.add_argument("command", nargs=argparse.REMAINDER)
    return p


def _print_status(lab_name: str, as_json: bool) -> None:
    lab = load(lab_name)
    if as_json:
        print(json.dumps(lab.status(), indent=2))
        return
    spec = lab.spec
    print(f"lab {lab.name}: {len(lab.nodes)} nodes, node network {spec['node_cidr']}, "
          f"Pod CIDR {spec['pod_cidr']}, underlay MTU {spec['underlay_mtu']}, "
          f"overlay MTU {spec['overlay_mtu']}")
    for node in lab.nodes:
        print(f"  {node['name']:8} {node['ip']:15} pods {node['pod_cidr']:18} "
              f"probe {node['probe']['ip']}  ({node['netns']})")
    print(f"  service {lab.service['fqdn']} {lab.service['ip']}:{lab.service['port']}  "
          f"dns {lab.dns['ip']}  world {lab.world['name']} {lab.world['ip']}")
    active = ", ".join(f"{f['name']}{':' + f['node'] if f['node'] else ''}"
                       f"{'=' + f['value'] if f['value'] else ''}" for f in lab.faults)
    print(f"  faults: {active or 'none'}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except LabError as exc:
        print(f"k8snet-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("k8snet-lab: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.cmd == "up":
        for fault_name, _, _ in args.fault:
            faults.get(fault_name)
        spec = LabSpec(name=args.name, nodes=args.nodes, node_cidr=args.node_cidr,
                       pod_cidr=args.pod_cidr, underlay_mtu=args.underlay_mtu,
                       overlay_mtu=args.overlay_mtu, faults=tuple(args.fault))
        start = time.monotonic()
        lab = up(spec)
        if args.json:
            print(json.dumps(lab.status(), indent=2))
        else:
            print(f"lab {lab.name} is up with {len(lab.nodes)} nodes in "
                  f"{time.monotonic() - start:.2f}s; `k8snet-lab down {lab.name}` removes it")
        return 0
    if args.cmd == "down":
        if args.all:
            names = down_all()
            print(f"removed {len(names)} lab(s){': ' + ', '.join(names) if names else ''}")
            return 0
        if not args.name:
            raise LabError("name a lab, or use --all")
        existed = down(args.name)
        print(f"lab {args.name} {'removed' if existed else 'was not running'}")
        return 0
    if args.cmd == "status":
        if args.all or not args.name:
            names = running_labs()
            if args.json:
                print(json.dumps(names))
            else:
                print("\n".join(names) if names else "no labs running")
            return 0
        _print_status(args.name, args.json)
        return 0
    if args.cmd == "fault":
        if args.fault_cmd == "list":
            for f in faults.FAULTS.values():
                scope = "NODE..." if f.per_node else "lab-wide"
                print(f"{f.name:18} incidents {f.incidents:8} {scope:9} {f.summary}")
            return 0
        require_root()
        faults.get(args.fault)
        with locked(args.name):
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
        from .userns import run

        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise LabError("give a command after --, e.g. -- pytest --pyargs pytest_k8snet.suite")
        spec = LabSpec(name=args.name, nodes=args.nodes, faults=tuple(args.fault))
        return run(spec, command, force_userns=args.userns)
    if args.cmd == "exec":
        lab = load(args.name)
        netns_name = lab.target_netns(args.target)
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise LabError("give a command after --")
        os.execvp("ip", ["ip", "netns", "exec", netns_name, *command])
    return 2


if __name__ == "__main__":
    sys.exit(main())
