"""The pumps' wire calls sign their requests exactly as botocore's Signature Version 4 signer does."""

from __future__ import annotations

import datetime
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.identity import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from devstack.pollers.wire import _Signer

_TIMES = st.datetimes(
    min_value=datetime.datetime(2020, 1, 1), max_value=datetime.datetime(2040, 1, 1), timezones=st.just(datetime.UTC)
)


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=300),
    now=_TIMES,
    service=st.sampled_from(["sqs", "dynamodb"]),
    target=st.sampled_from(["AmazonSQS.ReceiveMessage", "DynamoDBStreams_20120810.GetRecords"]),
    port=st.integers(1024, 65535),
)
def test_the_signature_is_botocores(body: bytes, now: datetime.datetime, service: str, target: str, port: int) -> None:
    host = f"127.0.0.1:{port}"
    ours = _Signer(host, service).sign({"X-Amz-Target": target}, body, now=now)
    request = AWSRequest("POST", f"http://{host}/", data=body, headers={"X-Amz-Target": target})
    signer = SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), service, REGION)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        signer.add_auth(request)
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours["Authorization"] == request.headers["Authorization"]


def test_the_days_key_is_derived_again_when_the_day_changes() -> None:
    signer = _Signer("127.0.0.1:9", "sqs")
    late = datetime.datetime(2026, 12, 7, 23, 59, 59, tzinfo=datetime.UTC)
    first = signer.sign({"X-Amz-Target": "AmazonSQS.ReceiveMessage"}, b"{}", now=late)
    second = signer.sign({"X-Amz-Target": "AmazonSQS.ReceiveMessage"}, b"{}", now=late + datetime.timedelta(seconds=1))
    assert "/20261207/" in first["Authorization"] and "/20261208/" in second["Authorization"]
    fresh = _Signer("127.0.0.1:9", "sqs").sign(
        {"X-Amz-Target": "AmazonSQS.ReceiveMessage"}, b"{}", now=late + datetime.timedelta(seconds=1)
    )
    assert fresh == second
