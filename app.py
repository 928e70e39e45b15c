"""LiveDrop's Chalice app: routes and event handlers only; the logic lives in chalicelib."""

from __future__ import annotations

from typing import Any, Callable

from chalice import Chalice

from chalicelib.config import get_settings
from chalicelib.web import guarded, json_response

app = Chalice(app_name="livedrop")
app.debug = get_settings().debug


def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """app.route with the one error mapping of chalicelib.web applied."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        return app.route(path, **options)(guarded(view))

    return register


@route("/health", methods=["GET"])
def health() -> Any:
    return json_response({"status": "ok", "stage": get_settings().stage})
