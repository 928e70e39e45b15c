"""What an AWS call asks IAM for, and whether a policy allows it: the dev stack's model of IAM's
evaluation (devstack.iam enforces it on every call a function makes)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from infra.policy import Statement

# botocore service name -> IAM service prefix, where they differ.
_IAM_PREFIX = {"dynamodbstreams": "dynamodb", "apigatewaymanagementapi": "execute-api"}
# Operations authorized under another action's name.
_ACTION_OF = {
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("sns", "PublishBatch"): "Publish",
}


@dataclass(frozen=True)
class Request:
    """One authorization a call needs: an action on a resource, with its condition context."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CallSite:
    """What the mapper needs to know about the client making a call."""

    service: str
    region: str
    account: str
    ws_api_id: str
    ws_stage: str


def _sqs_queue_arn(site: CallSite, url: str) -> str:
    path = urlsplit(url).path.strip("/").split("/")
    account, name = (path[-2], path[-1]) if len(path) >= 2 else (site.account, path[-1])
    return f"arn:aws:sqs:{site.region}:{account}:{name}"


def _table_arn(site: CallSite, table: str) -> str:
    return table if table.startswith("arn:") else f"arn:aws:dynamodb:{site.region}:{site.account}:table/{table}"


_TRANSACT_ACTIONS = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "Update": "UpdateItem",
    "Get": "GetItem",
}


def requests_for(site: CallSite, operation: str, params: dict[str, Any]) -> list[Request]:
    """The authorizations AWS checks for `operation` with `params` (unknown calls: the action on `*`)."""
    service = site.service
    prefix = _IAM_PREFIX.get(service, service)
    action = f"{prefix}:{_ACTION_OF.get((service, operation), operation)}"
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            found = []
            for item in params.get("TransactItems", []):
                for kind, body in item.items():
                    found.append(Request(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table_arn(site, body["TableName"])))
            return found
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [Request(action, _table_arn(site, table)) for table in params.get("RequestItems", {})]
        if "TableName" in params:
            arn = _table_arn(site, params["TableName"])
            if params.get("IndexName"):
                arn = f"{arn}/index/{params['IndexName']}"
            return [Request(action, arn)]
    if service == "dynamodbstreams":
        if "StreamArn" in params:
            return [Request(action, params["StreamArn"])]
        if "ShardIterator" in params:
            # An iterator starts with its stream's ARN (AWS's and moto's alike).
            return [Request(action, str(params["ShardIterator"]).split("|", 1)[0])]
        if "TableName" in params:
            return [Request(action, f"{_table_arn(site, params['TableName'])}/stream/*")]
    if service == "sqs" and "QueueUrl" in params:
        return [Request(action, _sqs_queue_arn(site, params["QueueUrl"]))]
    if service == "sns" and "TopicArn" in params:
        return [Request(action, params["TopicArn"])]
    if service == "cognito-idp" and "UserPoolId" in params:
        return [Request(action, f"arn:aws:cognito-idp:{site.region}:{site.account}:userpool/{params['UserPoolId']}")]
    if service == "scheduler" and "Name" in params:
        group = params.get("GroupName") or "default"
        found = [Request(action, f"arn:aws:scheduler:{site.region}:{site.account}:schedule/{group}/{params['Name']}")]
        role = (params.get("Target") or {}).get("RoleArn")
        if operation in ("CreateSchedule", "UpdateSchedule") and role:
            found.append(Request("iam:PassRole", role, (("iam:PassedToService", "scheduler.amazonaws.com"),)))
        return found
    if service == "apigatewaymanagementapi" and "ConnectionId" in params:
        method = {"PostToConnection": "POST", "GetConnection": "GET", "DeleteConnection": "DELETE"}.get(operation, "*")
        resource = f"{site.ws_api_id}/{site.ws_stage}/{method}/@connections/{params['ConnectionId']}"
        arn = f"arn:aws:execute-api:{site.region}:{site.account}:{resource}"
        return [Request("execute-api:ManageConnections", arn)]
    if service == "secretsmanager" and ("SecretId" in params or "Name" in params):
        secret = str(params.get("SecretId") or params["Name"])
        if not secret.startswith("arn:"):
            # A secret's ARN ends in six random characters after its name; policies match them with -??????.
            secret = f"arn:aws:secretsmanager:{site.region}:{site.account}:secret:{secret}-{'x' * 6}"
        return [Request(action, secret)]
    if service == "ses" and operation in ("SendRawEmail", "SendEmail") and params.get("Source"):
        # SES authorizes the sending identity (the sender's domain) and the configuration set.
        domain = str(params["Source"]).rpartition("@")[2].rstrip(">")
        found = [Request(action, f"arn:aws:ses:{site.region}:{site.account}:identity/{domain}")]
        if params.get("ConfigurationSetName"):
            arn = f"arn:aws:ses:{site.region}:{site.account}:configuration-set/{params['ConfigurationSetName']}"
            found.append(Request(action, arn))
        return found
    return [Request(action, "*")]


# --- matching -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: * any run of characters (across / and :), ? exactly one.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether `value` matches the IAM pattern (actions ignore case, resource ARNs do not)."""
    return _pattern(pattern, ignore_case).match(value) is not None


def _conditions_hold(conditions: dict[str, dict[str, str]], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            values = expected if isinstance(expected, list) else [expected]
            actual = context.get(key)
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in values:
                return False
            if operator == "StringLike" and not any(matches(v, actual) for v in values):
                return False
            if operator not in ("StringEquals", "StringLike"):
                raise ValueError(f"condition operator {operator} is not evaluated by the dev stack")
    return True


def allows(statements: Iterable[Statement], request: Request) -> bool:
    """Whether any Allow statement grants `request` (there are no Deny statements in these policies)."""
    context = dict(request.context)
    for statement in statements:
        if not any(matches(a, request.action, ignore_case=True) for a in statement.actions):
            continue
        if not any(matches(r, request.resource) for r in statement.resources):
            continue
        if _conditions_hold(statement.conditions, context):
            return True
    return False
