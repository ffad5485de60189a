"""Shortening a message for a one-line place: at a word boundary, marked with an ellipsis.

A message cut mid-word (``... i/o t``) reads as a different error, so no layer slices
text by characters; where a message must stay short it goes through here, and the full
text stays in the measurement document (the results file) wherever it is kept.
"""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` as is when it fits in ``limit`` characters, else its longest run of whole
    words that fits with the ellipsis after it (a single overlong word is cut: nothing
    else fits)."""
    if len(text) <= limit:
        return text
    room = max(limit - len(ELLIPSIS), 0)
    head = text[:room + 1]
    cut = max(head.rfind(c) for c in " \n\t")
    kept = head[:cut] if cut > 0 else text[:room]
    return kept.rstrip().rstrip(",;:") + ELLIPSIS


def shorten_start(text: str, limit: int) -> str:
    """The end of ``text`` (where a tool's error usually is) in ``limit`` characters,
    starting at a word boundary after the ellipsis."""
    if len(text) <= limit:
        return text
    room = max(limit - len(ELLIPSIS), 0)
    tail = text[len(text) - room - 1:]
    cut = min((i for i in (tail.find(c) for c in " \n\t") if i >= 0), default=-1)
    kept = tail[cut + 1:] if 0 <= cut < len(tail) - 1 else text[len(text) - room:]
    return ELLIPSIS + kept.lstrip()
