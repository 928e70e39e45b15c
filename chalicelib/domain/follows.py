"""The follow graph: exact follower counts, paginated listings, and parallel slices for fan-out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.core.errors import InvalidPageError
from chalicelib.core.validation import format_time, is_id
from chalicelib.domain.accounts import get_creator
from chalicelib.schema import responses
from chalicelib.schema.db import Transaction, TransactionCancelledError, now_ms
from chalicelib.schema.models import Creator, Follow
from chalicelib.schema.pagination import decode_page, page_body


def follow(user_id: str, creator_id: str) -> responses.Following:
    """Follow a creator; repeating it changes nothing (the row and the counter move together)."""
    tx = Transaction()
    tx.put(
        "follow",
        Follow(creator_id=creator_id, user_id=user_id, followed_at=now_ms()),
        Follow.user_id.does_not_exist(),
    )
    tx.update("creator", Creator(creator_id=creator_id), [Creator.follower_count.add(1)], Creator.creator_id.exists())
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("creator"):
            get_creator(creator_id)  # 404 creator_not_found
        if not cancelled.failed("follow"):
            raise
    return {"creator_id": creator_id, "user_id": user_id, "following": True}


def unfollow(user_id: str, creator_id: str) -> None:
    """Stop following; also fine when not following (or when no creator could have this id)."""
    if not is_id(creator_id):
        return
    tx = Transaction()
    tx.delete("follow", Follow(creator_id=creator_id, user_id=user_id), Follow.user_id.exists())
    tx.update("creator", Creator(creator_id=creator_id), [Creator.follower_count.add(-1)], Creator.creator_id.exists())
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if not cancelled.failed("follow"):
            raise


def is_following(user_id: str, creator_id: str) -> bool:
    """Whether `user_id` follows `creator_id`."""
    if not is_id(creator_id):
        return False
    return Follow.count(creator_id, Follow.user_id == user_id, limit=1) > 0


_FOLLOWING_PAGE = {"creator_id": "S", "user_id": "S", "followed_at": "N"}
_FOLLOWERS_PAGE = {"creator_id": "S", "user_id": "S"}


def list_following(user_id: str, limit: int, page: str | None) -> dict[str, Any]:
    """The creators `user_id` follows, most recently followed first."""
    start = decode_page(page, _FOLLOWING_PAGE)
    if start is not None and start["user_id"]["S"] != user_id:
        raise InvalidPageError("page belongs to another listing")
    results = Follow.by_user.query(user_id, scan_index_forward=False, limit=limit, last_evaluated_key=start)
    rows = list(results)
    names = {c.creator_id: c.name for c in Creator.batch_get({r.creator_id for r in rows})} if rows else {}
    items = [
        {"creator_id": r.creator_id, "name": names.get(r.creator_id, ""), "followed_at": format_time(r.followed_at)}
        for r in rows
    ]
    return page_body(items, results.last_evaluated_key)


def list_followers(creator_id: str, limit: int, page: str | None) -> dict[str, Any]:
    """A creator's followers in user-id order (404 for an unknown creator)."""
    get_creator(creator_id)
    start = decode_page(page, _FOLLOWERS_PAGE)
    if start is not None and start["creator_id"]["S"] != creator_id:
        raise InvalidPageError("page belongs to another listing")
    results = Follow.query(creator_id, limit=limit, last_evaluated_key=start)
    items = [{"user_id": r.user_id, "followed_at": format_time(r.followed_at)} for r in results]
    return page_body(items, results.last_evaluated_key)


@dataclass(frozen=True)
class FollowerSlice:
    """A half-open range [low, high) of follower user ids; None means unbounded."""

    low: str | None
    high: str | None

    def contains(self, user_id: str) -> bool:
        return (self.low is None or user_id >= self.low) and (self.high is None or user_id < self.high)


def follower_slices(count: int) -> list[FollowerSlice]:
    """`count` slices that together cover every possible user id exactly once.

    User ids are Cognito subs (lower-case UUIDs), so boundaries split the hex space evenly; any other
    id still falls in exactly one slice because the ranges are contiguous and unbounded at the ends.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    space = 16**4
    bounds = [f"{(space * i) // count:04x}" for i in range(1, count)]
    edges: list[str | None] = [None, *bounds, None]
    return [FollowerSlice(edges[i], edges[i + 1]) for i in range(count)]


def read_follower_slice(
    creator_id: str, part: FollowerSlice, limit: int = 500, after: str | None = None
) -> tuple[list[str], str | None]:
    """Up to `limit` follower ids of `part`, after the id `after`; returns (ids, resume-after id or None)."""
    condition = None
    if after is not None:
        condition = Follow.user_id > after
    elif part.low is not None:
        condition = Follow.user_id >= part.low
    ids: list[str] = []
    for row in Follow.query(creator_id, condition, attributes_to_get=["user_id"], page_size=min(limit + 1, 1000)):
        if part.high is not None and row.user_id >= part.high:
            return ids, None
        if len(ids) == limit:
            return ids, ids[-1]
        ids.append(row.user_id)
    return ids, None
