"""How our long-running processes set up CPython's cyclic garbage collector.

Why: perf, sampling every process during bench/cluster.py's saturation phase, found the
collector's own C functions at 6-8 % of each engine's CPU and 12 % of the load generator's.
With the default young-generation threshold (700 net allocations) a batch of quanta triggers
several young collections, the objects that live a few seconds (pending quanta, their results,
recent quanta kept for auditors) are promoted on the way, and every full collection then walks
the whole heap again: the engine's state, Django and every imported module.

So each process calls `settle()` once its long-lived objects exist (modules imported, state
loaded). It then
- collects the young generation every 50 000 net allocations instead of 700: a young
  collection takes a few milliseconds at most, and garbage cycles wait at most that many
  allocations (little memory);
- collects once and freezes what survives (`gc.freeze`), so later collections never walk it
  again. Frozen objects are still freed by reference counting; only cycles among them would
  stay.

Nothing here changes what any node computes, only when the collector runs.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 50_000


def settle() -> None:
    """Raises the young-generation threshold (the older generations keep their defaults),
    collects once, then moves every surviving object out of the collector's sight."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    gc.collect()
    gc.freeze()
