"""What an operator expects of the deployment before the first real drop (issue: production settings)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.core.config import settings_from_env
from chalicelib.schema import topology
from chalicelib.schema.functions import ACCESS
from infra.gateway_responses import GATEWAY_RESPONSES
from infra.lambdas import QUEUE_SOURCE_TUNING
from tests.infra.conftest import ALARM_EMAIL, PREFIX, Synth
from tests.infra.test_stack import alarm_metric, functions, queue_logical, render

STAGES = ["dev", "prod"]


def function_by_logical(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    return {logical: (name, props) for name, (logical, props) in functions(synth).items()}


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda s: s.name)
def test_each_queue_stays_invisible_six_times_as_long_as_its_consumer_may_run(
    synth: Synth, spec: topology.QueueSpec
) -> None:
    visibility = synth.resources[queue_logical(synth, spec.name)]["Properties"]["VisibilityTimeout"]
    consumers = [s.handler for s in topology.QUEUE_SOURCES if s.queue == spec.name]
    assert consumers
    for handler in consumers:
        assert visibility >= 6 * functions(synth)[handler][1]["Timeout"], (spec.name, handler)


def test_queue_sources_batch_and_cap_their_concurrency_within_the_functions_reservation(synth: Synth) -> None:
    by_logical = function_by_logical(synth)
    mappings = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if render(synth, m["Properties"]["EventSourceArn"]).startswith("queue:")
    ]
    assert len(mappings) == len(topology.QUEUE_SOURCES)
    for mapping in mappings:
        queue = render(synth, mapping["EventSourceArn"]).removeprefix("queue:")
        name, props = by_logical[mapping["FunctionName"]["Ref"]]
        window, concurrency = QUEUE_SOURCE_TUNING[queue]
        assert mapping.get("MaximumBatchingWindowInSeconds", 0) == window
        # Live pushes wait for no batch; the rest wait up to a second for fuller ones.
        assert (window == 0) == (queue in ("notify", "push_slices", "live_stock"))
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": concurrency}
        # A cap above the function's reserved concurrency would only turn into throttles.
        assert concurrency <= props["ReservedConcurrentExecutions"] == ACCESS[name].reserved_concurrency


def test_the_consumers_that_could_starve_the_api_have_reserved_concurrency(synth: Synth) -> None:
    reserved = {name: props.get("ReservedConcurrentExecutions") for name, (_, props) in functions(synth).items()}
    assert {name for name, value in reserved.items() if value} == {
        "fanout",
        "deliver",
        "payments",
        "line_slices",
        "live_stock",
    }
    assert reserved["api"] is None


@pytest.mark.parametrize("stage", STAGES)
def test_rest_and_websocket_stages_are_throttled_logged_and_traced(synths: dict[str, Synth], stage: str) -> None:
    synth = synths[stage]
    rest = synth.resources["RestAPI"]["Properties"]
    (everything,) = [m for m in rest["MethodSettings"] if m["ResourcePath"] == "/*" and m["HttpMethod"] == "*"]
    assert everything["ThrottlingRateLimit"] > 0 and everything["ThrottlingBurstLimit"] > 0
    assert rest["TracingEnabled"] is True
    ws = synth.resources["WebsocketAPIStage"]["Properties"]
    assert ws["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert ws["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    groups = {
        logical: props["Properties"]["LogGroupName"] for logical, props in synth.of_type("AWS::Logs::LogGroup").items()
    }
    for setting in (rest["AccessLogSetting"], ws["AccessLogSettings"]):
        (group,) = setting["DestinationArn"]["Fn::GetAtt"][:1]
        assert groups[group].startswith("/aws/apigateway/")
        assert "$context.requestId" in json.loads(setting["Format"]).values()
    # Stages may only log once API Gateway has the account's CloudWatch role.
    (account,) = synth.of_type("AWS::ApiGateway::Account").values()
    role = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert synth.resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }


@pytest.mark.parametrize("stage", STAGES)
def test_every_alarm_notifies_the_alarm_topic(synths: dict[str, Synth], stage: str) -> None:
    synth = synths[stage]
    topics = {
        k for k, r in synth.of_type("AWS::SNS::Topic").items() if r["Properties"]["TopicName"].endswith("-alarms")
    }
    assert len(topics) == 1
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for logical, alarm in alarms.items():
        assert {"Ref": next(iter(topics))} in alarm["Properties"].get("AlarmActions", []), logical
    emails = [
        s["Properties"]["Endpoint"]
        for s in synth.of_type("AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "email"
    ]
    assert emails == ([ALARM_EMAIL] if stage == "prod" else [])


def test_alarms_watch_stream_lag_function_errors_and_throttles_and_queue_age(synth: Synth) -> None:
    watched: dict[str, set[str]] = {}
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm_metric(alarm["Properties"])
        for dimension in props.get("Dimensions", []):
            watched.setdefault(props["MetricName"], set()).add(render(synth, dimension["Value"]))
    stream_consumers = {PREFIX + s.handler for s in topology.STREAM_SOURCES}
    assert watched["IteratorAge"] == stream_consumers
    every_function = {PREFIX + name for name in functions(synth)}
    assert watched["Errors"] == every_function
    assert watched["Throttles"] == every_function
    assert watched["ApproximateAgeOfOldestMessage"] == {f"queue:{q.name}" for q in topology.QUEUES}


def test_a_backend_that_does_not_answer_is_a_503_well_before_the_gateways_29_s(synth: Synth) -> None:
    """issue 24 #6: every deployed function's AWS calls give up (all attempts, connect and read) within 10 s."""
    defaults = settings_from_env({})
    for name, (_, props) in functions(synth).items():
        env = props["Environment"]["Variables"]
        connect = float(env.get("LIVEDROP_AWS_CONNECT_TIMEOUT_SECONDS", defaults.aws_connect_timeout_seconds))
        read = float(env.get("LIVEDROP_AWS_READ_TIMEOUT_SECONDS", defaults.aws_read_timeout_seconds))
        attempts = int(env.get("LIVEDROP_AWS_MAX_ATTEMPTS", defaults.aws_max_attempts))
        assert attempts * (connect + read) <= 10, (name, connect, read, attempts)


