"""Follows and the inbox on the follows and notifications functions themselves: a follower count that
is exactly the follow rows whatever the sequence of (repeated) follows and unfollows, the slices that
cover every follower once, and read marks that leave the unread count equal to the unread rows."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.errors import CreatorNotFoundError, InvalidRequestError
from chalicelib.core.validation import format_time
from chalicelib.delivery import notifications
from chalicelib.domain import follows
from chalicelib.schema.messages import Envelope
from chalicelib.schema.models import Creator, Follow
from tests.unit.domain.shop import examples, new_shop

BASE_MS = 1_900_000_000_000
FAST = settings(
    max_examples=examples(6), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def follower_count(creator_id: str) -> int:
    return int(Creator.get(creator_id, consistent_read=True).follower_count)


def follower_rows(creator_id: str) -> set[str]:
    return {row.user_id for row in Follow.query(creator_id, consistent_read=True)}


@FAST
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=15))
def test_the_follower_count_is_the_follow_rows_after_any_follows_and_unfollows(steps) -> None:
    creator_id = new_shop().creator_id
    users = [uuid.uuid4().hex for _ in range(4)]
    model: set[str] = set()
    for following, index in steps:
        if following:
            assert follows.follow(users[index], creator_id)["following"] is True
            model.add(users[index])
        else:
            follows.unfollow(users[index], creator_id)  # not following is fine too
            model.discard(users[index])
        assert follows.is_following(users[index], creator_id) is following
    assert follower_rows(creator_id) == model
    assert follower_count(creator_id) == len(model)


def test_following_an_unknown_creator_is_creator_not_found_and_unfollowing_it_is_fine() -> None:
    with pytest.raises(CreatorNotFoundError):
        follows.follow(uuid.uuid4().hex, "cr_nope")
    follows.unfollow(uuid.uuid4().hex, "cr_nope")
    follows.unfollow(uuid.uuid4().hex, "not an id")
    assert not follows.is_following(uuid.uuid4().hex, "cr_nope")


def test_pages_and_slices_list_every_follower_exactly_once() -> None:
    creator_id = new_shop().creator_id
    users = {uuid.uuid4().hex for _ in range(23)}
    for user in users:
        follows.follow(user, creator_id)
    seen: list[str] = []
    page = None
    while True:
        body = follows.list_followers(creator_id, 5, page)
        seen += [item["user_id"] for item in body["items"]]
        page = body.get("next_page")
        if not page:
            break
    assert sorted(seen) == sorted(users)
    sliced: list[str] = []
    for part in follows.follower_slices(4):
        after = None
        while True:
            ids, after = follows.read_follower_slice(creator_id, part, limit=4, after=after)
            sliced += ids
            if after is None:
                break
    assert sorted(sliced) == sorted(users)


# --- the inbox -----------------------------------------------------------------------------------
def deliver(user_id: str, offsets_ms: list[int]) -> list[Envelope]:
    """Inbox rows for `user_id` as the consumers write them, at BASE_MS + each offset."""
    events = []
    for offset in offsets_ms:
        at = BASE_MS + offset
        event = Envelope(str(uuid.uuid4()), "drop_started", format_time(at) or "", at, {"drop_id": "dr_x"})
        notifications.write_inbox(event, [user_id])
        events.append(event)
    return events


def unread_rows(user_id: str) -> set[str]:
    return {item["notification_id"] for item in notifications.inbox(user_id, 100, None)["items"] if not item["read"]}


marks = st.lists(
    st.one_of(
        st.tuples(st.just("one"), st.integers(0, 5)),  # by id (an index past the rows is an unknown id)
        st.tuples(st.just("up_to"), st.integers(-1000, 6000)),
    ),
    max_size=6,
)


@FAST
@given(offsets=st.lists(st.integers(0, 5000), min_size=1, max_size=5), plan=marks)
def test_marks_leave_the_unread_count_equal_to_the_unread_rows_and_repeat_safely(offsets, plan) -> None:
    user = uuid.uuid4().hex
    events = deliver(user, offsets)
    unread = {event.event_id: event.occurred_at_ms for event in events}
    for kind, value in plan:
        if kind == "one":
            target = events[value].event_id if value < len(events) else str(uuid.uuid4())
            expected = {target} & set(unread)
            answer = notifications.mark_read(user, notification_id=target)
        else:
            expected = {event_id for event_id, at in unread.items() if at <= BASE_MS + value}
            answer = notifications.mark_read(user, up_to_ms=BASE_MS + value)
        for event_id in expected:
            del unread[event_id]
        assert answer == {"marked": len(expected), "unread": len(unread)}
        assert unread_rows(user) == set(unread) and notifications.unread_count(user) == len(unread)


def test_a_mark_names_exactly_one_of_an_id_or_a_time_and_touches_only_ones_own_rows() -> None:
    owner, other = uuid.uuid4().hex, uuid.uuid4().hex
    (event,) = deliver(owner, [0])
    with pytest.raises(InvalidRequestError):
        notifications.mark_read(owner)
    with pytest.raises(InvalidRequestError):
        notifications.mark_read(owner, up_to_ms=BASE_MS, notification_id=event.event_id)
    assert notifications.mark_read(other, notification_id=event.event_id) == {"marked": 0, "unread": 0}
    assert notifications.unread_count(owner) == 1
    deliver(owner, [10_000])
    notifications.mark_read(owner, up_to_ms=BASE_MS + 20_000)
    deliver(owner, [30_000])  # one arriving after the mark is unread
    assert notifications.unread_count(owner) == 1
