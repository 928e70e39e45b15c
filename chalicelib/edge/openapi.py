"""The OpenAPI 3 document of the REST API, kept in one file beside this module (openapi.json).

Its request schemas and parameter limits are generated from the declarations of chalicelib.schema.commands,
the same rules validation enforces; a test checks that the file equals what `generated` makes of it.
After changing a rule, `python -m chalicelib.edge.openapi` writes them into the file again.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalicelib.core.validation import object_schema
from chalicelib.schema.commands import IDEMPOTENCY_KEY, PAGE_SIZE, PATH_PARAMETERS, REQUEST_BODIES

DOCUMENT = Path(__file__).with_name("openapi.json")


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The parsed document (read once per Lambda)."""
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def request_schema(command: type) -> dict[str, Any]:
    """A command class as the JSON Schema of its request body: no field but the declared ones."""
    return object_schema(command)


def generated(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with every request body schema, path id, `?limit=` and Idempotency-Key written from the
    declarations of chalicelib.schema.commands (the rest of the document is kept as it is)."""
    out = copy.deepcopy(doc)
    schemas = out["components"]["schemas"]
    for command in REQUEST_BODIES:
        schemas[command.__name__] = request_schema(command)
    for item in out["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                place, name = parameter["in"], parameter["name"]
                if place == "path":
                    parameter["schema"] = PATH_PARAMETERS[name].json_schema()
                elif (place, name) == ("query", "limit"):
                    parameter["schema"] = PAGE_SIZE.json_schema()
                elif (place, name) == ("header", "Idempotency-Key"):
                    parameter["schema"] = IDEMPOTENCY_KEY.json_schema()
    return out


def write() -> None:
    """Rewrite openapi.json with the generated request schemas and limits."""
    DOCUMENT.write_text(json.dumps(generated(json.loads(DOCUMENT.read_text())), indent=1, ensure_ascii=False))


if __name__ == "__main__":
    write()
