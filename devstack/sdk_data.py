"""The AWS SDK's data files, parsed once per dev stack process instead of once per client.

Every botocore session has a loader of its own, and every client the app builds comes from a session
of its own (boto3 makes one per `Session()`, PynamoDB one per model's connection), so each client
parses botocore's JSON afresh: `endpoints.json` (about 1 MB), the service's model and its endpoint
rules, some 80 ms of CPU per client. A Lambda environment pays that in its own process. The dev stack
runs every function's own copy of the app in one process (devstack.app_copies), so each copy builds its
twenty-odd clients again, on two shared cores, inside the invocations' scaled timeouts: the first
requests of each copy timed out, and every environment replacing a timed-out one started a new copy
that paid it all again.

The data is read-only and the same for every session with the same search paths, so `install` keeps
what the loaders' two parsing methods answer in one process-wide cache, keyed by the loader's search
paths, its extras and the call's arguments (a loader's own per-instance cache keys on the arguments
only). Module globals of the app stay per copy: only the SDK's parsed files are shared.

It also remembers what botocore's `sanitize_user_agent_string_component` answers, a pure function of its
two arguments: botocore rebuilds the User-Agent header for every request, cleaning each of its
components character by character, which was 5 % of the dev stack process's CPU in an order rush.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from botocore import loaders, useragent

_lock = threading.Lock()
_installed = False
_parsed: dict[tuple[Any, ...], Any] = {}
# The Loader methods that parse JSON files (load_service_model goes through load_data_with_path too).
PARSING_METHODS = ("load_data_with_path", "load_service_model")


def _shared(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def parsed_once(self: loaders.Loader, *args: Any, **kwargs: Any) -> Any:
        key = (method.__name__, tuple(self.search_paths), tuple(self.extras_types), args, tuple(sorted(kwargs.items())))
        found = _parsed.get(key)
        if found is None:
            found = method(self, *args, **kwargs)  # raises DataNotFoundError for what does not exist
            found = _parsed.setdefault(key, found)
        return found

    return parsed_once


def install() -> None:
    """Process-wide and idempotent: botocore's loaders parse each data file once."""
    global _installed
    with _lock:
        if _installed:
            return
        for name in PARSING_METHODS:
            setattr(loaders.Loader, name, _shared(getattr(loaders.Loader, name)))
        # (The header's components are the SDK's, the service's and the operation's names: a few hundred.)
        useragent.sanitize_user_agent_string_component = functools.lru_cache(maxsize=4096)(
            useragent.sanitize_user_agent_string_component
        )
        _installed = True


def parsed_files() -> int:
    """How many distinct answers the shared cache holds (for tests)."""
    return len(_parsed)
