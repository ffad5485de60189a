"""Control-plane ports: what every node's host network reaches of the control plane."""

from __future__ import annotations

from ..probes import ports
from .engine import Engine


def control_plane_ports(engine: Engine) -> dict[str, list[ports.PortCheck]]:
    """From every node's host network, at once: the API server, every other node's
    kubelet (10250) and etcd (2379, 2380) and the probe Service's NodePort, the cluster
    DNS over UDP and TCP. One exec per node; a refused connect means no listener there,
    not a dropped port. The NodePort checks (kind ``nodeport``) are test_nodeport's: they
    share this exec, and the document gives them a section of their own."""
    cp = engine.backend.control_plane()
    node_port = engine.backend.targets().node_port
    dns_name = f"kubernetes.default.svc.{cp.cluster_domain}"
    timeout = max(2.0, min(engine.settings.timeout, 5.0))

    def checks(src: str) -> list[ports.PortCheck]:
        out = [ports.PortCheck("tcp", ip, port, "the API server") for ip, port in
               cp.api_servers]
        for node in engine.nodes:
            if node.name != src:
                out += [ports.PortCheck("tcp", node.ip, port, f"{what} on {node.name}")
                        for port, what in ((10250, "the kubelet"), (2379, "etcd"),
                                           (2380, "etcd (peers)"))]
                # Other nodes' addresses only, never localhost: kube-proxy's nftables
                # mode does not answer NodePorts there.
                if node_port:
                    out.append(ports.PortCheck("nodeport", node.ip, node_port,
                                               f"the NodePort on {node.name}"))
        if cp.cluster_dns:
            out += [ports.PortCheck(kind, cp.cluster_dns, 53, "the cluster DNS")
                    for kind in ("dns-udp", "dns-tcp")]
        return out

    def measure(src: str, wanted: list[ports.PortCheck]) -> list[ports.PortCheck]:
        res = engine.exec(engine.endpoint(src, "host"), ports.argv(wanted, timeout, dns_name),
                          timeout=ports.lane_length(len(wanted)) * (timeout + 1) + 10)
        return ports.parse(wanted, res.stdout)

    def one(src: str) -> list[ports.PortCheck]:
        found = measure(src, checks(src))
        # A connect that timed out is a dropped port only if it times out again: on a
        # starved machine a SYN or the check's own start-up can miss the deadline once.
        suspect = [c for c in found if c.state == "timeout"]
        if suspect:
            again = {c.key: c for c in measure(src, suspect)}
            found = [again.get(c.key, c) if c.state == "timeout" else c for c in found]
        return found

    return engine.each("ports", engine.node_names, one)
