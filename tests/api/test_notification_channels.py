"""Notification settings, push subscriptions and unsubscribe links through the REST gateway."""

from __future__ import annotations

import base64
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.schema.models import WebPushSubscription
from tests.e2e.reach_support import Browser, b64

EVENTS = ("drop_started", "order_confirmed", "draw_won")
ALL_ON = {"email": dict.fromkeys(EVENTS, True), "web_push": dict.fromkeys(EVENTS, True)}


def keys() -> dict[str, str]:
    """A browser's subscription keys: a real P-256 public point and a 16-byte auth secret."""
    return dict(Browser().subscription("https://push.example.com/")["keys"])


def put(api, user, body):
    return api.call("PUT", f"/users/{user.user_id}/notification-settings", user.token, json=body)


def test_settings_start_at_their_defaults_and_a_put_changes_only_the_switches_it_names(api, new_user) -> None:
    fan = new_user()
    shown = api.get(f"/users/{fan.user_id}/notification-settings", fan.token)
    assert shown.status_code == 200
    assert shown.json() == {**ALL_ON, "updated_at": None}
    changed = put(api, fan, {"web_push": {"order_confirmed": False}})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["email"] == ALL_ON["email"]
    assert body["web_push"] == {"drop_started": True, "order_confirmed": False, "draw_won": True}
    assert body["updated_at"]
    again = put(api, fan, {"email": {"draw_won": False}}).json()
    assert again["web_push"]["order_confirmed"] is False and again["email"]["draw_won"] is False
    assert api.get(f"/users/{fan.user_id}/notification-settings", fan.token).json() == again


def test_settings_are_only_ones_own(api, new_user) -> None:
    fan, other = new_user(), new_user()
    path = f"/users/{fan.user_id}/notification-settings"
    assert api.get(path, other.token).status_code == 403
    assert api.call("PUT", path, other.token, json={"email": {"drop_started": False}}).status_code == 403
    assert api.get(path).status_code == 401
    assert api.get(path, fan.token).json()["email"]["drop_started"] is True


switch = st.one_of(st.booleans(), st.none(), st.integers(), st.text(max_size=3))
channel = st.dictionaries(st.sampled_from([*EVENTS, "sold_out", "Drop_Started"]), switch, max_size=4)
bodies = st.dictionaries(st.sampled_from(["email", "web_push", "sms"]), st.one_of(channel, st.booleans()), max_size=3)


# Each example signs a user up: the rule itself runs 60 examples or more in the unit tier
# (tests/unit/domain/test_notification_settings.py); these prove it through HTTP.
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_a_put_is_applied_whole_or_refused_with_400_never_in_part(api, new_user, body) -> None:
    fan = new_user()
    valid = all(
        name in ("email", "web_push")
        and isinstance(given, dict)
        and all(kind in EVENTS and isinstance(value, bool) for kind, value in given.items())
        for name, given in body.items()
        if given is not None
    )
    answer = put(api, fan, body)
    stored = api.get(f"/users/{fan.user_id}/notification-settings", fan.token).json()
    if valid:
        assert answer.status_code == 200, answer.text
        for name, given in body.items():
            for kind, value in (given or {}).items():
                assert stored[name][kind] is value
    else:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
        assert stored == {**ALL_ON, "updated_at": None}


def test_push_subscriptions_take_https_push_services_and_well_formed_keys(api, new_user) -> None:
    fan = new_user()
    path = f"/users/{fan.user_id}/push-subscriptions"
    good = {"endpoint": "https://push.example.com/send/abc", "expirationTime": None, "keys": keys()}
    made = api.post(path, fan.token, json=good)
    assert made.status_code == 201, made.text
    assert made.json()["endpoint"] == good["endpoint"]
    assert api.post(path, fan.token, json=good).status_code == 201  # the same browser again: replaced
    assert [row.endpoint for row in WebPushSubscription.query(fan.user_id)] == [good["endpoint"]]
    for endpoint in (
        "http://push.example.com/send/abc",  # not https
        "https://10.0.0.1/send",  # an address, not a push service's host
        "https://localhost/send",
        "ftp://push.example.com/x",
        "http://127.0.0.2:9/x",  # loopback is only the dev stack's 127.0.0.1
    ):
        refused = api.post(path, fan.token, json={**good, "endpoint": endpoint})
        assert refused.status_code == 400, endpoint
        assert refused.json()["error"]["code"] == "invalid_request"
    off_curve = b"\x04" + bytes(range(64))  # uncompressed form, but not a point of P-256: nothing could encrypt to it
    compressed = b"\x02" + base64.urlsafe_b64decode(good["keys"]["p256dh"] + "==")[1:33]
    for bad in (
        {**keys(), "p256dh": b64(off_curve)},
        {**keys(), "p256dh": b64(compressed)},
        {**keys(), "p256dh": b64(os.urandom(65))},
        {**keys(), "auth": b64(os.urandom(8))},
    ):
        refused = api.post(path, fan.token, json={**good, "keys": bad})
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["code"] == "invalid_request"
    assert api.post(path, fan.token, json={**good, "keys": {"p256dh": keys()["p256dh"]}}).status_code == 400
    assert api.post(path, new_user().token, json=good).status_code == 403
    gone = api.delete(path, fan.token, json={"endpoint": good["endpoint"]})
    assert gone.status_code == 204
    assert list(WebPushSubscription.query(fan.user_id)) == []
    assert api.delete(path, fan.token, json={"endpoint": good["endpoint"]}).status_code == 204


def test_the_vapid_public_key_is_one_p256_point_per_stage(api) -> None:
    first = api.get("/push/vapid-public-key")
    assert first.status_code == 200
    point = base64.urlsafe_b64decode(first.json()["public_key"] + "==")
    assert len(point) == 65 and point[0] == 4
    assert api.get("/push/vapid-public-key").json() == first.json()


def test_an_unsubscribe_link_shows_then_turns_off_its_one_switch(api, new_user) -> None:
    from chalicelib.domain import preferences

    fan = new_user()
    token = preferences.unsubscribe_token(fan.user_id, "order_confirmed")
    path = f"/unsubscribe?token={token}"
    page = api.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "order confirmations" in page.text and 'method="post"' in page.text
    assert api.get(path).json() == {"channel": "email", "event": "order_confirmed", "enabled": True}
    done = api.post(path)  # no body at all: a script's or a browser's POST
    assert done.status_code == 200, done.text
    assert done.json()["enabled"] is False
    assert api.post(path).status_code == 200  # again: no change
    shown = api.get(f"/users/{fan.user_id}/notification-settings", fan.token).json()
    assert shown["email"] == {"drop_started": True, "order_confirmed": False, "draw_won": True}
    assert shown["web_push"] == ALL_ON["web_push"]


def test_an_altered_unsubscribe_token_is_refused_and_changes_nothing(api, new_user) -> None:
    from chalicelib.domain import preferences

    fan = new_user()
    token = preferences.unsubscribe_token(fan.user_id, "drop_started")
    payload, _, signature = token.partition(".")
    other = preferences.unsubscribe_token(new_user().user_id, "drop_started").partition(".")[0]
    for bad in (f"{other}.{signature}", payload, f"{payload}.", "", "x.y", token[:-2]):
        for method in ("GET", "POST"):
            answer = api.call(method, f"/unsubscribe?token={bad}")
            assert answer.status_code == 400, (bad, method)
            assert answer.json()["error"]["code"] == "invalid_unsubscribe_link"
    assert api.post("/unsubscribe").status_code == 400
    assert api.get(f"/users/{fan.user_id}/notification-settings", fan.token).json()["email"]["drop_started"] is True
