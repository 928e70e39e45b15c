"""Creator search finds a creator stored before search existed (no search_name) exactly as it finds the
same creator stored today: the fallback in chalicelib.domain.search is the scan filter's own rule."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chalicelib.domain import search
from chalicelib.domain.accounts import search_key
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Creator
from tests.unit.domain.shop import examples

FAST = settings(
    max_examples=examples(10), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
words = st.text(alphabet="aBç ", min_size=1, max_size=6)


def stored(name: str, today: bool) -> str:
    creator = Creator(
        creator_id=f"cr_{uuid.uuid4().hex}",
        owner_user_id=uuid.uuid4().hex,
        name=name,
        follower_count=0,
        created_at=now_ms(),
        search_name=search_key(name) if today else None,
    )
    creator.save()
    return creator.creator_id


def found(query: str) -> set[str]:
    ids: set[str] = set()
    page = None
    while True:
        body = search.search_creators(query, 100, page)
        ids |= {item["creator_id"] for item in body["items"]}
        page = body["next_page"]
        if not page:
            return ids


@FAST
@given(name=words, query=words.filter(lambda q: q.strip()))
@example(name="Wombat  Works", query="WOMBAT w")
@example(name="Wombat Works", query="orks")
def test_an_old_creator_is_found_exactly_when_the_same_creator_stored_today_is(name, query) -> None:
    tag = uuid.uuid4().hex[:8]  # keeps each example's creators apart from every other's
    old, new = stored(f"{tag} {name}", today=False), stored(f"{tag} {name}", today=True)
    hits = found(f"{tag} {query}")
    assert (old in hits) == (new in hits)
    assert (new in hits) == search_key(f"{tag} {name}").startswith(search_key(f"{tag} {query}"))
