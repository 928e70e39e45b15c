"""The OpenAPI 3 document of the REST API, kept in one file beside this module (openapi.json)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).with_name("openapi.json")


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The parsed document (read once per Lambda)."""
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded
