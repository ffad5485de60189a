"""A dual-stack run's results, one IP family at a time, for the matrices.

The reports draw one pod and one host matrix per family: each from the family's own
document (:func:`pytest_k8snet.families.split`), whose verdicts and findings are
that family's, with the pair subjects as a single-family run writes them
(``node-1->node-2``, not ``node-1->node-2/ipv6``), so that the cells find them.
"""

from __future__ import annotations

from typing import Any

from ..families import families_of, split

NAMES = {"ipv4": "IPv4", "ipv6": "IPv6"}


def family_docs(doc: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """``[(None, doc)]`` for a single-family run, else ``(family, its document)`` each."""
    fams = families_of(doc)
    if len(fams) < 2:
        return [(None, doc)]
    return [(fam, _family_results(doc, fam)) for fam in fams]


def _family_results(doc: dict[str, Any], fam: str) -> dict[str, Any]:
    out = split(doc, fam)
    suffix = f"/{fam}"
    out["verdicts"] = [
        {**v, "subject": str(v.get("subject"))[:-len(suffix)]}
        if str(v.get("subject")).endswith(suffix) else v
        for v in doc.get("verdicts") or []
        if str(v.get("subject")).endswith(suffix) or "->" not in str(v.get("subject"))]
    out["findings"] = [f for f in doc.get("findings") or [] if f.get("family") in (None, fam)]
    out["diagnoses"] = [d for d in doc.get("diagnoses") or []
                        if d.get("family", fam) == fam
                        and not _other_family(str(d.get("finding") or ""), fam)]
    return out


def _other_family(finding_id: str, fam: str) -> bool:
    return any(finding_id.endswith(f"/{f}") for f in NAMES if f != fam)


def titled(title: str, family: str | None) -> str:
    """``pod network`` → ``pod network, IPv6`` on a dual-stack run."""
    return title if family is None else f"{title}, {NAMES.get(family, family)}"
