"""Each function's IAM policy as plain data: the one renderer that infra/stack.py (CDK) and the dev
stack's enforcement (devstack/iam.py) both read, so what AWS would allow and what the dev stack
allows cannot drift. No CDK here: resource ARNs come from an `Arns` object, which the CDK stack
answers with CloudFormation tokens and the dev stack with the embedded AWS's real ARNs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.schema import topology
from chalicelib.schema.functions import FunctionAccess

READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)
# A Scan reads a whole table: granted only where FunctionAccess.scan names the table.
SCAN_ACTIONS = ("dynamodb:Scan",)
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
CONSUME_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)
# Schedules are created once per drop and delete themselves after firing (ActionAfterCompletion); a drop
# whose creation fails takes its schedules back (catalog.create_drop).
SCHEDULE_ACTIONS = ("scheduler:CreateSchedule", "scheduler:DeleteSchedule")
SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
# The VAPID key pair is made by the first function that needs it, and stored in its secret.
PUSH_KEY_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:CreateSecret")
EMAIL_ACTIONS = ("ses:SendRawEmail",)
SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
# Where a DynamoDB-stream source sends the coordinates of records it gave up on.
STREAM_FAILURES_QUEUE = "stream-failures"


@dataclass(frozen=True)
class Statement:
    """One Allow statement: actions on resources, optionally under IAM conditions."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: dict[str, dict[str, str]] = field(default_factory=dict, hash=False, compare=True)

    def key(self) -> str:
        """A canonical text of the statement (for comparing policies)."""
        return json.dumps(
            {"actions": sorted(self.actions), "resources": sorted(self.resources), "conditions": self.conditions},
            sort_keys=True,
        )


class Arns(Protocol):
    """The ARNs of one deployment's resources, by their logical names (no stage prefix)."""

    def log_group(self, function: str) -> str: ...
    def table(self, name: str) -> str: ...
    def stream(self, table: str) -> str: ...
    def queue(self, name: str) -> str: ...
    def events_topic(self) -> str: ...
    def schedules(self) -> str: ...
    def scheduler_role(self) -> str: ...
    def user_pool(self) -> str: ...
    def connections(self) -> str | None: ...
    def stripe_secret(self) -> str: ...
    def vapid_secret(self) -> str: ...
    def email_identity(self) -> str: ...
    def email_configuration_set(self) -> str: ...
    def images_bucket(self) -> str: ...
    def function(self, name: str) -> str: ...


def _table_arns(arns: Arns, entries: tuple[str, ...]) -> tuple[str, ...]:
    """ "Table" -> the table's ARN; "Table/index" -> that index's ARN only."""
    found = []
    for entry in entries:
        table, _, index = entry.partition("/")
        arn = arns.table(table)
        found.append(f"{arn}/index/{index}" if index else arn)
    return tuple(found)


def scheduler_statements(arns: Arns) -> list[Statement]:
    """The EventBridge Scheduler role's policy: it may invoke the drop lifecycle function only."""
    target = arns.function(topology.Fn.DROP_LIFECYCLE)
    return [Statement(("lambda:InvokeFunction",), (target, f"{target}:*"))]


def function_statements(
    handler: str, access: FunctionAccess, arns: Arns, *, payment_secrets: bool = True
) -> list[Statement]:
    """The statements of `handler`'s role. `payment_secrets` is whether the stage reads Stripe's secret."""
    statements = [
        Statement(("logs:CreateLogStream", "logs:PutLogEvents"), (arns.log_group(handler),)),
        # X-Ray has no resource-level permissions.
        Statement(("xray:PutTraceSegments", "xray:PutTelemetryRecords"), ("*",)),
    ]
    if access.read:
        statements.append(Statement(READ_ACTIONS, _table_arns(arns, access.read)))
    if access.write:
        statements.append(Statement(WRITE_ACTIONS, _table_arns(arns, access.write)))
    if access.scan:
        statements.append(Statement(SCAN_ACTIONS, _table_arns(arns, access.scan)))
    if access.send:
        statements.append(Statement(("sqs:SendMessage",), tuple(arns.queue(name) for name in access.send)))
    if access.publish:
        statements.append(Statement(("sns:Publish",), (arns.events_topic(),)))
    if access.schedules:
        statements.append(Statement(SCHEDULE_ACTIONS, (arns.schedules(),)))
        statements.append(
            Statement(
                ("iam:PassRole",),
                (arns.scheduler_role(),),
                {"StringEquals": {"iam:PassedToService": SCHEDULER_PRINCIPAL}},
            )
        )
    if access.cognito:
        statements.append(Statement(tuple(access.cognito), (arns.user_pool(),)))
    connections = arns.connections()
    if access.ws_push and connections is not None:
        statements.append(Statement(("execute-api:ManageConnections",), (connections,)))
    if access.payment_secrets and payment_secrets:
        statements.append(Statement(SECRET_ACTIONS, (arns.stripe_secret(),)))
    if access.push_keys:
        statements.append(Statement(PUSH_KEY_ACTIONS, (arns.vapid_secret(),)))
    if access.email:
        statements.append(Statement(EMAIL_ACTIONS, (arns.email_identity(), arns.email_configuration_set())))
    if access.images:
        statements.append(Statement(("s3:PutObject",), (f"{arns.images_bucket()}/images/*",)))
    consumed = tuple(arns.queue(s.queue) for s in topology.QUEUE_SOURCES if s.handler == handler)
    if consumed:
        statements.append(Statement(CONSUME_ACTIONS, consumed))
    streams = [s.table for s in topology.STREAM_SOURCES if s.handler == handler]
    if streams:
        statements.append(Statement(STREAM_ACTIONS, tuple(arns.stream(table) for table in streams)))
        statements.append(
            Statement(("dynamodb:ListStreams",), tuple(f"{arns.table(table)}/stream/*" for table in streams))
        )
        statements.append(Statement(("sqs:SendMessage",), (arns.queue(STREAM_FAILURES_QUEUE),)))
    return statements
