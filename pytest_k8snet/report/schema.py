"""The results file's schema: the document every report renders (built in
:mod:`pytest_k8snet.report.results`) and a baseline must be.

Results file, schema ``pytest-k8snet/results`` version 1
--------------------------------------------------------

A JSON object. Within one version fields are only ever added; a field that changes
meaning or goes away raises ``version``. Readers should ignore fields they do not
know. "Fixed" fields are always present in their entries (values may be ``null``
where a probe gave no number); other entry fields are informative.

Top level:

- ``schema`` ``"pytest-k8snet/results"``, ``version`` ``1``, ``plugin_version``
- ``time``: start of the run, UTC, ``YYYY-MM-DDTHH:MM:SSZ``; ``duration_s``
- ``cluster``: the cluster's identity (lab: ``kind``, ``name``, ``nodes``, ``faults``;
  kube: ``kind``, server, context ...)
- ``options``: every ``--k8s-*`` setting after precedence; ``args``: pytest's arguments
- ``nodes``: the probed node names, in cluster order
- ``expected_mtu``: the path MTU the pod network must carry (bytes), or ``null``
- ``ping`` [fixed ``{src, dst, network, loss_pct, rtt_ms}``; also ``transmitted``,
  ``received``]: small pings per ordered pair, ``network`` is ``pod`` or ``host``,
  ``rtt_ms`` the average (``null`` without replies)
- ``path_mtu`` [fixed ``{src, dst, network, bytes}``; also ``expected``, ``first_lost``,
  ``probes``, ``seconds``, ``headers``, ``protocol``]: the largest IP packet (bytes) that
  crosses, 0 if none; ``protocol`` ``udp`` when no DF ping crossed (ICMP filtered) and DF
  UDP datagrams to the probe pod's echo port measured it (absent: ``icmp``)
- ``throughput`` [fixed ``{src, dst, mbps, loss_pct}``; also ``network``, ``error``,
  ``node_port``]: iperf3 UDP across the overlay (VXLAN, UDP 8472 on the wire)
- ``http``: 1 MiB transfers, pod to pod (``dst`` a node) and to the Service
  (``dst`` ``"service"``): ``{src, dst, ok, bytes, seconds, mbps, error, ...}``
- ``dns``: ``{node, name, rcode, answers, query_ms, server, ok}``
- ``egress``: ``{node, network, attempts, failures, failure_rate, failed_ports}``
- ``service``: ``{node, attempts, failures, failure_rate, answered_by, missing_backends,
  errors}``
- ``node_checks``: ``{node, sysctls, interfaces}``; also ``routes``: each peer's probe pod
  looked up on the node's host network (``ip route get``: ``{peer, dst, peer_ip,
  peer_pod_cidrs, via, dev, src, kind, error}``); also ``kube_proxy`` ``{mode, source}``:
  kube-proxy's mode (``iptables``, ``ipvs``, ``nftables``, ``unknown``) and what said so
- ``encapsulation`` ``{node: {kind, udp_port, udp_ports, tunnels, bridged, bridges, cni,
  overhead, measured, description}}``: what each node's links show (``kind`` ``vxlan``,
  ``geneve``, ``ipip``, ``wireguard``, ``none`` or ``unknown``; ``overhead`` the bytes the
  main tunnel adds, WireGuard 60 over IPv4 and 80 over IPv6)
- ``diagnoses`` [fixed ``{cause, nodes, pairs, message}``; also ``test``, ``finding``]: one
  per failed check; ``cause`` is one of :data:`pytest_k8snet.judge.CAUSES`, ``pairs``
  read ``"node-1->node-2"``, ``finding`` the id of the finding it comes from

Added within version 1 by the measure/judge split (:mod:`pytest_k8snet.measure`,
:mod:`pytest_k8snet.judge`); present when the run took its measurement document:

- ``pairs``, ``pair_mode``, ``thresholds`` ``{loss_pct}``, ``readiness``,
  ``service_backends``, ``dns_endpoints``, ``targets``, ``measured_s``. When no node could
  run probes (an image no node could pull) every measurement section is empty and
  ``expected_mtu`` null: nothing was measured, and ``findings`` say why
- ``throughput`` entries also carry ``packets``, ``failure`` (how iperf3 failed:
  ``tool-missing``, ``exec-error``, ``interrupted``, ``timeout`` or ``network``) and
  ``attempts`` (every sample; a suspect pair is measured again and ``loss_pct`` is the
  decisive, least lossy sample); ``ping`` entries ``error``, and when ICMP errors
  answered the echoes ``errors`` (their count), ``error_kind`` (the most frequent:
  ``port-unreachable``, ``host-prohibited``, ``admin-prohibited``, ``net-prohibited``,
  ``net-unreachable``, ``host-unreachable``, ``protocol-unreachable``, ``ttl-exceeded``
  ...) and ``error_from`` (the address that sent most of them); ``egress`` ``passed_ports``
- ``ping_pod_to_node`` [``{src, dst, loss_pct, transmitted, received, error}``, and the
  ICMP error fields of ``ping``]: small pings from the source node's probe pod to the
  destination node's host network, which cross the pod's own path out of its node and the
  underlay but not the overlay; evidence for the judge, no test of their own
- ``nodeports`` [``{src, kind, ip, port, peer, state}``, ``kind`` ``nodeport``, ``peer``
  ``"the NodePort on node-2"``, ``state`` ``open``, ``refused``, ``timeout`` or
  ``error``]: a TCP connect and a small HTTP GET from every node's host network to the
  probe Service's NodePort on every other node's address; absent in older documents
  (``test_nodeport`` then skips: not measured)
- ``probe_failures``: probe runs that failed for a reason of their own (see measure.py)
- ``udp_receive_drops`` ``{node: datagrams or null}``: UDP datagrams each node's probe pod
  dropped at its own full socket buffers while UDP was measured (delivered by the path)
- ``findings`` [``{id, cause, title, summary, message, fix, nodes, pairs, checks, evidence,
  contradicting, would_contradict, root, evidence_nodes}``]: judged from the measurements
  alone; ``root`` names the finding a knock-on comes from
- ``verdicts`` [``{test, subject, outcome, message, finding, raw}``]: what each suite test
  does, with the raw probe output behind a failure. The reports colour pass and fail
  from these and from ``findings`` alone; a document without ``verdicts`` (a run that took
  no measurement document) is shown "not judged"; above ``--k8s-per-node-threshold``,
  when they are not written as columns (see below) but an entry per line, an empty
  ``message``, ``raw`` or ``finding`` is left out: a missing one is empty
- ``evidence`` ``{node: [{name, argv, exit_code, output}]}``: routes, neighbours, FDB,
  firewall rules with counters, links, offloads from the nodes of failing findings
- ``tests``: test node id -> outcome (``passed``, ``failed``, ``skipped``)
- ``baseline``: ``null``, or the comparison with ``--k8s-baseline``: ``{path, time,
  cluster, tolerance_pct, compared, regressions, improvements, not_compared}``; each
  regression is ``{kind, src, dst, node, network, before, after, message}`` with
  ``kind`` one of ``pair``, ``path_mtu``, ``throughput``, ``failure_rate``

Above ``--k8s-per-node-threshold`` the file is written compactly (:mod:`.stream`): a
top-level key per line, and every list of at least 1,000 entries that are all objects
with the same keys (``ping``, ``path_mtu``, ``ping_pod_to_node``, ``verdicts`` ...) as
``{"columns": "pytest-k8snet/columns", "length": N, "keys": {key: column}}``, a column
being ``{"runs": [[value, count], ...]}``, ``{"first": n, "deltas": [[step, count],
...]}`` or ``{"values": [...]}``, optionally with a ``table`` its values index, or
``{"prefixed": key, "has": column, "rest": column}`` (``key``'s value and ``": "`` before
the rest where ``has``). :func:`pytest_k8snet.report.columns.read` reads such a file back
as the document it was written from, entries, keys and values equal.
"""

SCHEMA = "pytest-k8snet/results"
VERSION = 1