@pytest.mark.parametrize("stage", STAGES)
def test_no_function_environment_holds_a_secret_value(synths: dict[str, Synth], stage: str) -> None:
    for name, (_, props) in functions(synths[stage]).items():
        variables = props["Environment"]["Variables"]
        text = json.dumps(variables)
        assert "resolve:secretsmanager" not in text and "resolve:ssm-secure" not in text, name
        assert not {"LIVEDROP_STRIPE_API_KEY", "LIVEDROP_STRIPE_WEBHOOK_SECRET"} & set(variables), name
        assert not re.search(r"(sk|rk|whsec)_(live|test)_", text), name


def test_gateway_responses_answer_in_the_apis_error_shape(synth: Synth) -> None:
    responses = synth.resources["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    assert {
        "UNAUTHORIZED",
        "MISSING_AUTHENTICATION_TOKEN",
        "UNSUPPORTED_MEDIA_TYPE",
        "THROTTLED",
        "DEFAULT_5XX",
    } <= set(responses)
    for kind, response in responses.items():
        expected = GATEWAY_RESPONSES[kind]
        if expected.status is not None:
            assert response["statusCode"] == str(expected.status)
        # What API Gateway renders: $context.error.messageString is the message as a JSON string.
        rendered = response["responseTemplates"]["application/json"].replace(
            "$context.error.messageString", json.dumps(expected.message)
        )
        assert json.loads(rendered) == {"error": {"code": expected.code, "message": expected.message}}
    assert responses["UNAUTHORIZED"]["statusCode"] == "401"
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "403"
    assert responses["UNSUPPORTED_MEDIA_TYPE"]["statusCode"] == "415"
    assert responses["THROTTLED"]["statusCode"] == "429"


@pytest.mark.parametrize(
    ("path", "headers", "kind"),
    [
        ("/me", {}, "UNAUTHORIZED"),
        ("/me", {"Authorization": "Bearer not-a-token"}, "UNAUTHORIZED"),
        ("/no/such/route", {}, "MISSING_AUTHENTICATION_TOKEN"),
    ],
)
def test_the_dev_stacks_gateway_answers_as_the_deployed_one(api: Any, path: str, headers: dict, kind: str) -> None:
    response = api.get(path, headers=headers)
    expected = GATEWAY_RESPONSES[kind]
    assert response.status_code == expected.status
    assert response.json() == {"error": {"code": expected.code, "message": expected.message}}


def test_a_body_of_a_type_the_route_does_not_take_is_refused_in_the_same_shape(api: Any) -> None:
    response = api.post("/auth/login", data="email=a", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == GATEWAY_RESPONSES["UNSUPPORTED_MEDIA_TYPE"].code
    assert "text/plain" in error["message"]
    assert response.headers["Content-Type"] == "application/json"
