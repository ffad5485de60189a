"""The short cluster summary at the end of a run: a text matrix and the diagnoses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..state import State

MAX_MATRIX_NODES = 12


def matrix_lines(names: list[str], cell: dict[tuple[str, str], str]) -> list[str]:
    width = max([len(n) for n in names] + [4])
    lines = [" " * (width + 1) + " ".join(f"{n:>{width}}" for n in names)]
    for a in names:
        row = [f"{(cell.get((a, b), '') if a != b else '-'):>{width}}" for b in names]
        lines.append(f"{a:<{width}} " + " ".join(row))
    return lines


def summary(tr: Any, state: "State") -> None:
    from .results import measurements

    if state.worker is not None:
        return
    m = measurements(state)
    pings = m.get("ping-pod-56")
    if not pings and not state.diagnoses:
        return
    tr.section("k8snet cluster summary")
    if pings:
        names = sorted({k[0] for k in pings} | {k[1] for k in pings},
                       key=lambda n: (len(n), n))
        pmtu = m.get("pmtu-pod", {})
        if len(names) <= MAX_MATRIX_NODES:
            cell = {}
            for key, r in pings.items():
                text = "ok" if r.ok else f"{r.loss_pct:.0f}%"
                if key in pmtu and r.ok:
                    text = str(pmtu[key].bytes)
                cell[key] = text
            tr.write_line("pod network (path MTU where measured, else ok / loss):")
            for line in matrix_lines(names, cell):
                tr.write_line("  " + line)
        bad = sum(1 for r in pings.values() if not r.ok)
        tr.write_line(f"{len(pings)} pod pairs probed, {bad} failing")
    if state.diagnoses:
        tr.write_line("diagnoses:")
        by_cause: dict[str, list[dict[str, Any]]] = {}
        for d in state.diagnoses:
            by_cause.setdefault(d["cause"], []).append(d)
        for cause, items in by_cause.items():
            nodes = sorted({n for d in items for n in d["nodes"]})
            pairs = sorted({p for d in items for p in d["pairs"]})
            tr.write_line(f"  {cause}: {len(items)} finding(s)"
                          + (f", {len(pairs)} pair(s)" if pairs else "")
                          + (f" involving {', '.join(nodes)}" if nodes else ""), red=True)
            tr.write_line(f"    {items[0]['message']}")
