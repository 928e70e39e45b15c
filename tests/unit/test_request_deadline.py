"""An API request's AWS calls keep its deadline (issue 24 #6): past it no call starts, and the view
answers 503 backend_unavailable; outside requests the settings' clients and connections serve."""

from __future__ import annotations

import pytest

from chalicelib import aws, bootstrap, models
from chalicelib.db import is_unreachable
from chalicelib.web import guarded
from devstack.lambda_runtime import LambdaContext


def test_calls_inside_a_request_use_the_apis_connection_and_outside_the_settings() -> None:
    outside, background = models.User._get_connection(), bootstrap.dynamodb()
    with aws.request_deadline(LambdaContext("api", timeout_seconds=29)):
        inside = models.User._get_connection()
        assert inside is not outside
        assert inside.connection._read_timeout_seconds == bootstrap.settings().api_aws_read_timeout_seconds
        assert bootstrap.dynamodb() is not background
    assert models.User._get_connection() is outside and bootstrap.dynamodb() is background
    assert outside.connection._read_timeout_seconds == bootstrap.settings().aws_read_timeout_seconds


def test_no_call_starts_once_the_lambdas_time_is_nearly_up() -> None:
    # Less than aws.ANSWER_MARGIN_SECONDS left: the request's first call is refused before it is sent.
    with aws.request_deadline(LambdaContext("api", timeout_seconds=0.5)), pytest.raises(Exception) as refused:
        models.User.get("anyone")
    assert is_unreachable(refused.value)
    assert any(isinstance(c, aws.RequestDeadlinePassed) for c in _chain(refused.value))

    @guarded
    def view() -> object:
        return models.User.get("anyone")

    with aws.request_deadline(LambdaContext("api", timeout_seconds=0.5)):
        answered = view()
    assert answered.status_code == 503 and "backend_unavailable" in answered.body


def test_without_a_deadline_the_same_call_is_made() -> None:
    with aws.request_deadline(None), pytest.raises(models.User.DoesNotExist):
        models.User.get("anyone")
    with pytest.raises(models.User.DoesNotExist):
        models.User.get("anyone")


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return seen
