"""Registering REST routes and reading the request, once for app.py and the storefront's blueprint.

`Routes(app)` (or `Routes(blueprint)`) gives `route`, which registers a view with its path ids checked
and chalicelib.edge.web's error mapping applied, and the accessors a view reads its request through:
the body as a typed command, a query parameter, the caller's id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Blueprint, Chalice
from chalice.app import Request

from chalicelib.core.errors import (
    CreatorNotFoundError,
    DropNotFoundError,
    ForbiddenError,
    OrderNotFoundError,
    ProductNotFoundError,
)
from chalicelib.core.validation import check_path_ids, parse_command, parse_optional_command
from chalicelib.edge.web import caller_id, guarded
from chalicelib.schema.commands import JoinLine

# A path id that no id this API issues could match names nothing: the resource's 404, before any read.
PATH_IDS: dict[str, type[Exception]] = {
    "creator_id": CreatorNotFoundError,
    "product_id": ProductNotFoundError,
    "drop_id": DropNotFoundError,
    "order_id": OrderNotFoundError,
}

Command = TypeVar("Command")
View = Callable[..., Any]


class Routes:
    """The routes of one Chalice app or blueprint, and the request it is serving."""

    def __init__(self, owner: Chalice | Blueprint) -> None:
        self._owner = owner

    def route(self, path: str, check_ids: bool = True, **options: Any) -> Callable[[View], View]:
        """owner.route with path ids checked (unless the view answers for ids that name nothing itself)
        and the one error mapping of chalicelib.edge.web applied."""

        def register(view: View) -> View:
            @functools.wraps(view)
            def checked(**path_params: Any) -> Any:
                if check_ids:
                    check_path_ids(path_params, PATH_IDS)
                return view(**path_params)

            return self._owner.route(path, **options)(guarded(checked))

        return register

    def request(self) -> Request:
        """The request being served (Chalice sets it before it calls a view)."""
        current = self._owner.current_request
        if current is None:
            raise RuntimeError("no request is being served")
        return current

    def body(self, command: type[Command]) -> Command:
        """The request body as a typed command (400 invalid_request when it breaks the command's rules)."""
        return parse_command(self.request().raw_body, command)

    def no_body(self) -> None:
        """A route documented as taking no body: none, or an empty JSON object; anything else is 400."""
        parse_optional_command(self.request().raw_body, JoinLine)

    def query(self, name: str) -> str | None:
        params = self.request().query_params
        return None if params is None else params.get(name)

    def caller(self) -> str:
        """The signed-in caller's id (401 without the authorizer's claims)."""
        return caller_id(self.request())

    def me_or_403(self, user_id: str) -> str:
        """The caller's id, which must be `user_id` (self-only resources)."""
        caller = self.caller()
        if caller != user_id:
            raise ForbiddenError("you may only act as yourself")
        return caller
