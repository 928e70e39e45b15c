"""The synthesized AWS deployment against the definitions it is built from: models, topology, access."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.schema import models, topology
from chalicelib.schema.functions import ACCESS, API_HANDLER, FunctionAccess
from infra.stack import STREAM_FAILURES_QUEUE, logical_table_name
from tests.infra.conftest import PREFIX, ROOT, Synth

READ_ACTION, WRITE_ACTION = "dynamodb:GetItem", "dynamodb:PutItem"
# Settings variables a deployment may leave to Settings' defaults or to the stage's Chalice config.
OPTIONAL_VARIABLES = {
    "LIVEDROP_DEBUG",
    # In AWS the images are served under /images/ of the web page's own origin (root-relative URLs).
    "LIVEDROP_IMAGES_URL",
    "LIVEDROP_RESERVATION_SECONDS",
    "LIVEDROP_IDEMPOTENCY_KEY_HOURS",
    # Hot drops: rate limits and the admissions tick have defaults (docs/sale-modes.md).
    "LIVEDROP_RATE_WINDOW_SECONDS",
    "LIVEDROP_ORDER_RATE_LIMIT",
    "LIVEDROP_JOIN_RATE_LIMIT",
    "LIVEDROP_ADMISSION_TICK_SECONDS",
    "LIVEDROP_ADMISSION_LOOP_SECONDS",
    # Local runs only: in AWS admission tokens are signed with the stage's key in SigningKeys.
    "LIVEDROP_ADMISSION_KEY",
    # Only where the stage's payment provider is stripe (not dev).
    "LIVEDROP_STRIPE_API_KEY",
    "LIVEDROP_STRIPE_WEBHOOK_SECRET",
    # AWS call timeouts and retries default to a prompt 503 when a backend does not answer.
    "LIVEDROP_AWS_CONNECT_TIMEOUT_SECONDS",
    "LIVEDROP_AWS_READ_TIMEOUT_SECONDS",
    "LIVEDROP_AWS_MAX_ATTEMPTS",
    # The fake payment provider's latency (the dev stack's --payment-latency-ms); 0 when absent.
    "LIVEDROP_PAYMENT_LATENCY_MS",
}
# Only the dev stack talks to an endpoint of its own.
ABSENT_IN_AWS = {"LIVEDROP_AWS_ENDPOINT", "LIVEDROP_AWS_ENDPOINTS"}


# --- reading the template ----------------------------------------------------------------------
def handler_name(handler_string: str) -> str:
    name = handler_string.split(".", 1)[1]
    return API_HANDLER if name == "app" else name


def registered_handlers(app: Any) -> set[str]:
    """Every Lambda function app.py registers (routes -> the one REST handler)."""
    strings = {f.handler_string for f in app.pure_lambda_functions}
    strings |= {source.handler_string for source in app.event_sources}
    strings |= {config.handler_string for config in app.websocket_handlers.values()}
    names = {handler_name(s) for s in strings}
    return names | ({API_HANDLER} if app.routes else set())


def functions(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """handler name -> (logical id, properties) of every function in the template."""
    return {
        handler_name(r["Properties"]["Handler"]): (logical, r["Properties"])
        for logical, r in synth.of_type("AWS::Serverless::Function").items()
    }


def name_of(synth: Synth, logical: str, attribute: str | None = None) -> str:
    resource = synth.resources[logical]
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::DynamoDB::Table":
        table = props["TableName"].removeprefix(PREFIX)
        return f"stream:{table}" if attribute == "StreamArn" else f"table:{table}"
    if resource["Type"] == "AWS::SQS::Queue":
        return "queue:" + props["QueueName"].removeprefix(PREFIX)
    if resource["Type"] == "AWS::SNS::Topic":
        return "topic:" + props["TopicName"].removeprefix(PREFIX)
    return f"{resource['Type']}:{logical}"


def render(synth: Synth, expr: Any) -> str:
    """A resource expression as text with every referenced resource named, e.g. table:Orders/index/by_user."""
    if isinstance(expr, str):
        return expr
    if "Ref" in expr:
        ref = expr["Ref"]
        return ref if ref.startswith("AWS::") else name_of(synth, ref)
    if "Fn::GetAtt" in expr:
        return name_of(synth, *expr["Fn::GetAtt"])
    if "Fn::Join" in expr:
        separator, parts = expr["Fn::Join"]
        return separator.join(render(synth, part) for part in parts)
    raise AssertionError(f"unexpected expression {expr}")


def statements_of_role(synth: Synth, role_logical: str) -> list[dict[str, Any]]:
    role = synth.resources[role_logical]["Properties"]
    found = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_logical} in policy["Properties"].get("Roles", []):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def grants(synth: Synth, statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Rendered resource -> actions granted on it."""
    granted: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            granted.setdefault(render(synth, resource), set()).update(actions)
    return granted


