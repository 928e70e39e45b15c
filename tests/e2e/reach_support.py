"""Helpers for the e-mail and Web Push tests: a push service on loopback, a browser's keys, and
the dev stack's sent e-mails."""

from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chalicelib.core.config import get_settings
from tests.support import wait_for


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Browser:
    """What a browser keeps for one push subscription: the P-256 key pair and the auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, Any]:
        """The JSON of its PushSubscription (what PushSubscription.toJSON() gives the page)."""
        point = self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

    def decrypt(self, body: bytes) -> bytes:
        """An RFC 8291 aes128gcm push body, decrypted as the browser would."""
        return bytes(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """A push service on 127.0.0.1 (RFC 8030's receiving end): records every push, answers `status`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 201
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with service._lock:
                    service.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(service.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def pushes(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def emails_to(api: Any, address: str) -> list[dict[str, Any]]:
    """What the dev stack sent to `address`, newest first."""
    answer = api.get(f"/_dev/emails?to={address}")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def deliver_queue_idle() -> bool:
    """No message on the deliver queue: waiting, in flight or delayed."""
    settings = get_settings()
    sqs = boto3.session.Session().client("sqs", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    found = sqs.get_queue_attributes(QueueUrl=settings.queue_url("deliver"), AttributeNames=names)["Attributes"]
    return all(int(found.get(name, 0)) == 0 for name in names)


def inbox_ids(api: Any, user: Any) -> set[str]:
    answer = api.get(f"/users/{user.user_id}/notifications?limit=100", user.token)
    assert answer.status_code == 200, answer.text
    return {item["notification_id"] for item in answer.json()["items"]}


def settled(api: Any, user: Any, event_id: str) -> None:
    """Wait until `event_id` is in the user's inbox and the deliver queue is idle: the slice that wrote
    the row has sent its e-mails and pushes too (they run in the same invocation, after the row)."""
    wait_for(lambda: event_id in inbox_ids(api, user), timeout=60)
    wait_for(deliver_queue_idle, timeout=60)
