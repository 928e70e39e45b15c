"""Inbox read state: an unread count that matches the rows, marking one or all up to a time, retries safe."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.validation import format_time
from chalicelib.delivery import notifications
from chalicelib.schema.messages import Envelope

BASE_MS = 1_900_000_000_000


def deliver(user_id: str, offsets_ms: list[int]) -> list[Envelope]:
    """Inbox rows for `user_id`, as the consumers write them, at BASE_MS + each offset."""
    events = []
    for offset in offsets_ms:
        at = BASE_MS + offset
        event = Envelope(str(uuid.uuid4()), "drop_started", format_time(at) or "", at, {"drop_id": "dr_x"})
        notifications.write_inbox(event, [user_id])
        events.append(event)
    return events


@pytest.fixture(scope="module")
def reader(new_user_factory):
    return new_user_factory(name="Reader")


def inbox(api, user) -> dict:
    response = api.get(f"/users/{user.user_id}/notifications", user.token)
    assert response.status_code == 200, response.text
    return response.json()


def mark(api, user, body) -> dict:
    response = api.post(f"/users/{user.user_id}/notifications/read", user.token, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_unread_count_matches_the_rows_and_marking_is_idempotent(api, new_user) -> None:
    user = new_user()
    first, second, third = deliver(user.user_id, [0, 1000, 2000])
    page = inbox(api, user)
    assert page["unread"] == 3 == sum(not item["read"] for item in page["items"])

    assert mark(api, user, {"notification_id": second.event_id}) == {"marked": 1, "unread": 2}
    assert mark(api, user, {"notification_id": second.event_id}) == {"marked": 0, "unread": 2}
    page = inbox(api, user)
    assert {item["notification_id"]: item["read"] for item in page["items"]} == {
        first.event_id: False,
        second.event_id: True,
        third.event_id: False,
    }
    assert page["unread"] == 2

    # Up to the first one's time: only it (the second is read already, the third is later).
    assert mark(api, user, {"up_to": first.occurred_at}) == {"marked": 1, "unread": 1}
    assert mark(api, user, {"up_to": format_time(BASE_MS + 5000)}) == {"marked": 1, "unread": 0}
    page = inbox(api, user)
    assert page["unread"] == 0 and all(item["read"] for item in page["items"])


def test_a_new_notification_after_marking_is_unread(api, new_user) -> None:
    user = new_user()
    deliver(user.user_id, [0])
    mark(api, user, {"up_to": format_time(BASE_MS)})
    (later,) = deliver(user.user_id, [1])
    page = inbox(api, user)
    assert page["unread"] == 1 and page["items"][0]["notification_id"] == later.event_id
    assert page["items"][0]["read"] is False


def test_unknown_ids_and_other_peoples_rows_mark_nothing(api, new_user) -> None:
    user, other = new_user(), new_user()
    (theirs,) = deliver(other.user_id, [0])
    assert mark(api, user, {"notification_id": theirs.event_id}) == {"marked": 0, "unread": 0}
    assert mark(api, user, {"notification_id": "nope"}) == {"marked": 0, "unread": 0}
    assert inbox(api, other)["unread"] == 1
    forbidden = api.post(f"/users/{other.user_id}/notifications/read", user.token, json={"up_to": theirs.occurred_at})
    assert forbidden.status_code == 403


@pytest.mark.parametrize("up_to", ["2300-01-01T00:00:00Z", "2286-11-20T17:46:40Z", "9999-12-31T23:59:59Z"])
def test_up_to_a_far_future_time_marks_every_earlier_notification(api, new_user, up_to) -> None:
    """issue 24 #9: times past 2286 have more digits than the sort keys and compared as text before."""
    user = new_user()
    deliver(user.user_id, [0, 1000])
    assert mark(api, user, {"up_to": up_to}) == {"marked": 2, "unread": 0}


def test_up_to_a_time_before_every_notification_marks_none(api, new_user) -> None:
    user = new_user()
    deliver(user.user_id, [0])
    assert mark(api, user, {"up_to": "1970-01-01T00:00:00Z"}) == {"marked": 0, "unread": 1}
    assert mark(api, user, {"up_to": format_time(BASE_MS - 1)}) == {"marked": 0, "unread": 1}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.dictionaries(
            st.sampled_from(["up_to", "notification_id", "extra"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=80), st.booleans(), st.lists(st.integers())),
            max_size=3,
        ),
        st.lists(st.integers(), max_size=2),
        st.text(max_size=20),
    )
)
def test_any_body_is_a_200_or_a_clear_400(api, reader, body) -> None:
    response = api.post(f"/users/{reader.user_id}/notifications/read", reader.token, json=body)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "invalid_request"
    else:
        assert set(response.json()) == {"marked", "unread"}