def table_entry(entry: str) -> str:
    table, _, index = entry.partition("/")
    return f"table:{table}/index/{index}" if index else f"table:{table}"


def expected_data_grants(handler: str, access: FunctionAccess) -> dict[str, set[str]]:
    """What a function's policy must name, by kind: reads, writes, queues, topics, streams."""
    streams = {s.table for s in topology.STREAM_SOURCES if s.handler == handler}
    return {
        "read": {table_entry(e) for e in access.read},
        "write": {table_entry(e) for e in access.write},
        "send": {f"queue:{q}" for q in access.send} | ({f"queue:{STREAM_FAILURES_QUEUE}"} if streams else set()),
        "consume": {f"queue:{s.queue}" for s in topology.QUEUE_SOURCES if s.handler == handler},
        "publish": {f"topic:{topology.EVENTS_TOPIC}"} if access.publish else set(),
        "streams": {f"stream:{t}" for t in streams},
    }


def actual_data_grants(granted: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        "read": {r for r, a in granted.items() if READ_ACTION in a},
        "write": {r for r, a in granted.items() if WRITE_ACTION in a},
        "send": {r for r, a in granted.items() if "sqs:SendMessage" in a},
        "consume": {r for r, a in granted.items() if "sqs:ReceiveMessage" in a},
        "publish": {r for r, a in granted.items() if "sns:Publish" in a},
        "streams": {r for r, a in granted.items() if "dynamodb:GetRecords" in a},
    }


# --- the functions -----------------------------------------------------------------------------
def test_every_handler_of_app_py_is_deployed_with_its_own_role(synth: Synth, app_module: Any) -> None:
    deployed = functions(synth)
    assert set(deployed) == registered_handlers(app_module.app)
    roles = [props["Role"]["Fn::GetAtt"][0] for _, props in deployed.values()]
    assert len(set(roles)) == len(roles)
    for name, (logical, props) in deployed.items():
        assert props["FunctionName"] == f"{PREFIX}{name}"
        assert props["Timeout"] == ACCESS[name].timeout
        assert props["Tracing"] == "Active"
        log_groups = {
            synth.resources[d]["Properties"]["LogGroupName"]
            for d in synth.resources[logical].get("DependsOn", [])
            if synth.resources[d]["Type"] == "AWS::Logs::LogGroup"
        }
        assert log_groups == {f"/aws/lambda/{PREFIX}{name}"}


def test_every_function_gets_every_setting_the_app_reads(synth: Synth) -> None:
    read_by_settings = set(
        re.findall(r'"(LIVEDROP_[A-Z_]+)"', (ROOT / "chalicelib" / "core" / "config.py").read_text())
    )
    required = read_by_settings - OPTIONAL_VARIABLES - ABSENT_IN_AWS
    assert "LIVEDROP_WS_MANAGEMENT_ENDPOINT" in required
    for name, (_, props) in functions(synth).items():
        variables = props["Environment"]["Variables"]
        assert required <= set(variables), f"{name} lacks {sorted(required - set(variables))}"
        assert not ABSENT_IN_AWS & set(variables)
        assert variables["LIVEDROP_TABLE_PREFIX"] == PREFIX
        assert variables["LIVEDROP_PAYMENT_PROVIDER"] == "fake"
        assert render(synth, variables["LIVEDROP_USER_POOL_ID"]).startswith("AWS::Cognito::UserPool:")
        assert render(synth, variables["LIVEDROP_WS_MANAGEMENT_ENDPOINT"]) == (
            "https://AWS::ApiGatewayV2::Api:WebsocketAPI.execute-api.AWS::Region.AWS::URLSuffix/api"
        )
        assert render(synth, variables["LIVEDROP_FUNCTION_ARN_PREFIX"]).endswith(f":function:{PREFIX}")


