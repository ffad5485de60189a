"""Long lists of same-shaped entries as columns: how the results file of a large run holds
its pair sections and its verdicts (written by :mod:`.stream`, read back by :func:`read`).

At 1,000 nodes the ping section alone is two million entries that say the same thing
almost everywhere ("pod", 0% loss, 3 of 3 received): one JSON object per entry repeats
every key and every healthy value, a gigabyte in all. As columns, each key's values are
one list, written as the shortest of:

- ``runs`` ``[[value, count], ...]``: what repeats (a network, a healthy loss, ``null``);
  a column whose values are one number type only, so that ``0`` and ``0.0`` never merge;
- ``first`` and ``deltas`` (runs of the differences): integers that count up, such as
  node indices in pair order;
- ``values``: everything else (a real cluster's round-trip times), as they are;

and a column of strings that repeat (node names, tests, outcomes) is a ``table`` of its
distinct strings and a column of indices into it, itself encoded as above. A column of
strings that mostly start with another column's value (a verdict's message with its
subject: ``node-1->node-2: 1 MiB transfer not measured here ...``) is ``prefixed``: which
rows start so, and the rest of each, which then repeats.

A section so encoded is ``{"columns": "pytest-k8snet/columns", "length": N, "keys":
{key: column}}``; :func:`expand` gives back the list of entries, equal to what was written.
Lists whose entries are not all objects with the same keys stay as they are.
"""

from __future__ import annotations

import json
from itertools import accumulate, chain, groupby, islice, repeat
from operator import add, itemgetter, mul, sub
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ENCODING = "pytest-k8snet/columns"
# Columns whose strings mostly start with another column's value (:func:`prefixed`).
HEADS = {"message": "subject"}
# Fewer entries than this are not worth the columns (one line each is readable).
MIN_ENTRIES = 1000
SCALARS = frozenset({str, int, float, bool, type(None)})
# 0 == 0.0 == False: a run may only hold one of these types, or it would change a value's.
NUMBERS = frozenset({int, float, bool})


def _runs(values: list[Any], limit: int) -> list[list[Any]] | None:
    """The runs of ``values``, None when there are more than ``limit``."""
    # groupby walks the list in C; only the runs cost a Python step each, and counting
    # stops at the first run past the limit.
    runs = [[v, len(list(g))] for v, g in islice(groupby(values), limit + 1)]
    return runs if len(runs) <= limit else None


def _ints(values: list[int], limit: int) -> dict[str, Any]:
    runs = _runs(values, limit)
    if runs is not None:
        return {"runs": runs}
    deltas = _runs(list(map(sub, values[1:], values[:-1])), limit)
    if deltas is not None:
        return {"first": values[0], "deltas": deltas}
    return {"values": values}


def encode_column(values: list[Any]) -> dict[str, Any]:
    """One column, in the shortest of the forms in the module docstring."""
    # Runs (and deltas) pay when they are few; a run costs a Python step to count (the
    # values in it do not), so counting gives up past one run per 64 values (or 256).
    limit = max(256, len(values) // 64)
    types = set(map(type, values))
    if types == {int}:
        return _ints(values, limit)
    runs = _runs(values, limit) if types <= SCALARS and len(types & NUMBERS) <= 1 else None
    if runs is not None:
        return {"runs": runs}
    if types == {str}:
        table = list(dict.fromkeys(values))
        if len(table) <= len(values) // 2:
            index = {s: i for i, s in enumerate(table)}
            return {"table": table, **_ints(list(map(index.__getitem__, values)), limit)}
    return {"values": values}


def prefixed(values: list[Any], heads: list[Any]) -> dict[str, Any] | None:
    """A column of strings most of which start with the same row's ``heads`` value and
    ``": "`` (a verdict's message starts with its subject: ``node-1->node-2: 1 MiB
    transfer not measured here ...``): which rows do (``has``) and the rest of each
    (``rest``), which then repeats. None when fewer than half the rows do."""
    if set(map(type, values)) != {str} or set(map(type, heads)) != {str}:
        return None
    starts = list(map("{}: ".format, heads))
    has = list(map(str.startswith, values, starts))
    if has.count(True) * 2 < len(values):
        return None
    rest = list(map(str.removeprefix, values, starts))  # C loops, as everywhere here
    return {"has": encode_column(has), "rest": encode_column(rest)}


def decode_column(column: dict[str, Any], heads: dict[str, list[Any]] | None = None
                  ) -> list[Any]:
    """The values of a column written by :func:`encode_column` (or :func:`prefixed`:
    ``heads`` are the section's other columns, decoded)."""
    if "prefixed" in column:
        starts = list(map("{}: ".format, (heads or {})[column["prefixed"]]))
        has, rest = decode_column(column["has"]), decode_column(column["rest"])
        # The head where the row has it ("node-1->node-2: " * True), "" where not.
        return list(map(add, map(mul, starts, has), rest))
    if "values" in column:
        values = list(column["values"])
    elif "runs" in column:
        values = list(chain.from_iterable(repeat(v, n) for v, n in column["runs"]))
    else:
        steps = chain.from_iterable(repeat(d, n) for d, n in column["deltas"])
        values = list(accumulate(chain([column["first"]], steps)))
    if "table" in column:
        values = list(map(column["table"].__getitem__, values))
    return values


def encode(entries: list[Any], heads: dict[str, str] | None = None) -> dict[str, Any] | None:
    """``entries`` as columns; None when they are too few or not all objects with the same
    keys (they are then written as they are). ``heads`` (default :data:`HEADS`) names
    the columns whose strings may mostly start with another column's value."""
    if len(entries) < MIN_ENTRIES or set(map(type, entries)) != {dict}:
        return None
    keys = list(entries[0])
    if not keys or set(map(len, entries)) != {len(keys)}:
        return None
    try:
        values = {k: list(map(itemgetter(k), entries)) for k in keys}
    except KeyError:  # same number of keys, not the same keys
        return None
    columns = {}
    for k in keys:
        head = (HEADS if heads is None else heads).get(k)
        column = prefixed(values[k], values[head]) if head in values and head != k else None
        columns[k] = {"prefixed": head, **column} if column is not None \
            else encode_column(values[k])
    return {"columns": ENCODING, "length": len(entries), "keys": columns}


def is_encoded(value: Any) -> bool:
    return isinstance(value, dict) and value.get("columns") == ENCODING


def decode(section: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a section written by :func:`encode`."""
    keys = list(section["keys"])
    plain = {k: decode_column(c) for k, c in section["keys"].items() if "prefixed" not in c}
    cols = [plain[k] if k in plain else decode_column(section["keys"][k], plain) for k in keys]
    if any(len(c) != section["length"] for c in cols):
        raise ValueError(f"a column of {section['length']} entries holds another count")
    return list(map(dict, map(zip, repeat(keys), zip(*cols))))


def expand(doc: dict[str, Any], only: Iterable[str] | None = None) -> dict[str, Any]:
    """``doc`` with every section written as columns (or those of ``only``) turned back
    into its entries (in place; a document without any is returned as it is)."""
    wanted = None if only is None else set(only)
    for key, value in doc.items():
        if is_encoded(value) and (wanted is None or key in wanted):
            doc[key] = decode(value)
    return doc


def read(path: str | Path) -> Any:
    """A results file (either form) as the document it was written from."""
    doc = json.loads(Path(path).read_text())
    return expand(doc) if isinstance(doc, dict) else doc
