"""Sign-up, log-in, tokens and who may call what (docs/api.md "Auth and users", "Conventions")."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.core.errors import UnauthorizedError
from chalicelib.domain.tokens import TokenVerifier
from tests.e2e.reach_support import Browser
from tests.support import iso, open_shop


def test_sign_up_log_in_and_me(api, new_user) -> None:
    user = new_user(name="Ada")
    me = api.get("/me", user.token)
    assert me.status_code == 200
    assert me.json() == {"user_id": user.user_id, "email": user.email, "name": "Ada", "creator_id": None}


def test_refresh_gives_a_working_id_token(api, new_user) -> None:
    user = new_user()
    refreshed = api.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refreshed.status_code == 200
    assert api.get("/me", refreshed.json()["id_token"]).status_code == 200
    assert api.post("/auth/refresh", json={"refresh_token": "nope"}).status_code == 401


def test_wrong_password_and_unknown_user_are_401(api, new_user) -> None:
    user = new_user()
    wrong = api.post("/auth/login", json={"email": user.email, "password": user.password + "x"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    unknown = api.post("/auth/login", json={"email": "nobody@example.com", "password": "whatever1"})
    assert unknown.status_code == 401


def test_duplicate_sign_up_is_409(api, new_user) -> None:
    user = new_user()
    again = api.post("/auth/signup", json={"email": user.email, "password": user.password, "name": "x"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "user_exists"


def test_weak_password_is_400(api) -> None:
    response = api.post("/auth/signup", json={"email": "weak@example.com", "password": "short", "name": "x"})
    assert response.status_code == 400


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_tampered_and_garbage_tokens_are_401(api, new_user) -> None:
    user = new_user()
    for token in (_tamper(user.token), "garbage", user.token[:-4] + "AAAA"):
        response = api.get("/me", token)
        assert response.status_code == 401, token
    assert api.get("/me").status_code == 401


def test_creator_profile_once_per_user(api, new_user) -> None:
    user = new_user(name="Bo")
    made = api.post("/creators", user.token, json={"name": "Bo's", "profile": "prints"})
    assert made.status_code == 201
    creator = made.json()
    assert creator["follower_count"] == 0
    assert api.get("/me", user.token).json()["creator_id"] == creator["creator_id"]
    assert api.get(f"/creators/{creator['creator_id']}").json() == creator
    again = api.post("/creators", user.token, json={"name": "Bo 2"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_creator"
    assert api.get("/creators/cr_nope").json()["error"]["code"] == "creator_not_found"


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x" * 101}, {"name": 3}, {"name": "ok", "profile": "p" * 2001}, {"name": "a", "x": 1}],
)
def test_creator_bad_input_is_400(api, new_user, body) -> None:
    user = new_user()
    response = api.post("/creators", user.token, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_who_may_call_what(api, new_user, app_module) -> None:
    owner = new_user(name="Owner", creator=True)
    other = new_user(name="Other")
    creator_id, product = open_shop(api, owner, "Matrix", 100)
    drop_body = {"product_id": product["product_id"], "start_time": iso(-5), "end_time": iso(3600), "stock": 50}
    drop_id = api.post(f"/creators/{creator_id}/drops", owner.token, json=drop_body).json()["drop_id"]
    order_body = {"drop_id": drop_id, "quantity": 1, "payment_token": "tok_threeDSecureRequired"}
    order = api.post("/orders", owner.token, json=order_body, headers={"Idempotency-Key": "matrix-0"}).json()
    product_body = {"name": "n", "price_cents": 1, "currency": "USD"}
    push_subscription = Browser().subscription("https://push.example.com/send/matrix")
    # (method, path, body, expected status for the owner, expected status for another signed-in user)
    matrix = [
        ("GET", "/me", None, 200, 200),
        ("POST", f"/creators/{creator_id}/follow", None, 200, 200),
        ("GET", f"/users/{owner.user_id}/following", None, 200, 403),
        ("GET", f"/users/{owner.user_id}/follows/{creator_id}", None, 200, 403),
        ("GET", f"/creators/{creator_id}/followers", None, 200, 200),
        ("DELETE", f"/creators/{creator_id}/follow", None, 204, 204),
        ("POST", "/creators", {"name": "n"}, 409, 201),
        ("POST", f"/creators/{creator_id}/products", product_body, 201, 403),
        ("POST", f"/creators/{creator_id}/drops", drop_body, 201, 403),
        ("POST", "/orders", order_body, 201, 201),
        ("GET", f"/orders/{order['order_id']}", None, 200, 404),
        ("GET", f"/users/{owner.user_id}/orders", None, 200, 403),
        ("GET", f"/users/{owner.user_id}/notifications", None, 200, 403),
        ("POST", f"/users/{owner.user_id}/notifications/read", {"up_to": iso()}, 200, 403),
        ("GET", f"/creators/{creator_id}/drops", None, 200, 403),
        ("GET", f"/drops/{drop_id}/sales", None, 200, 404),
        # A first-come drop has no line to join or enter.
        ("POST", f"/drops/{drop_id}/queue", None, 409, 409),
        ("GET", f"/drops/{drop_id}/queue/me", None, 409, 409),
        ("POST", f"/drops/{drop_id}/entries", None, 409, 409),
        ("GET", f"/drops/{drop_id}/entries/me", None, 409, 409),
        ("GET", f"/users/{owner.user_id}/notification-settings", None, 200, 403),
        ("PUT", f"/users/{owner.user_id}/notification-settings", {"email": {"drop_started": False}}, 200, 403),
        ("POST", f"/users/{owner.user_id}/push-subscriptions", push_subscription, 201, 403),
        ("DELETE", f"/users/{owner.user_id}/push-subscriptions", {"endpoint": push_subscription["endpoint"]}, 204, 403),
        # The storefront (chalicelib.wiring.storefront): the order is unpaid, the drop live.
        ("POST", f"/orders/{order['order_id']}/cancel", None, 200, 404),
        ("GET", f"/drops/{drop_id}/buyers", None, 200, 404),
        ("PATCH", f"/drops/{drop_id}", {"stock": 60}, 409, 404),
        ("POST", f"/products/{product['product_id']}/images", {"content_type": "image/png"}, 201, 403),
        ("POST", f"/drops/{drop_id}/cancel", None, 200, 404),
    ]
    protected = {
        (path, method) for path, methods in app_module.app.routes.items() for method, route in methods.items()
        if route.authorizer is not None
    }  # fmt: skip
    assert {(_route_of(app_module, path), method) for method, path, *_ in matrix} == protected
    for method, path, body, owner_status, other_status in matrix:
        assert api.call(method, path, json=body).status_code == 401, (method, path)
        assert api.call(method, path, "not.a.token", json=body).status_code == 401, (method, path)
        for user, expected in ((other, other_status), (owner, owner_status)):
            key = {"Idempotency-Key": f"matrix-{user.user_id}"} if path == "/orders" else None
            assert api.call(method, path, user.token, json=body, headers=key).status_code == expected, (method, path)


def _route_of(app_module, path: str) -> str:
    """The route template a concrete path matches."""
    from chalice.local import RouteMatcher

    return RouteMatcher(list(app_module.app.routes)).match_route(path).route


# --- the verifier itself, against a JWKS of our own (moto cannot sign an expired token) ----------
@pytest.fixture(scope="module")
def signing():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
    body = json.dumps({"keys": [jwk]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    verifier = TokenVerifier("https://issuer.test/pool", "client-1", f"http://127.0.0.1:{server.server_address[1]}/")
    yield key, verifier
    server.shutdown()
    server.server_close()
    thread.join()


def _token(key, **overrides) -> str:
    now = int(time.time())
    claims = {"sub": "u1", "iss": "https://issuer.test/pool", "aud": "client-1", "exp": now + 60, "iat": now}
    claims.update({"token_use": "id", "email_verified": True, **overrides})
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_verifier_accepts_a_good_token_and_stringifies_claims(signing) -> None:
    key, verifier = signing
    claims = verifier.claims("Bearer " + _token(key))
    assert claims["sub"] == "u1"
    assert claims["email_verified"] == "true"
    assert all(isinstance(v, str) for v in claims.values())


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 10},
        {"iss": "https://elsewhere/pool"},
        {"aud": "another-client"},
        {"token_use": "access"},
    ],
    ids=["expired", "issuer", "audience", "access-token"],
)
def test_verifier_rejects(signing, overrides) -> None:
    key, verifier = signing
    with pytest.raises(UnauthorizedError):
        verifier.claims(_token(key, **overrides))


def test_verifier_rejects_another_key(signing) -> None:
    _, verifier = signing
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(UnauthorizedError):
        verifier.claims(_token(stranger))