def test_each_function_policy_names_only_what_the_access_map_gives_it(synth: Synth) -> None:
    for name, (_, props) in functions(synth).items():
        granted = grants(synth, statements_of_role(synth, props["Role"]["Fn::GetAtt"][0]))
        assert actual_data_grants(granted) == expected_data_grants(name, ACCESS[name]), name
        data = {r for r in granted if r.startswith(("table:", "stream:", "queue:", "topic:"))}
        assert data <= set().union(*expected_data_grants(name, ACCESS[name]).values()) | {
            f"table:{s.table}/stream/*" for s in topology.STREAM_SOURCES if s.handler == name
        }
        assert any(a.startswith("cognito-idp:") for a in set().union(*granted.values())) == bool(ACCESS[name].cognito)
        pushes = any("execute-api:ManageConnections" in a for a in granted.values())
        assert pushes == ACCESS[name].ws_push, name
        schedules = any("scheduler:CreateSchedule" in a for a in granted.values())
        assert schedules == ACCESS[name].schedules, name


def test_no_policy_grants_data_services_on_every_resource(synth: Synth) -> None:
    documents = [
        p["PolicyDocument"]
        for r in synth.of_type("AWS::IAM::Role").values()
        for p in r["Properties"].get("Policies", [])
    ]
    documents += [r["Properties"]["PolicyDocument"] for r in synth.of_type("AWS::IAM::Policy").values()]
    for document in documents:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if any(
                a.split(":")[0] in {"dynamodb", "sqs", "sns", "cognito-idp", "scheduler", "lambda"} for a in actions
            ):
                assert "*" not in resources, statement


# --- tables ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", models.ALL_MODELS, ids=lambda m: m.__name__)
def test_table_equals_its_pynamodb_model(synth: Synth, template: Any, model: Any) -> None:
    spec = models.table_spec(model)
    create = spec["create"]
    name = PREFIX + logical_table_name(model)
    found = [
        r["Properties"] for r in synth.of_type("AWS::DynamoDB::Table").values() if r["Properties"]["TableName"] == name
    ]
    assert len(found) == 1, name
    table = found[0]
    assert table["KeySchema"] == create["KeySchema"]
    assert table["AttributeDefinitions"] == create["AttributeDefinitions"]
    assert table.get("GlobalSecondaryIndexes") == create.get("GlobalSecondaryIndexes")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    if model in models.STREAM_MODELS:
        assert table["StreamSpecification"] == {"StreamViewType": create["StreamSpecification"]["StreamViewType"]}
    else:
        assert "StreamSpecification" not in table
    if spec["ttl_attribute"]:
        assert table["TimeToLiveSpecification"] == {"AttributeName": spec["ttl_attribute"], "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in table
    template.has_resource_properties("AWS::DynamoDB::Table", {"TableName": name, "KeySchema": create["KeySchema"]})


def test_one_table_per_model(template: Any) -> None:
    template.resource_count_is("AWS::DynamoDB::Table", len(models.ALL_MODELS))


# --- queues, topic, subscriptions, event sources -----------------------------------------------
def queue_logical(synth: Synth, name: str) -> str:
    found = [k for k, r in synth.of_type("AWS::SQS::Queue").items() if r["Properties"]["QueueName"] == PREFIX + name]
    assert len(found) == 1, name
    return found[0]


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda s: s.name)
def test_queue_has_its_dead_letter_queue_and_redrive(synth: Synth, spec: topology.QueueSpec) -> None:
    queue = synth.resources[queue_logical(synth, spec.name)]["Properties"]
    assert queue["VisibilityTimeout"] == spec.visibility_timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [queue_logical(synth, spec.dlq_name), "Arn"]},
        "maxReceiveCount": spec.max_receive_count,
    }
    # A retry budget that waits: at least 10 receives, the backoff of chalicelib.schema.retries between them.
    assert spec.max_receive_count >= 10


def test_subscriptions_deliver_raw_messages_through_the_filter_policies(synth: Synth, template: Any) -> None:
    # The alarm topic (infra.monitoring) takes no domain events.
    topic = [k for k, r in synth.of_type("AWS::SNS::Topic").items() if not k.startswith("MonitoringAlarmTopic")]
    assert [synth.resources[k]["Properties"]["TopicName"] for k in topic] == [PREFIX + topology.EVENTS_TOPIC]
    subscribed = {
        render(synth, s["Properties"]["Endpoint"]): s["Properties"]
        for s in synth.of_type("AWS::SNS::Subscription").values()
    }
    expected = {f"queue:{q.name}": q for q in topology.QUEUES if q.event_types}
    assert set(subscribed) == set(expected)
    for queue, spec in expected.items():
        subscription = subscribed[queue]
        assert subscription["Protocol"] == "sqs"
        assert subscription["RawMessageDelivery"] is True
        assert subscription["TopicArn"] == {"Ref": topic[0]}
        assert subscription["FilterPolicy"] == {"event_type": list(spec.event_types)}
    template.resource_count_is("AWS::SNS::Subscription", len(expected))


