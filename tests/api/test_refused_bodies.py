"""Bodies docs/api.md refuses are refused (issue 24 #11): the queue join and draw entry take no body, and
an admission token has no place on a first-come order."""

from __future__ import annotations

import uuid

import pytest

from tests.support import open_shop, sale_drop


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Poster", 2500)
    return owner, creator_id, product


@pytest.mark.parametrize(("mode", "route"), [("queue", "queue"), ("draw", "entries")])
def test_joining_takes_no_body_or_an_empty_object_and_refuses_any_other(api, new_user, shop, mode, route) -> None:
    drop = sale_drop(api, shop, mode, start=600, stock=5)
    path = f"/drops/{drop['drop_id']}/{route}"
    user = new_user()
    json_header = {"Content-Type": "application/json"}
    for body in ({"x": 1}, [], "text", 7, {"position": 1}):
        refused = api.post(path, user.token, json=body)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request", body
    big = api.post(path, user.token, data=b'{"pad": "' + b"x" * 9_000_000 + b'"}', headers=json_header)
    assert big.status_code == 400 and big.json()["error"]["code"] == "invalid_request"
    assert api.post(path, user.token, data=b"{", headers=json_header).status_code == 400
    # Nothing was joined by the refused bodies: the first accepted join creates the place.
    assert api.post(path, user.token).status_code == 201
    assert api.post(path, user.token, json={}).status_code == 200


def test_an_admission_token_on_a_first_come_order_is_400(api, new_user, shop) -> None:
    drop = sale_drop(api, shop, "first_come", start=-1, stock=5)
    buyer = new_user()
    body = {"drop_id": drop["drop_id"], "quantity": 1, "payment_token": "tok_threeDSecureRequired"}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    refused = api.post("/orders", buyer.token, json=body | {"admission_token": "adm_forged"}, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"
    assert "admission_token" in refused.json()["error"]["message"]
    assert api.post("/orders", buyer.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}).status_code == 201
