"""E-mail and Web Push end to end on the dev stack: the real event chain, the embedded SES, and a push
service of the test's own on loopback."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.core.validation import parse_time
from chalicelib.delivery import serving
from chalicelib.domain import admissions, lines
from chalicelib.schema.models import Admission, Line, WebPushSubscription
from tests.e2e.reach_support import Browser, PushService, deliver_queue_idle, emails_to, settled
from tests.e2e.support import make_drop, make_shop, send_envelope
from tests.support import iso, place_line, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture()
def push_service():
    service = PushService()
    yield service
    service.stop()


def follower(api, new_user, creator_id: str):
    fan = new_user(name="Fan")
    assert api.post(f"/creators/{creator_id}/follow", fan.token).status_code == 200
    return fan


def drop_started(creator_id: str, drop_id: str, event_id: str | None = None) -> dict[str, Any]:
    """A drop_started event on the notify queue, as the events topic delivers it."""
    return send_envelope("drop_started", {"drop_id": drop_id, "creator_id": creator_id}, event_id=event_id)


def test_a_follower_gets_one_drop_started_email_and_none_after_the_one_click_unsubscribe(api, new_user) -> None:
    owner = new_user(name="Star")
    creator_id, product_id = make_shop(api, owner.token)
    fan = follower(api, new_user, creator_id)
    drop = make_drop(api, owner.token, creator_id, product_id, start=2.0)

    # The drop starts on its schedule: the stream, the topic, fan-out, one slice of followers, SES.
    mails = wait_for(lambda: emails_to(api, fan.email), timeout=60)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["subject"] == "A drop you follow just started"
    assert f"#/drop/{drop['drop_id']}" in mail["text"]
    assert mail["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    link = mail["list_unsubscribe"].strip("<>")
    assert link.startswith(f"{api.base_url}/unsubscribe?token=")
    assert link in mail["text"]

    # The same event again, as a retried slice of followers: the e-mail was claimed, it is not sent again.
    event_id = next(
        item["notification_id"] for item in api.get(f"/users/{fan.user_id}/notifications", fan.token).json()["items"]
    )
    envelope = {
        "event_id": event_id,
        "event_type": "drop_started",
        "occurred_at": iso(),
        "data": {"drop_id": drop["drop_id"], "creator_id": creator_id},
    }
    from chalicelib.delivery import notifications

    notifications.enqueue_deliveries(
        [notifications.slice_message(notifications.Envelope.parse(envelope), creator_id, None, None, "0")]
    )
    wait_for(deliver_queue_idle, timeout=60)
    assert len(emails_to(api, fan.email)) == 1

    # The one-click POST of RFC 8058 (what a mail provider sends for its Unsubscribe button).
    path = link[len(api.base_url) :]
    shown = api.get(path)
    assert shown.json() == {"channel": "email", "event": "drop_started", "enabled": True}
    done = api.post(
        path, data="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"channel": "email", "event": "drop_started", "enabled": False}
    settings = api.get(f"/users/{fan.user_id}/notification-settings", fan.token).json()
    assert settings["email"] == {"drop_started": False, "order_confirmed": True, "draw_won": True}

    # The next drop: in the inbox, not in the mailbox.
    following = drop_started(creator_id, drop["drop_id"])
    settled(api, fan, following["event_id"])
    assert len(emails_to(api, fan.email)) == 1


def test_a_push_reaches_the_loopback_push_service_encrypted_and_signed_then_410_forgets_it(
    api, new_user, push_service
) -> None:
    owner = new_user(name="Star")
    creator_id, product_id = make_shop(api, owner.token)
    fan = follower(api, new_user, creator_id)
    browser = Browser()
    path = f"/sub/{uuid.uuid4().hex}"
    stored = api.post(
        f"/users/{fan.user_id}/push-subscriptions", fan.token, json=browser.subscription(push_service.url + path)
    )
    assert stored.status_code == 201, stored.text
    drop_id = make_drop(api, owner.token, creator_id, product_id, start=600)["drop_id"]

    event = drop_started(creator_id, drop_id)
    pushes = wait_for(lambda: push_service.pushes(path), timeout=60)
    assert len(pushes) == 1
    push = pushes[0]
    assert push.headers["content-encoding"] == "aes128gcm"
    assert int(push.headers["ttl"]) > 0
    scheme, _, params = push.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    # The token is signed with the key of `k`, the stage's public VAPID key, for this push service.
    assert fields["k"] == api.get("/push/vapid-public-key").json()["public_key"]
    point = jwt.utils.base64url_decode(fields["k"])
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    claims = jwt.decode(fields["t"], key, algorithms=["ES256"], audience=push_service.url)
    assert claims["sub"].startswith("mailto:")
    # Only the subscription's private key opens it, to the event's frame.
    frame = json.loads(browser.decrypt(push.body))
    assert frame["type"] == "drop_started" and frame["event_id"] == event["event_id"]
    assert frame["data"] == {"drop_id": drop_id, "creator_id": creator_id}

    # The push service has forgotten the browser: the subscription goes, and the next event sends nothing.
    push_service.status = 410
    drop_started(creator_id, drop_id)
    wait_for(lambda: not list(WebPushSubscription.query(fan.user_id)), timeout=60)
    assert len(push_service.pushes(path)) == 2
    push_service.status = 201
    last = drop_started(creator_id, drop_id)
    settled(api, fan, last["event_id"])
    assert len(push_service.pushes(path)) == 2


def test_a_user_who_opted_out_gets_neither_email_nor_push(api, new_user, push_service) -> None:
    owner = new_user(name="Star")
    creator_id, product_id = make_shop(api, owner.token)
    fan = follower(api, new_user, creator_id)
    browser, path = Browser(), f"/sub/{uuid.uuid4().hex}"
    assert (
        api.post(
            f"/users/{fan.user_id}/push-subscriptions", fan.token, json=browser.subscription(push_service.url + path)
        ).status_code
        == 201
    )
    off = {"email": {"drop_started": False}, "web_push": {"drop_started": False}}
    assert api.call("PUT", f"/users/{fan.user_id}/notification-settings", fan.token, json=off).status_code == 200
    witness = follower(api, new_user, creator_id)  # opted in: shows the event did go out
    drop_id = make_drop(api, owner.token, creator_id, product_id, start=600)["drop_id"]

    event = drop_started(creator_id, drop_id)
    wait_for(lambda: emails_to(api, witness.email), timeout=60)
    settled(api, fan, event["event_id"])
    assert emails_to(api, fan.email) == []
    assert push_service.pushes(path) == []


def test_a_buyer_gets_the_confirmation_and_a_draw_winner_the_link_to_buy(api, new_user) -> None:
    owner = new_user(name="Star")
    creator_id, product_id = make_shop(api, owner.token)
    buyer = new_user(name="Buyer")
    live = make_drop(api, owner.token, creator_id, product_id, start=-5)
    body = {"drop_id": live["drop_id"], "quantity": 1, "payment_token": "tok_visa"}
    order = api.post("/orders", buyer.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}).json()
    mails = wait_for(lambda: emails_to(api, buyer.email), timeout=60)
    assert [mail["subject"] for mail in mails] == ["Your order is confirmed"]
    assert order["order_id"] in mails[0]["text"] and "#/orders" in mails[0]["text"]

    # A draw of one unit with one entry: the winner's e-mail links to the drop, never carries the token.
    winner = new_user(name="Lucky")
    draw = make_drop(api, owner.token, creator_id, product_id, start=30, sale_mode="draw", stock=1)
    drop_id = draw["drop_id"]
    Line(drop_id=drop_id).update(actions=[Line.active.remove()])  # the test drives this line's clock
    lines.enter_draw(winner.user_id, drop_id, at_ms=parse_time("entries_open_at", draw["draw"]["entries_open_at"]) + 1)
    start = parse_time("start_time", draw["start_time"])
    serving.advance(drop_id, start)  # the draw: handed to the lines queue
    place_line(drop_id)
    serving.advance(drop_id, start + 1)  # the winner's purchase window opens
    won = wait_for(lambda: emails_to(api, winner.email), timeout=60)
    assert [mail["subject"] for mail in won] == ["You won the draw: your unit is waiting"]
    assert f"#/drop/{drop_id}" in won[0]["text"]
    entry = Admission.get(drop_id, winner.user_id, consistent_read=True)
    token = admissions.issue_token(winner.user_id, drop_id, int(entry.admission_expires))
    assert token not in won[0]["text"]
