"""The results file of a large run, streamed section by section, its long lists as columns.

``json.dumps(doc, indent=2)`` of a 1,000-node run builds one string of gigabytes (a
million pairs, each probe's entry spread over a dozen indented lines) before a byte is
written, and the file is a gigabyte. Above the per-node threshold the same document is
written a top-level key per line, and every long list of same-shaped entries (the pings,
the path-MTU searches, the verdicts) as columns (:mod:`.columns`: what repeats is said
once with its count), a column per line: tens of megabytes. :func:`.columns.read` (and
the baseline comparison) reads it back as the document it was written from. Other long
lists and maps are written an entry per line (a verdict without its empty ``message``,
``raw`` and ``finding``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from ..gcpause import no_cyclic_gc
from ..options import DEFAULT_PER_NODE_THRESHOLD
from . import columns

# Lists longer than this are written an entry per line; shorter values on one line.
LINE_PER_ENTRY = 16


def large(doc: dict[str, Any]) -> bool:
    """More nodes than the run's ``--k8s-per-node-threshold``."""
    threshold = (doc.get("options") or {}).get("per_node_threshold") \
        or DEFAULT_PER_NODE_THRESHOLD
    return len(doc.get("nodes") or []) > int(threshold)


# One encoder for every entry: json.dumps with options builds a new one per call, which
# was most of the time of a million-entry section.
_compact = json.JSONEncoder(separators=(",", ":"), default=str).encode
# Verdict fields left out when empty: every reader takes a missing one as empty (.get),
# and at 1,000 nodes four million verdicts are mostly plain passes.
EMPTY_VERDICT = (("message", ""), ("raw", ""), ("finding", None))
CHUNK = 10_000


def _slim(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    return {k: x for k, x in v.items() if (k, x) not in EMPTY_VERDICT}


def _lines(chunk: list[Any]) -> str:
    """The entries of ``chunk`` as compact JSON, one per line.

    One encoder call for the whole chunk (the C encoder; per entry, the calls cost more
    than the encoding), then a line break at every boundary between two entries, found as
    ``},{"<first key>"``. A string holding that very text would be split too: the count of
    boundaries found must be the entries' less one, else each entry is encoded alone.
    """
    text = _compact(chunk)[1:-1]
    first = next(iter(chunk[0])) if isinstance(chunk[0], dict) and chunk[0] else None
    if first is not None and all(isinstance(x, dict) and next(iter(x), None) == first
                                 for x in chunk):
        boundary = "},{" + json.dumps(first) + ":"
        if text.count(boundary) == len(chunk) - 1:
            return text.replace(boundary, "},\n{" + json.dumps(first) + ":")
    return ",\n".join(_compact(x) for x in chunk)


def _columns(fh: IO[str], section: dict[str, Any]) -> None:
    """A section as columns (:func:`.columns.encode`), a column per line."""
    fh.write(f'{{"columns":{_compact(section["columns"])},"length":{section["length"]},'
             '"keys":{\n')
    last = len(section["keys"]) - 1
    for i, (k, column) in enumerate(section["keys"].items()):
        fh.write(f"{_compact(str(k))}:{_compact(column)}" + (",\n" if i < last else "\n"))
    fh.write("}}")


def _value(fh: IO[str], value: Any, key: str = "") -> None:
    encoded = columns.encode(value) if isinstance(value, list) else None
    if encoded is not None:
        _columns(fh, encoded)
    elif isinstance(value, list) and set(map(type, value)) <= {str, int, float}:
        # Plain values (the million pair ids at 1,000 nodes): one encoder call, one line.
        fh.write(_compact(value))
    elif isinstance(value, list) and len(value) > LINE_PER_ENTRY:
        fh.write("[\n")
        slim = key == "verdicts"
        for start in range(0, len(value), CHUNK):
            chunk = value[start:start + CHUNK]
            fh.write(_lines([_slim(x) for x in chunk] if slim else chunk))
            fh.write(",\n" if start + CHUNK < len(value) else "\n")
        fh.write("]")
    elif isinstance(value, dict) and len(value) > LINE_PER_ENTRY:
        fh.write("{\n")
        last = len(value) - 1
        for i, (k, v) in enumerate(value.items()):
            fh.write(f"{json.dumps(str(k))}:{_compact(v)}" + (",\n" if i < last else "\n"))
        fh.write("}")
    else:
        fh.write(_compact(value))


def write_compact(doc: dict[str, Any], fh: IO[str]) -> None:
    """``doc`` as JSON: a top-level key per line, long lists and maps an entry per line."""
    fh.write("{\n")
    last = len(doc) - 1
    for i, (key, value) in enumerate(doc.items()):
        fh.write(json.dumps(str(key)) + ": ")
        _value(fh, value, str(key))
        fh.write(",\n" if i < last else "\n")
    fh.write("}\n")


def write_results(doc: dict[str, Any], path: Path) -> None:
    """Write ``doc`` to ``path`` through a temporary file (a reader never sees half of
    it): streamed compactly when the run is large, indented as always otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", buffering=1 << 20) as fh, no_cyclic_gc():
        if large(doc):
            write_compact(doc, fh)
        else:
            fh.write(json.dumps(doc, indent=2, default=str))
    tmp.replace(path)
