"""The lab's own daemons: the HTTP server behind every simulated pod and world (and the
probe pods' UDP echo), and dnsmasq as the cluster DNS. Both are adopted by
:mod:`.processes` and found again by ``down``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from . import netns as ns
from . import processes
from .netns import LabError
from .plan import CLUSTER_DOMAIN, KUBELET_PORT, PROBE_PORT, WORLD_PORT
from .state import Lab

UDP_ECHO_PORT = 8081  # the plugin's probes/pmtu_udp.PORT: its DF UDP path-MTU search


def start(lab: Lab) -> None:
    """Start the HTTP server and dnsmasq; return once both serve (LabError if not)."""
    logs = lab.state_dir
    listens = []
    for node in lab.nodes:
        for kind in () if lab.kubernetes else ("probe", "echo"):
            pod = node[kind]
            listens += ["--listen", f"{pod['netns']}:{PROBE_PORT}:{pod['name']}"]
            if kind == "probe":
                listens += ["--udp-echo", f"{pod['netns']}:{UDP_ECHO_PORT}"]
        if not lab.kubernetes:  # a stand-in for the kubelet's port, for the port checks
            listens += ["--listen", f"{node['netns']}:{KUBELET_PORT}:kubelet-{node['name']}"]
    listens += ["--listen", f"{lab.world['netns']}:{WORLD_PORT}:world"]
    with open(logs / "server.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pytest_k8snet.lab.server", "--lab", lab.name, *listens],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True)
    lab.pids["server"] = server.pid
    processes.adopt(server)
    # --no-daemon: stay in the foreground and keep our uid/gid; dropping to another group
    # fails in a user namespace (setgroups is denied there).
    args = ["ip", "netns", "exec", lab.dns["netns"], "dnsmasq", "--no-daemon",
            "--conf-file=/dev/null", f"--pid-file={logs}/dnsmasq.pid", "--no-resolv", "--no-hosts",
            f"--listen-address={lab.dns['ip']}", "--bind-interfaces",
            f"--local=/{CLUSTER_DOMAIN}/", "--local=/example.com/", "--log-facility=-"]
    if lab.dns.get("ip6"):  # --ip-family ipv6|dual: AAAA records, and an IPv6 listener
        args.append(f"--listen-address={lab.dns['ip6']}")
    args += [f"--host-record={name},{','.join(ips)}" for name, ips in _records(lab).items()]
    with open(logs / "dnsmasq.log", "w") as log:
        dns = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                               stdin=subprocess.DEVNULL, start_new_session=True,
                               env=ns.tool_env())  # dnsmasq is in sbin, off a user's PATH
    lab.pids["dnsmasq"] = dns.pid
    processes.adopt(dns)
    assert server.stdout is not None
    line = server.stdout.readline().strip()  # bounded: the server binds or dies quickly
    server.stdout.close()
    if line != "ready":
        err = (logs / "server.log").read_text().strip().splitlines()
        raise LabError(f"the lab's HTTP server did not start: {err[-1] if err else 'no output'}")
    deadline = time.monotonic() + 5
    while dns.poll() is None and time.monotonic() < deadline:
        if _port_open(lab.dns["netns"], lab.dns["ip"]):
            return
        time.sleep(0.02)
    err = (logs / "dnsmasq.log").read_text().strip().splitlines()
    raise LabError(f"dnsmasq did not start: {err[-1] if err else 'no output'}")


def _records(lab: Lab) -> dict[str, list[str]]:
    """Each name's addresses, A then AAAA (one --host-record per name gives both)."""
    out: dict[str, list[str]] = {}
    for table in ("names", "names6"):
        for name, ip in lab.dns.get(table, {}).items():
            out.setdefault(name, []).append(ip)
    return out


def _port_open(netns_name: str, ip: str) -> bool:
    with ns.entered(netns_name):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((ip, 53))
    except OSError:
        return True  # dnsmasq holds it
    finally:
        s.close()
    return False
