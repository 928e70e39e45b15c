"""GET /creators?query=: creators found by name, a case-insensitive match of the start of the name or
of any word in it.

Creators are few next to orders or follows, and a search is a rare read: it scans the Creators table
with a filter on the case-folded name (`search_name`) rather than keeping an index of every word.
A page reads on until it holds `limit` matches or a bounded number of scan pages, so it may hold
fewer than `limit` with a `next_page` still to read.

Creators made before search existed have no `search_name`. Rather than a backfill someone must remember
to run in every stage (and that a restored backup would undo), the scan also returns the rows that lack
it, and their names are matched here, as the filter would have matched them: such a row is found from
the first request, at no extra read (a scan reads every row of its page whatever the filter)."""

from __future__ import annotations

from typing import Any

from chalicelib.core.errors import InvalidRequestError
from chalicelib.core.validation import check_text
from chalicelib.domain.accounts import creator_view, search_key
from chalicelib.schema.commands import MAX_CREATOR_QUERY
from chalicelib.schema.models import Creator
from chalicelib.schema.pagination import decode_page, encode_page, render_each

_PAGE = {"creator_id": "S"}
SCAN_PAGE = 200  # items one scan call reads
MAX_SCAN_CALLS = 5  # per request: a page answers in bounded time however rare the matches


def parse_query(raw: str | None) -> str:
    """The search text, case-folded: 1 to MAX_CREATOR_QUERY characters that are not all spaces."""
    if raw is None or not raw.strip():
        raise InvalidRequestError("query is required")
    if len(raw) > MAX_CREATOR_QUERY:
        raise InvalidRequestError(f"query length must be at most {MAX_CREATOR_QUERY}")
    return search_key(check_text("query", raw))


def search_creators(raw_query: str | None, limit: int, page: str | None) -> dict[str, Any]:
    """Creators whose name, or a word of it, starts with the query."""
    text = parse_query(raw_query)
    matches = (
        Creator.search_name.startswith(text)
        | Creator.search_name.contains(" " + text)
        | Creator.search_name.does_not_exist()  # an old row: matched on its name below
    )
    position = decode_page(page, _PAGE)
    found: list[Creator] = []
    # One scan call per page of the table (PynamoDB's own iterator would read on until it found enough).
    pages = Creator.scan(matches, last_evaluated_key=position, page_size=SCAN_PAGE).page_iter
    for _, page_read in zip(range(MAX_SCAN_CALLS), pages, strict=False):
        for raw in page_read.get("Items", []):
            creator = Creator.from_raw_data(raw)
            if not name_matches(creator, text):
                continue
            found.append(creator)
            if len(found) == limit:
                # Stop at this creator: the next page starts right after it.
                return _page(found, {"creator_id": {"S": found[-1].creator_id}})
        position = pages.last_evaluated_key
        if not position:
            break
    return _page(found, position)


def name_matches(creator: Creator, text: str) -> bool:
    """The scan filter's rule, on the creator's name as search stores it (computed for an old row)."""
    name = creator.search_name if creator.search_name is not None else search_key(creator.name or "")
    return name.startswith(text) or (" " + text) in name


def _page(found: list[Creator], position: dict[str, Any] | None) -> dict[str, Any]:
    return {"items": render_each(found, creator_view), "next_page": encode_page(position)}
