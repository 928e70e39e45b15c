"""Each function's policy in the synthesized template is exactly the policy the dev stack enforces."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.core.config import get_settings
from devstack.stack import WS_API_ID
from tests.infra.conftest import PREFIX, Synth
from tests.infra.test_stack import functions, statements_of_role


class Resolver:
    """CloudFormation expressions of the template, resolved to the dev stack's resources."""

    def __init__(self, synth: Synth, stack: Any) -> None:
        self.synth = synth
        self.settings = get_settings()
        self.arns = stack_arns(stack)

    def literal(self, text: str) -> str:
        # Names in the template carry the dev stage's prefix; the dev stack's carry its own.
        return text.replace(PREFIX, self.settings.table_prefix)

    def __call__(self, expr: Any) -> str:
        if isinstance(expr, str):
            return self.literal(expr)
        if "Fn::Join" in expr:
            separator, parts = expr["Fn::Join"]
            return separator.join(self(part) for part in parts)
        if "Ref" in expr:
            return self.ref(expr["Ref"])
        if "Fn::GetAtt" in expr:
            return self.attribute(*expr["Fn::GetAtt"])
        raise AssertionError(f"unexpected expression {expr}")

    def ref(self, logical: str) -> str:
        pseudo = {
            "AWS::Region": self.settings.region,
            "AWS::AccountId": self.settings.account_id,
            "AWS::Partition": "aws",
        }
        if logical in pseudo:
            return pseudo[logical]
        resource = self.synth.resources[logical]
        if logical == "WebsocketAPI":
            return WS_API_ID
        if resource["Type"] == "AWS::SNS::Topic":
            assert resource["Properties"]["TopicName"] == PREFIX + "events"
            return self.arns.events_topic()
        raise AssertionError(f"unexpected Ref {logical}")

    def attribute(self, logical: str, attribute: str) -> str:
        resource = self.synth.resources[logical]
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::DynamoDB::Table":
            table = props["TableName"].removeprefix(PREFIX)
            return self.arns.stream(table) if attribute == "StreamArn" else self.arns.table(table)
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return self.arns.queue(props["QueueName"].removeprefix(PREFIX))
        if kind == "AWS::Cognito::UserPool" and attribute == "Arn":
            return self.arns.user_pool()
        if kind == "AWS::IAM::Role" and logical.startswith("SchedulerRole") and attribute == "Arn":
            return self.arns.scheduler_role()
        raise AssertionError(f"unexpected GetAtt {logical}.{attribute}")


def stack_arns(stack: Any) -> Any:
    """The dev stack's resource ARNs, as its enforcement renders them."""
    from chalicelib.schema import topology
    from devstack.iam import LocalArns
    from devstack.identity import aws_client
    from devstack.stack import WS_STAGE

    settings = get_settings()
    dynamodb = aws_client("dynamodb", stack.aws.endpoint)
    streams = {
        s.table: dynamodb.describe_table(TableName=settings.table_name(s.table))["Table"]["LatestStreamArn"]
        for s in topology.STREAM_SOURCES
    }
    return LocalArns(settings, streams, WS_API_ID, WS_STAGE)


def grants(statements: list[Any], resolve: Any) -> set[tuple[str, str, str]]:
    """(action, resource, conditions) for every pair a policy allows."""
    found = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        conditions = json.dumps(statement.get("Condition", {}), sort_keys=True)
        found |= {(action, resolve(resource), conditions) for action in actions for resource in resources}
    return found


def enforced(statements: list[Any]) -> set[tuple[str, str, str]]:
    return {
        (action, resource, json.dumps(s.conditions, sort_keys=True))
        for s in statements
        for action in s.actions
        for resource in s.resources
    }


def test_every_functions_synthesized_policy_is_what_the_dev_stack_enforces(synth: Synth, stack: Any) -> None:
    resolve = Resolver(synth, stack)
    deployed = functions(synth)
    assert set(deployed) == set(stack.iam.policies)
    for name, (_, props) in deployed.items():
        template = grants(statements_of_role(synth, props["Role"]["Fn::GetAtt"][0]), resolve)
        local = enforced(stack.iam.policies[name])
        assert template == local, f"{name}: only in the template {template - local}, only enforced {local - template}"
        assert any(action.startswith(("dynamodb:", "sqs:", "sns:")) for action, _, _ in local), name


def test_the_scheduler_role_may_invoke_what_the_dev_stacks_scheduler_may(synth: Synth, stack: Any) -> None:
    (role,) = [k for k in synth.of_type("AWS::IAM::Role") if k.startswith("SchedulerRole")]
    template = grants(statements_of_role(synth, role), Resolver(synth, stack))
    assert template == enforced(stack.iam.scheduler)
    lifecycle = get_settings().function_arn("drop_lifecycle")
    assert stack.iam.may_schedule(lifecycle) and not stack.iam.may_schedule(get_settings().function_arn("payments"))