def test_event_sources_report_partial_batch_failures(synth: Synth, app_module: Any) -> None:
    deployed = functions(synth)
    mappings = {
        (render(synth, m["Properties"]["EventSourceArn"]), render(synth, m["Properties"]["FunctionName"])): m[
            "Properties"
        ]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
    }
    expected = {}
    for source in topology.QUEUE_SOURCES:
        expected[(f"queue:{source.queue}", source.handler)] = source.batch_size
    for stream in topology.STREAM_SOURCES:
        expected[(f"stream:{stream.table}", stream.handler)] = stream.batch_size
    registered = registered_handlers(app_module.app)
    expected = {k: v for k, v in expected.items() if k[1] in registered}
    assert {(arn, fn.rsplit(":", 1)[1]) for arn, fn in mappings} == {
        (arn, deployed[handler][0]) for arn, handler in expected
    }
    for (arn, handler), batch_size in expected.items():
        mapping = mappings[(arn, f"AWS::Serverless::Function:{deployed[handler][0]}")]
        assert mapping["BatchSize"] == batch_size
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        if arn.startswith("stream:"):
            assert mapping["StartingPosition"] == "TRIM_HORIZON"
            assert render(synth, mapping["DestinationConfig"]["OnFailure"]["Destination"]) == (
                f"queue:{STREAM_FAILURES_QUEUE}"
            )
        else:
            # Lambda refuses an SQS source whose visibility timeout is shorter than the function's.
            spec = topology.queue_spec(arn.removeprefix("queue:"))
            assert deployed[handler][1]["Timeout"] <= spec.visibility_timeout


# --- APIs, auth, scheduler ---------------------------------------------------------------------
def test_websocket_api_routes_to_the_ws_handlers(synth: Synth, template: Any) -> None:
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "WEBSOCKET"})
    routes = {r["Properties"]["RouteKey"] for r in synth.of_type("AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$default", "$disconnect"}
    deployment = synth.resources["WebsocketAPIDeployment"]
    assert set(deployment["DependsOn"]) >= set(synth.of_type("AWS::ApiGatewayV2::Route"))


def test_rest_authorizer_trusts_the_stacks_user_pool(synth: Synth) -> None:
    (pool,) = synth.of_type("AWS::Cognito::UserPool")
    body = synth.resources["RestAPI"]["Properties"]["DefinitionBody"]
    authorizers = [d["x-amazon-apigateway-authorizer"] for d in body["securityDefinitions"].values()]
    assert authorizers and all(a["providerARNs"] == [{"Fn::GetAtt": [pool, "Arn"]}] for a in authorizers)


def test_user_pool_signs_in_by_email_with_password_and_refresh_flows(template: Any) -> None:
    from aws_cdk.assertions import Match

    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "UsernameAttributes": ["email"],
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False},
            "Schema": Match.array_with([Match.object_like({"Name": "name", "Required": True})]),
        },
    )
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "ExplicitAuthFlows": Match.array_with(["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]),
            "GenerateSecret": False,
        },
    )


