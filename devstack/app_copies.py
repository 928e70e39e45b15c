"""Each function's own copy of the app's code, as each Lambda environment imports it afresh.

In Lambda every execution environment is a process of its own: module globals (caches, clients, pools,
the composition root's settings) belong to one environment of one function. The dev stack runs every
function in one process, so each function imports `app` and `chalicelib` afresh at its first
environment's init (a cold start) and runs its handlers from that copy: a cache `api` fills is not
`fanout`'s, and the environment replacing one discarded after a timeout imports afresh
(devstack.environments). Environments of one function share their copy: a copy per environment would
cost every cold start a whole import, serialized, which a rush of new environments cannot afford.
Third-party packages (boto3, pynamodb, chalice) stay shared: they hold no state of the app's.

A fresh import swaps the app's entries out of `sys.modules` for its duration (under a lock) and puts
them back, so code outside the environments (the gateways, the tests) keeps the stack's own copy. Code
of a copy never imports the app's modules at call time (they are imported at module level), so nothing
looks them up in `sys.modules` while another environment imports. Compiled code is cached: a copy costs
the modules' execution only.

Tests reach every copy at once, present and future, through `patched` and `overridden` (the stack's
`patched`/`override`): a patch applies to the stack's copy and to every environment's, including
environments started while it is active, and is undone in all of them after the block.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import CodeType, ModuleType
from typing import Any

from devstack import sdk_data

# The app's code: app.py and the chalicelib package (what Lambda packages as the function's code).
APP_MODULE = "app"
PACKAGE = "chalicelib"


def is_app_module(name: str) -> bool:
    """Whether `name` is one of the app's own modules (copied per environment)."""
    return name in (APP_MODULE, PACKAGE) or name.startswith(PACKAGE + ".")


class AppCopy:
    """One environment's modules of the app, by name (`app`, `chalicelib`, `chalicelib.domain.catalog`, ...)."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        self.modules = modules

    def module(self, name: str) -> ModuleType:
        """The copy's module `name`, e.g. "chalicelib.delivery.consumers"."""
        return self.modules[name]

    def handler(self, name: str) -> Callable[..., Any]:
        """The attribute `name` of the copy's app.py (a Lambda handler, or `app` for the REST API)."""
        return getattr(self.modules[APP_MODULE], name)


# A patch applies itself to one copy and returns what undoes it there.
Patch = Callable[[AppCopy], Callable[[], None]]

_import_lock = threading.Lock()
_state_lock = threading.RLock()
_code: dict[str, CodeType] = {}
# The active patches, each with what undoes it in each copy it was applied to (weakly: a discarded
# environment's copy goes with its patches).
_patches: dict[int, tuple[Patch, list[tuple[weakref.ref[AppCopy], Callable[[], None]]]]] = {}
# Every environment's copy alive, for patches applied later.
_copies: weakref.WeakSet[AppCopy] = weakref.WeakSet()


class _CachedLoader(importlib.machinery.SourceFileLoader):
    """Loads a module of the app with the code compiled the first time (compiling is most of an import)."""

    def get_code(self, fullname: str) -> CodeType | None:
        found = _code.get(self.path)
        if found is None:
            found = super().get_code(fullname)
            if found is not None:
                _code[self.path] = found
        return found


class _AppFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if not is_app_module(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _CachedLoader(spec.loader.name, spec.loader.path)
        return spec


_finder = _AppFinder()


def main_copy() -> AppCopy:
    """The copy code outside the environments uses: the app's modules in `sys.modules` (imported if needed)."""
    importlib.import_module(APP_MODULE)
    return AppCopy({name: module for name, module in sys.modules.items() if is_app_module(name)})


def fresh_copy() -> AppCopy:
    """Import `app` and `chalicelib` afresh, apart from every other copy, with the active patches applied."""
    sdk_data.install()  # a copy builds its own clients: botocore's data files are parsed once for all
    main_copy()  # the stack's own copy first, so the swap below always has one to put back
    with _import_lock:
        saved = {name: module for name, module in sys.modules.items() if is_app_module(name)}
        sys.meta_path.insert(0, _finder)
        try:
            for name in saved:
                del sys.modules[name]
            importlib.import_module(APP_MODULE)
        finally:
            sys.meta_path.remove(_finder)
            fresh = {name: sys.modules.pop(name) for name in list(sys.modules) if is_app_module(name)}
            sys.modules.update(saved)
    copy = AppCopy(fresh)
    with _state_lock:
        for patch, undo in _patches.values():
            undo.append((weakref.ref(copy), patch(copy)))
        _copies.add(copy)
    return copy


@contextmanager
def applied(patch: Patch) -> Iterator[None]:
    """Apply `patch` to the stack's copy and every environment's, present and started during the block;
    undo it in all of them after the block."""
    with _state_lock:
        main = main_copy()  # held here: the stack's copy is not in _copies
        undo = [(weakref.ref(copy), patch(copy)) for copy in (main, *_copies)]
        _patches[id(patch)] = (patch, undo)
    try:
        yield
    finally:
        with _state_lock:
            del _patches[id(patch)]
            for copy, restore in reversed(undo):
                if copy() is not None:
                    restore()


def every(module: str) -> list[ModuleType]:
    """The app's module `module` in the stack's copy and in every environment's alive now (to read, or to
    act on as every environment at once: a test clearing a cache)."""
    with _state_lock:
        return [main_copy().module(module), *(copy.module(module) for copy in _copies)]


def patched(module: str, **attributes: Any) -> Any:
    """`applied` for setting attributes of the app's module `module` (e.g. "chalicelib.delivery.consumers")."""

    def patch(copy: AppCopy) -> Callable[[], None]:
        target = copy.module(module)
        missing = object()
        before = {name: target.__dict__.get(name, missing) for name in attributes}
        for name, value in attributes.items():
            setattr(target, name, value)

        def undo() -> None:
            for name, value in before.items():
                if value is missing:
                    delattr(target, name)
                else:
                    setattr(target, name, value)

        return undo

    return applied(patch)


def overridden(**dependencies: Any) -> Any:
    """`applied` for chalicelib.wiring.bootstrap.override(**dependencies) in every copy."""

    def patch(copy: AppCopy) -> Callable[[], None]:
        block = copy.module("chalicelib.wiring.bootstrap").override(**dependencies)
        block.__enter__()
        return lambda: block.__exit__(None, None, None)

    return applied(patch)
