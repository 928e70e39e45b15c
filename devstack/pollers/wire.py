"""The pollers' hot calls to the embedded AWS, without botocore's request and response machinery.

Lambda's pollers are AWS's own service; here they are the dev stack's pumps, in the process that also
runs every function. Each of their calls through botocore cost about 1 ms of that process's CPU
(measured 2026-12-07: 0.96 ms for an empty ReceiveMessage on a quiet machine, 1.3 ms in a rush, where
a poll or a delete came with nearly every order), mostly building the request and parsing the answer
back into Python types the pumps then turn into Lambda's event shapes again. A WireClient sends the
same JSON-protocol request (signed with SigV4 as botocore signs it) on a keep-alive connection per
thread and returns the JSON answer as the service wrote it: what botocore would have returned, except
that timestamps stay epoch numbers and binary values stay base64 (the event builders take both).

What stays as it was: every call is checked against the fed function's role (devstack.iam) first, an
error answer raises the ClientError botocore would raise, and calls that are not hot (set-up,
listings) go through the botocore client the WireClient wraps (`sdk`), bound to the same function.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import threading
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from devstack import iam
from devstack.identity import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, aws_client

# The JSON target prefix of each service a poller reads (botocore's service models say the same).
_TARGETS = {"sqs": "AmazonSQS", "dynamodbstreams": "DynamoDBStreams_20120810"}
_CONTENT_TYPE = "application/x-amz-json-1.0"
# As the botocore clients of devstack.identity.aws_client: a pump's stop stays prompt even when the
# embedded AWS is slow or gone (a long poll waits at most a second, well inside the read timeout).
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 10.0


class WireClient:
    """The calls `operations` of `service` at `endpoint` as plain signed JSON requests; anything else
    goes to the wrapped botocore client."""

    def __init__(self, service: str, endpoint: str, operations: tuple[str, ...]) -> None:
        if service not in _TARGETS:
            raise ValueError(f"no JSON target known for {service}")
        self.sdk = aws_client(service, endpoint)
        self.meta = self.sdk.meta  # what the IAM check and callers read: service, region
        self.exceptions = self.sdk.exceptions
        # By method name (receive_message -> ReceiveMessage), as botocore names them.
        self._operations = {m: op for m, op in self.sdk.meta.method_to_api_mapping.items() if op in operations}
        self._prefix = _TARGETS[service]
        split = urlsplit(endpoint)
        self._host = split.hostname or "127.0.0.1"
        self._port = split.port or 80
        self._signer = _Signer(split.netloc, self.meta.service_model.signing_name)
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        operation = self.__dict__.get("_operations", {}).get(name)
        if operation is not None:
            return lambda **params: self.call(operation, params)
        return getattr(self.sdk, name)

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One call of `operation`, checked against the poller's function's role, its answer as written."""
        iam.check_call(self, operation, params)
        body = json.dumps(params, separators=(",", ":")).encode()
        headers = {"Content-Type": _CONTENT_TYPE, "X-Amz-Target": f"{self._prefix}.{operation}"}
        status, query_error, answer = self._send(body, self._signer.sign(headers, body))
        parsed: dict[str, Any] = json.loads(answer) if answer else {}
        if status >= 300:
            raise self._client_error(operation, status, parsed, query_error)
        return parsed

    def _client_error(self, operation: str, status: int, parsed: dict[str, Any], query_error: str) -> ClientError:
        """The ClientError botocore raises for a JSON-protocol error answer (its modelled subclass if any):
        SQS names the code its older query protocol used in a header, and botocore reports that one."""
        code = str(parsed.get("__type") or parsed.get("code") or status).rsplit("#", 1)[-1]
        error_class = self.exceptions.from_code(code)
        if query_error:
            code = query_error.split(";", 1)[0]
        message = parsed.get("message") or parsed.get("Message") or ""
        response: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 0},
        }
        error: ClientError = error_class(response, operation)
        return error

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        kept: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if kept is not None:
            try:
                return _exchange(kept, body, headers)
            except (OSError, http.client.HTTPException):
                # A kept-alive connection the server has closed since: once more on a new one.
                self._drop(kept)
        fresh = self._connect()
        try:
            return _exchange(fresh, body, headers)
        except BaseException:
            self._drop(fresh)
            raise

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None

    def _connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT_S)
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(READ_TIMEOUT_S)
        self._local.connection = connection
        return connection


class _Signer:
    """Signature Version 4 of a POST to `/` with the dev stack's credentials: the host, the date and the
    target signed, as botocore signs them (its signer cost 0.27 ms a call; the day's key is kept here)."""

    def __init__(self, host: str, service: str) -> None:
        self.host = host
        self.service = service
        self._day = ""
        self._key = b""

    def sign(self, headers: dict[str, str], body: bytes, now: datetime.datetime | None = None) -> dict[str, str]:
        """`headers` (with X-Amz-Target) plus X-Amz-Date and Authorization, for `body` sent `now` (UTC)."""
        now = now or datetime.datetime.now(datetime.UTC)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        if day != self._day:
            key = ("AWS4" + SECRET_ACCESS_KEY).encode()
            for part in (day, REGION, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        target = headers["X-Amz-Target"]
        payload = hashlib.sha256(body).hexdigest()
        signed = "host;x-amz-date;x-amz-target"
        canonical = f"POST\n/\n\nhost:{self.host}\nx-amz-date:{stamp}\nx-amz-target:{target}\n\n{signed}\n{payload}"
        scope = f"{day}/{REGION}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            **headers,
            "X-Amz-Date": stamp,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}",
        }


def _exchange(connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """(status, x-amzn-query-error header, body) of one request on `connection`."""
    connection.request("POST", "/", body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.getheader("x-amzn-query-error") or "", response.read()