def test_scheduler_may_invoke_only_the_drop_lifecycle_function(synth: Synth) -> None:
    (group,) = synth.of_type("AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == PREFIX + topology.SCHEDULER_GROUP
    deployed = functions(synth)
    role = deployed[topology.Fn.DROP_LIFECYCLE][1]["Environment"]["Variables"]["LIVEDROP_SCHEDULER_ROLE_ARN"]
    role_logical = role["Fn::GetAtt"][0]
    trust = synth.resources[role_logical]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    granted = grants(synth, statements_of_role(synth, role_logical))
    target = f"{PREFIX}{topology.Fn.DROP_LIFECYCLE}"
    assert {r.split(":function:")[1] for r in granted} == {target, f"{target}:*"}
    assert set().union(*granted.values()) == {"lambda:InvokeFunction"}


# --- observability and outputs -----------------------------------------------------------------
def alarm_metric(alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm's one metric (plain or, when labelled, in the Metrics form) with its statistic; of a rate
    (metric math over a count and the function's invocations), the count."""
    if "MetricName" in alarm:
        return {**alarm, "Stat": alarm.get("ExtendedStatistic") or alarm.get("Statistic")}
    stats = [q for q in alarm["Metrics"] if "MetricStat" in q]
    if len(stats) > 1:
        stats = [q for q in stats if q["MetricStat"]["Metric"]["MetricName"] != "Invocations"]
    (query,) = stats
    return {**query["MetricStat"]["Metric"], "Stat": query["MetricStat"]["Stat"], **alarm}


def test_alarms_on_dead_letters_5xx_and_order_latency(synth: Synth) -> None:
    alarms = [alarm_metric(a["Properties"]) for a in synth.of_type("AWS::CloudWatch::Alarm").values()]
    dlq_alarms = {
        render(synth, d["Value"])
        for a in alarms
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        for d in a["Dimensions"]
        if a["Threshold"] == 0 and a["ComparisonOperator"] == "GreaterThanThreshold"
    }
    dead_letters = {spec.dlq_name for spec in topology.QUEUES} | {STREAM_FAILURES_QUEUE}
    assert dlq_alarms == {f"queue:{name}" for name in dead_letters}
    (latency,) = [a for a in alarms if a["MetricName"] == "Latency"]
    assert latency["Stat"] == "p99" and latency["Threshold"] == 500
    assert {d["Name"]: d["Value"] for d in latency["Dimensions"]} == {
        "ApiName": PREFIX.rstrip("-"),
        "Stage": "api",
        "Method": "POST",
        "Resource": "/orders",
    }
    assert any(a["MetricName"] == "5XXError" and a["Stat"] == "Average" for a in alarms)
    method_settings = synth.resources["RestAPI"]["Properties"]["MethodSettings"]
    assert {"ResourcePath": "/~1orders", "HttpMethod": "POST", "MetricsEnabled": True} in method_settings


def test_dashboard_shows_orders_notifications_cache_dead_letters_and_errors(synth: Synth) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "OrderPlaced",
        "OrderRejected_",
        "ContentionRetries",
        "NotificationsPushed",
        "PushFailures",
        "NotificationDelayMs",
        "CacheHit",
        "CacheMiss",
        "ApproximateNumberOfMessagesVisible",
        "AWS/Lambda",
    ):
        assert metric in body, metric


def test_outputs_give_a_client_everything_it_needs(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    assert {"RestApiUrl", "WebSocketUrl", "UserPoolId", "UserPoolClientId"} <= set(outputs)
    assert render(synth, outputs["WebSocketUrl"]["Value"]).startswith("wss://")


# --- the template as CloudFormation sees it ----------------------------------------------------
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_nothing(synths: dict[str, Synth], stage: str) -> None:
    from cfnlint.api import lint

    findings = lint(Path(synths[stage].template_path).read_text(), regions=["us-east-1"])
    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in findings if m.rule.severity == "error"]
    assert not errors, "\n".join(errors)
    assert not findings, "\n".join(f"{m.rule.id} {m.message}" for m in findings)


# --- prod -----------------------------------------------------------------------------------------
def test_prod_keeps_its_data_and_dev_does_not(synth: Synth, prod: Synth) -> None:
    for stage, retained in ((synth, False), (prod, True)):
        for table in stage.of_type("AWS::DynamoDB::Table").values():
            assert table["DeletionPolicy"] == ("Retain" if retained else "Delete")
            assert table["Properties"]["DeletionProtectionEnabled"] is retained
        (pool,) = stage.of_type("AWS::Cognito::UserPool").values()
        assert pool["DeletionPolicy"] == ("Retain" if retained else "Delete")


def test_prod_charges_through_stripe_with_secrets_only_where_needed(prod: Synth) -> None:
    holders = {name for name, access in ACCESS.items() if access.payment_secrets}
    secret = "arn:AWS::Partition:secretsmanager:AWS::Region:AWS::AccountId:secret:livedrop/prod/stripe-??????"
    for name, (_, props) in functions(prod).items():
        variables = props["Environment"]["Variables"]
        assert variables["LIVEDROP_PAYMENT_PROVIDER"] == "stripe"
        assert variables["LIVEDROP_TABLE_PREFIX"] == "livedrop-prod-"
        assert props["FunctionName"] == f"livedrop-prod-{name}"
        # The secret's name only: its values are read at run time, by the functions granted them.
        assert variables["LIVEDROP_STRIPE_SECRET"] == "livedrop/prod/stripe"
        granted = grants(prod, statements_of_role(prod, props["Role"]["Fn::GetAtt"][0]))
        readers = {r for r, actions in granted.items() if "secretsmanager:GetSecretValue" in actions}
        # Besides Stripe's: the stage's VAPID key, where Web Push is sent or its public key served.
        vapid = {secret.replace("livedrop/prod/stripe", "livedrop-prod-vapid")} if ACCESS[name].push_keys else set()
        assert readers == ({secret} if name in holders else set()) | vapid, name
