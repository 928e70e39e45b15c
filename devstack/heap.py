"""The garbage collector and the dev stack's one big heap.

In Lambda each execution environment is a process with a small heap: one function's code, clients and
caches. The dev stack holds every function's copy of the code, every environment's clients and the
embedded gateways in one interpreter, several hundred thousand objects. Python's cyclic collector
scans all of them in every full collection, with the interpreter stopped: in a 1,500-order rush at 32
buyers the dev stack process spent 2.1 s of 26 s collecting, one full collection holding every thread
for 0.34 s (2026-12-07), a pause no Lambda environment has and the rush's p99 showed.

`settle()` moves what is alive now out of the collector's reach (`gc.freeze`): the stack calls it once
it is up and after each environment's init (the code copy and clients it just made), so full
collections scan what invocations allocate, as one environment's would. Reference counting still frees
a settled object that nothing refers to; only cycles among settled objects wait for `release()`, which
the stack calls when it stops (the code copy of an environment discarded after a timeout is such a
cycle: a few megabytes held until then). The embedded AWS processes, whose heaps grow with what they
store, settle what survives each full collection (`settle_survivors`). Doing that in the stack process
too measured worse: a rush's p99 1.06 to 1.21 s in four runs, against 0.92 to 1.19 s (seven of eight
under 1 s) without it.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable


def settle(*, collect: bool = False) -> None:
    """Keep the collector off every object alive now (after a full collection first, if `collect`)."""
    if collect:
        gc.collect()
    gc.freeze()


def release() -> None:
    """Give the settled objects back to the collector (a stopped stack's cycles can then be freed)."""
    gc.unfreeze()


def settle_survivors(reclaim_every_s: float = 600.0) -> Callable[[], None]:
    """For a process whose heap grows with its data (the embedded AWS: items, stream records, messages):
    what survives a full collection is settled, so the next full collection scans only what came since,
    not every item stored (in a 1,500-order rush the embedded DynamoDB's full collections took 1.1 s,
    one of them 0.19 s with every request waiting; settled, 0.2 to 0.3 s, at most 0.07 s). Every
    `reclaim_every_s` everything is given back for one full collection, which frees the cycles that
    became garbage after they were settled. Returns the function that ends this (and gives all back)."""
    stopped = threading.Event()

    def after(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2 and not stopped.is_set():
            gc.freeze()

    def reclaim() -> None:
        while not stopped.wait(reclaim_every_s):
            gc.unfreeze()
            gc.collect()  # settles again when it ends (`after`)

    def stop() -> None:
        stopped.set()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(after)
        gc.unfreeze()

    gc.callbacks.append(after)
    threading.Thread(target=reclaim, name="heap-reclaim", daemon=True).start()
    return stop
