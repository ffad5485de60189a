"""No cyclic garbage collection while a large document is judged or reported.

At 1,000 nodes the judge and the reports make millions of small objects (a verdict per test
and pair, a matrix cell per pair) and no reference cycles; each time the allocations pass
the collector's threshold it walks every live object again, for nothing: 20-40% of their
time. Reference counting still frees everything as usual; the collector is back on (if it
was on) when the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
