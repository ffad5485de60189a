"""One measurement document for every IP family a cluster has: the format that measure/ writes
and the judge and the reports read (so it lives outside all three).

A dual-stack cluster is measured once per family (:meth:`pytest_k8snet.measure.cluster.Cluster.for_family`).
The document keeps one list per measurement, each entry saying its ``family``; what is
one value per document (expected MTU, encapsulation, targets, pairs...) is the primary
family's at the top level and every other family's under ``by_family``. :func:`split`
gives back one family's document as a single-family run would have measured it, which
is what the judge reads (:mod:`pytest_k8snet.judge.family`).

- ``families``: the families measured, primary first (``["ipv4"]`` on most clusters)
- every entry of the list sections below: ``family`` (``ipv4`` or ``ipv6``)
- ``by_family`` ``{family: {key: value}}``: the per-document values of each family but
  the primary, absent when there is one family
"""

from __future__ import annotations

from typing import Any

# The document's sections that hold one entry per subject measured.
LIST_SECTIONS = ("ping", "path_mtu", "throughput", "http", "dns", "egress", "service",
                 "node_checks", "ports", "nodeports", "ping_pod_to_node", "probe_failures")
# One value for the whole run, whatever the family: never under by_family.
RUN_KEYS = ("families", "by_family", "evidence", "timings_s", "measured_s", "pair_mode",
            "thresholds", "nodes")


def _tagged(entries: list[Any], family: str) -> list[Any]:
    return [{**e, "family": family} if isinstance(e, dict) else e for e in entries]


def merge(primary: dict[str, Any], primary_family: str,
          others: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``primary`` with every other family's entries added (see the module docstring)."""
    out = dict(primary)
    for key in LIST_SECTIONS:
        if isinstance(out.get(key), list):
            out[key] = _tagged(out[key], primary_family)
    out["families"] = [primary_family, *others]
    if not others:
        return out
    out["by_family"] = {}
    for fam, doc in others.items():
        for key in LIST_SECTIONS:
            out[key] = list(out.get(key) or []) + _tagged(list(doc.get(key) or []), fam)
        out["by_family"][fam] = {k: v for k, v in doc.items()
                                 if k not in LIST_SECTIONS and k not in RUN_KEYS}
        for step, seconds in (doc.get("timings_s") or {}).items():
            out["timings_s"][f"{step}/{fam}"] = seconds
        out["measured_s"] = round(float(out.get("measured_s") or 0)
                                  + float(doc.get("measured_s") or 0), 2)
    return out


def families_of(doc: dict[str, Any]) -> list[str]:
    """The families a document measured; one written before families existed: IPv4."""
    return list(doc.get("families") or ["ipv4"])


def split(doc: dict[str, Any], family: str) -> dict[str, Any]:
    """``doc`` as a run measuring ``family`` alone would have written it (entries without
    ``family``, from older documents, are the primary family's)."""
    fams = families_of(doc)
    primary = fams[0]
    out = {k: v for k, v in doc.items() if k not in ("families", "by_family")}
    if family != primary:
        out.update((doc.get("by_family") or {}).get(family, {}))
    for key in LIST_SECTIONS:
        if isinstance(doc.get(key), list):
            out[key] = [e for e in doc[key]
                        if not isinstance(e, dict) or e.get("family", primary) == family]
    out["families"] = [family]
    return out
