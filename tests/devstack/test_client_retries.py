"""The tests' HTTP client meets the keep-alive race every HTTP client meets: a pooled connection the
server closes for idleness just as a request goes out is reset. It sends again only what is safe to
repeat (tests.support.Api), and the dev stack's gateway closes idle connections as servers do."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.support import Api

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def read_request(conn: socket.socket) -> bytes:
    """One whole request from `conn` (its headers, then Content-Length bytes of body); b"" if it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        body += chunk
    return data


@pytest.fixture()
def resetting_server() -> Iterator[tuple[str, list[int]]]:
    """A server on 127.0.0.1 that answers the first request of each connection, keeps it alive, then resets
    it when the next request arrives (what a keep-alive close racing a request looks like to the client).
    Yields its URL and the count of requests it answered."""
    listener = socket.create_server(("127.0.0.1", 0))
    answered: list[int] = [0]
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            if read_request(conn):
                answered[0] += 1  # before the answer: the client may read it before this thread goes on
                conn.sendall(ANSWER)
            if conn.recv(65536):
                # Closing at once (no linger) on a request not read makes the kernel reset the connection.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", answered
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_reset_request_with_an_idempotency_key_or_a_read_is_sent_again(resetting_server) -> None:
    url, answered = resetting_server
    api = Api(url)
    try:
        assert api.get("/health").status_code == 200
        assert api.get("/health").status_code == 200  # the kept connection was reset: sent again on a new one
        key = {"Idempotency-Key": uuid.uuid4().hex}
        assert api.post("/orders", json={}, headers=key).status_code == 200
        assert answered[0] == 3
    finally:
        api.close()


def test_a_reset_write_without_an_idempotency_key_is_not_sent_again(resetting_server) -> None:
    url, answered = resetting_server
    api = Api(url)
    try:
        assert api.post("/follow", json={}).status_code == 200
        with pytest.raises(requests.ConnectionError):
            api.post("/follow", json={})  # it might have been applied: only the caller can tell
        assert answered[0] == 1
    finally:
        api.close()
