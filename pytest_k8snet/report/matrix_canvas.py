"""The pair matrix of a large cluster as a canvas, with the failing pairs listed.

A table cell per pair is a million cells at 1,000 nodes: hundreds of megabytes of HTML no
browser lays out. Above the per-node threshold each pair is one character of a string
(``p`` pass, ``f`` fail, ``u`` measured but not judged, ``-`` not measured, ``x`` a node
with itself), drawn one pixel per pair on a canvas by a small script; hovering names the
pair. What a person acts on, the failing pairs, is listed as text under it, by finding.
"""

from __future__ import annotations

import json
from typing import Any

from .html_tables import e
from .stream import large
from .view import FAIL, NONE, PASS, UNJUDGED, ClusterView, listed

CODES = {PASS: "p", FAIL: "f", UNJUDGED: "u", NONE: "-"}
# Pairs named per finding in the page; the results file has every one.
LISTED_PAIRS = 2000

SCRIPT = """(function () {
  "use strict";
  var colours = {p: [46, 160, 67], f: [218, 54, 51], u: [160, 160, 160], "-": [235, 235, 235],
                 x: [255, 255, 255]};
  document.querySelectorAll("canvas.k8s-canvas").forEach(function (cv) {
    var names = JSON.parse(cv.getAttribute("data-nodes"));
    var cells = cv.getAttribute("data-cells");
    var n = names.length;
    cv.width = n; cv.height = n;
    var ctx = cv.getContext("2d");
    var img = ctx.createImageData(n, n);
    for (var i = 0; i < n * n; i++) {
      var c = colours[cells.charAt(i)] || colours["-"];
      img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2];
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    var out = document.getElementById(cv.getAttribute("data-out"));
    cv.addEventListener("mousemove", function (ev) {
      var r = cv.getBoundingClientRect();
      var col = Math.floor((ev.clientX - r.left) / r.width * n);
      var row = Math.floor((ev.clientY - r.top) / r.height * n);
      if (row < 0 || col < 0 || row >= n || col >= n || row === col) { return; }
      var code = cells.charAt(row * n + col);
      out.textContent = names[row] + "->" + names[col] + ": " +
        ({p: "pass", f: "FAIL", u: "not judged", "-": "not measured"}[code] || code);
    });
  });
})();"""


def is_large(view: ClusterView) -> bool:
    """More nodes than the run's ``--k8s-per-node-threshold``: the canvas, not a table."""
    return large(view.doc)


def cells(view: ClusterView, network: str) -> str:
    """One character per ordered pair, row by row (source), in the view's node order."""
    names = view.nodes
    out = []
    for a in names:
        row = []
        for b in names:
            if a == b:
                row.append("x")
                continue
            cell = view.cell(network, a, b)
            row.append(CODES.get(cell.status, "-") if cell is not None else "-")
        out.append("".join(row))
    return "".join(out)


def failing_list(view: ClusterView, network: str) -> str:
    """The failing pairs by finding (what failed them), every finding's pairs named."""
    by: dict[str, list[str]] = {}
    summaries: dict[str, str] = {}
    for c in view.failing(network):
        found = [str(v.get("finding")) for v in c.verdicts.values()
                 if v.get("outcome") == "failed" and v.get("finding")] if network == "pod" \
            else [str(f.get("id")) for f in c.host_findings]
        key = found[0] if found else "unattributed"
        by.setdefault(key, []).append(c.id)
    for f in view.doc.get("findings") or []:
        summaries[str(f.get("id"))] = str(f.get("summary") or "")
    if not by:
        return '<p class="k8s-muted">no failing pair</p>'
    items = []
    for fid, pairs in sorted(by.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(pairs[:LISTED_PAIRS]) + (
            f" and {len(pairs) - LISTED_PAIRS} more (the results file has them all)"
            if len(pairs) > LISTED_PAIRS else "")
        items.append(f'<li><b>{len(pairs)} pair{"s" if len(pairs) != 1 else ""}</b> '
                     f'<code>{e(fid)}</code>: {e(summaries.get(fid, ""))}'
                     f'<details><summary>the pairs</summary><p class="k8s-pairs">{e(shown)}'
                     "</p></details></li>")
    return f'<ul class="k8s-failing">{"".join(items)}</ul>'


def canvas_matrix(view: ClusterView, network: str, title: str, counts: str, idp: str = ""
                  ) -> str:
    """The matrix of ``network`` as a canvas, its counts and its failing pairs (``idp``
    prefixes the ids: a dual-stack run draws one per family)."""
    names = view.nodes
    out_id = f"k8s-canvas-{idp}{network}-pair"
    data: dict[str, Any] = {"nodes": json.dumps(names), "cells": cells(view, network)}
    return (f'<div class="k8s-grid" id="k8s-matrix-{idp}{network}">'
            f'<div class="k8s-grid-title">{e(title)} <span class="k8s-muted">{counts}</span>'
            f'</div><p class="k8s-muted">{len(names)} nodes ({e(listed(names, 3))}): one '
            "pixel per pair, source rows, destination columns; green pass, red fail, grey "
            f'not judged or not measured. <span id="{out_id}"></span></p>'
            f'<canvas class="k8s-canvas" data-network="{network}" data-out="{out_id}" '
            f'data-nodes="{e(data["nodes"])}" data-cells="{data["cells"]}" '
            'style="width:min(100%,1000px);image-rendering:pixelated;border:1px solid #ccc">'
            f"</canvas><h3>Failing pairs</h3>{failing_list(view, network)}</div>")


def script() -> str:
    return f"<script>{SCRIPT}</script>"
