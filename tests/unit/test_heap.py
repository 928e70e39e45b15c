"""The dev stack keeps the garbage collector off its long-lived objects (devstack.heap)."""

from __future__ import annotations

import gc
import threading
import weakref

from devstack import heap


class _Cycle:
    def __init__(self) -> None:
        self.me = self  # only the cyclic collector can free it


def test_settled_objects_are_left_alone_until_released() -> None:
    try:
        cycle = _Cycle()
        ref = weakref.ref(cycle)
        heap.settle(collect=True)
        del cycle
        gc.collect()
        assert ref() is not None  # settled: a full collection does not look at it
        heap.release()
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert ref() is None
    finally:
        heap.release()


def test_survivors_of_a_full_collection_are_settled_and_given_back_on_the_clock() -> None:
    stop = heap.settle_survivors(reclaim_every_s=0.05)
    try:
        gc.collect()
        assert gc.get_freeze_count() > 0  # what survived is settled
        cycle = _Cycle()
        ref = weakref.ref(cycle)
        gc.collect()  # it survives (it is referred to) and is settled
        del cycle
        reclaimed = threading.Event()
        gc.callbacks.append(lambda phase, info: phase == "stop" and ref() is None and reclaimed.set())
        try:
            # The reclaim gives everything back and collects: the cycle is freed, the rest settled again.
            assert reclaimed.wait(10)
            assert gc.get_freeze_count() > 0
        finally:
            gc.callbacks.pop()
    finally:
        stop()
    assert gc.get_freeze_count() == 0
