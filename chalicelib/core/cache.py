"""A small in-process TTL cache for warm Lambdas (no Redis in a serverless suite), with hit/miss counts."""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")
_MISSING = object()
# Every cache and remembered value of the process, cleared together by the composition root
# (bootstrap.reset and a settings override): TtlCaches join on creation, other values through `remember`.
_caches: weakref.WeakSet[TtlCache[Any]] = weakref.WeakSet()
_forgetters: list[Callable[[], None]] = []


def remember(forget: Callable[[], None]) -> Callable[[], None]:
    """Register how to forget a module-level remembered value (a key, a secret) when the root resets."""
    _forgetters.append(forget)
    return forget


def clear_all() -> None:
    """Empty every TtlCache and forget every remembered value (what was read through old settings)."""
    for cache in list(_caches):
        cache.clear()
    for forget in list(_forgetters):
        forget()


def registered() -> list[TtlCache[Any]]:
    return list(_caches)


class TtlCache(Generic[V]):
    """Keeps up to `max_items` values for `ttl_seconds` each; least recently used go first."""

    def __init__(self, name: str, ttl_seconds: float, max_items: int = 2048) -> None:
        self.name = name
        self.ttl = ttl_seconds
        self.max_items = max_items
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        _caches.add(self)

    def get(self, key: str) -> V | None:
        """The cached value, or None when absent or expired."""
        with self._lock:
            found: Any = self._items.get(key, _MISSING)
            if found is not _MISSING and found[0] > time.monotonic():
                self._items.move_to_end(key)
                self.hits += 1
                return found[1]
            self.misses += 1
            return None

    def put(self, key: str, value: V) -> V:
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value

    def get_or_load(self, key: str, load: Callable[[], V], keep: Callable[[V], bool] | None = None) -> V:
        """The cached value, or `load()` returned and stored (only if `keep(value)`, when given)."""
        found = self.get(key)
        if found is not None:
            return found
        value = load()
        return self.put(key, value) if keep is None or keep(value) else value

    def invalidate(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
