"""LiveDrop runtime: everything that ships in the Lambda zip besides app.py."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def sibling(name: str) -> Any:
    """The module chalicelib.`name` of this very import of the package, for a function that cannot import
    it at module level (an import cycle). `import` inside a function looks the module up in sys.modules,
    which the dev stack does not keep per execution environment (it imports the app once per
    environment, devstack.app_copies); the package's own attribute is this import's module."""
    found = globals().get(name)
    if isinstance(found, ModuleType):
        return found
    return importlib.import_module(f"{__name__}.{name}")  # nothing imported it yet (a script, a test)
