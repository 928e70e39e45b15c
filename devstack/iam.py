"""IAM in the dev stack: every AWS call a function makes is checked against that function's policy.

The policies are the ones the CDK app deploys (infra.policy.function_statements over chalicelib.schema.functions),
rendered with the embedded AWS's real ARNs. The check sits in botocore's
`BaseClient._make_api_call`, which every boto3 client and PynamoDB's own client go through, so no
call escapes it. Whose call it is comes from a context variable that the dev stack sets where it
invokes a handler (`as_function` / `acting_as`): calls made outside any function (tests inspecting
the backend, provisioning) are not checked. The stream and queue pumps poll with clients bound to
the function they feed (`bind_poller`): Lambda's pollers use that function's role too.

A denied call raises the ClientError AWS raises for that service, with AWS's message naming the
action and resource, and is logged once per (function, action, resource). A denial nobody asked for
(outside `Enforcer.revoked` and `Enforcer.expecting_denials`) is a missing grant or a call the code
should not make: `unexpected_denials()` lists them for every enforcer this process installed, and the
test session fails when there is any.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.client import BaseClient

from chalicelib.core.config import get_settings
from chalicelib.schema import topology
from devstack.iam_requests import CallSite, Request, allows, matches, requests_for
from devstack.identity import REGION
from devstack.lambda_runtime import refuse_if_discarded
from infra.policy import Statement

log = logging.getLogger("devstack.iam")

Handler = Callable[[dict[str, Any], Any], Any]
_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("livedrop_function", default=None)
_POLLER_ATTRIBUTE = "_livedrop_poller_of"
# Denials remembered for inspection (a long dev session that keeps being refused must not grow for ever).
_DENIED_KEPT = 10_000

# Calls that need no AWS credentials at all (the caller proves itself with a token, or is signing up).
PUBLIC_OPERATIONS = {
    "cognito-idp": {
        "SignUp",
        "ConfirmSignUp",
        "ResendConfirmationCode",
        "InitiateAuth",
        "RespondToAuthChallenge",
        "ForgotPassword",
        "ConfirmForgotPassword",
        "GetUser",
        "GlobalSignOut",
        "RevokeToken",
        "ChangePassword",
        "GetTokensFromRefreshToken",
    },
}
# How each service says no: (error code, HTTP status).
_DENIAL = {
    "dynamodb": ("AccessDeniedException", 400),
    "dynamodbstreams": ("AccessDeniedException", 400),
    "sqs": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "scheduler": ("AccessDeniedException", 403),
    "cognito-idp": ("AccessDeniedException", 400),
    "secretsmanager": ("AccessDeniedException", 400),
    "ses": ("AccessDenied", 403),
    "apigatewaymanagementapi": ("AccessDeniedException", 403),
}


# --- whose call is it -----------------------------------------------------------------------------
def current_function() -> str | None:
    """The function the running code acts as, None outside any invocation."""
    return _function.get()


@contextlib.contextmanager
def acting_as(function: str) -> Iterator[None]:
    """Run the block as `function` (its AWS calls are checked against that function's policy)."""
    token = _function.set(function)
    try:
        yield
    finally:
        _function.reset(token)


def as_function(function: str, handler: Callable[..., Any]) -> Any:
    """`handler` invoked as Lambda function `function`: the one hook per invocation path."""

    @functools.wraps(handler)
    def invoke(*args: Any, **kwargs: Any) -> Any:
        with acting_as(function):
            return handler(*args, **kwargs)

    # The pumps name the Lambda context after a handler's `name` (Chalice's LambdaFunction has one).
    invoke.name = getattr(handler, "name", function)  # type: ignore[attr-defined]
    return invoke


def bind_poller(client: Any, function: str) -> Any:
    """Make every call of `client` (an event-source poller's) count as `function`'s, as Lambda's pollers do;
    a poller's wire client (devstack.pollers.wire) and the botocore client it wraps both."""
    client.__dict__[_POLLER_ATTRIBUTE] = function
    if "sdk" in client.__dict__:
        client.sdk.__dict__[_POLLER_ATTRIBUTE] = function
    return client


def bind_pump(pump: Any, function: str) -> Any:
    """Bind the polling clients of a stream or queue pump to the function it feeds."""
    bound = [bind_poller(pump.__dict__[name], function) for name in ("_streams", "_sqs") if name in pump.__dict__]
    if not bound:
        raise TypeError(f"{type(pump).__name__} has no polling client to bind")
    return pump


# --- enforcement ----------------------------------------------------------------------------------
@dataclass
class Enforcer:
    """The policies of every function of one dev stack, and the check of one call against them."""

    policies: dict[str, list[Statement]]
    account: str
    role_prefix: str
    ws_api_id: str
    ws_stage: str
    # The EventBridge Scheduler role's policy (whom schedules may invoke).
    scheduler: list[Statement] = field(default_factory=list)
    denied: list[tuple[str, str, str]] = field(default_factory=list)
    # Denials outside revoked()/expecting_denials(): (function, action, resource, operation), each once.
    unexpected: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _expecting: int = 0
    # With record_usage, every (function, action, resource) allowed so far: what the code really uses of
    # each policy (off by default: connection ids and schedule names make it grow for ever).
    record_usage: bool = False
    used: set[tuple[str, str, str]] = field(default_factory=set)
    _logged: set[tuple[str, str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def may_schedule(self, target_arn: str) -> bool:
        """Whether the Scheduler role may invoke `target_arn`."""
        return allows(self.scheduler, Request("lambda:InvokeFunction", target_arn))

    def principal(self, function: str) -> str:
        """The assumed-role ARN a function's calls carry (role, then the function as session name)."""
        name = f"{self.role_prefix}{function}"
        return f"arn:aws:sts::{self.account}:assumed-role/{name}-role/{name}"

    def site(self, client: Any) -> CallSite:
        return CallSite(
            service=client.meta.service_model.service_name,
            region=client.meta.region_name or REGION,
            account=self.account,
            ws_api_id=self.ws_api_id,
            ws_stage=self.ws_stage,
        )

    def check(self, function: str, client: Any, operation: str, params: dict[str, Any]) -> None:
        """Raise the service's access-denied ClientError unless `function`'s policy allows the call."""
        site = self.site(client)
        if operation in PUBLIC_OPERATIONS.get(site.service, ()):
            return
        statements = self.policies.get(function, [])
        for request in requests_for(site, operation, params):
            if not allows(statements, request):
                self._deny(function, client, site, operation, request)
            if self.record_usage:
                self.used.add((function, request.action, request.resource))

    def _deny(self, function: str, client: Any, site: CallSite, operation: str, request: Request) -> None:
        key = (function, request.action, request.resource)
        with self._lock:
            if len(self.denied) >= _DENIED_KEPT:
                del self.denied[: _DENIED_KEPT // 2]
            self.denied.append(key)
            first = key not in self._logged
            self._logged.add(key)
            if not self._expecting and len(self.unexpected) < _DENIED_KEPT:
                self.unexpected.setdefault(key, operation)
        if first:
            log.error("IAM: %s may not %s on %s (%s)", function, request.action, request.resource, operation)
        code, status = _DENIAL.get(site.service, ("AccessDeniedException", 403))
        action = request.action
        if site.service == "sns":
            action = "SNS:" + action.split(":", 1)[1]
        elif site.service == "sqs":
            action = action.lower()
        message = (
            f"User: {self.principal(function)} is not authorized to perform: {action} on resource: "
            f"{request.resource} because no identity-based policy allows the {action} action"
        )
        response = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4()), "RetryAttempts": 0},
        }
        raise client.exceptions.from_code(code)(response, operation)

    @contextlib.contextmanager
    def expecting_denials(self) -> Iterator[None]:
        """Within the block (in any thread), denials are what a test provokes on purpose, not a missing grant."""
        with self._lock:
            self._expecting += 1
        try:
            yield
        finally:
            with self._lock:
                self._expecting -= 1

    @contextlib.contextmanager
    def revoked(self, function: str, action: str, resource_suffix: str = "") -> Iterator[None]:
        """Within the block, `function`'s policy lacks `action` on resources ending with `resource_suffix`
        (for tests that show what a missing grant breaks)."""
        original = self.policies[function]
        reduced = []
        for statement in original:
            if any(matches(a, action, ignore_case=True) for a in statement.actions):
                kept = tuple(r for r in statement.resources if not r.endswith(resource_suffix))
                if kept != statement.resources:
                    reduced.append(replace(statement, resources=kept))
                    others = tuple(a for a in statement.actions if not matches(a, action, ignore_case=True))
                    if others:
                        reduced.append(replace(statement, actions=others))
                    continue
            reduced.append(statement)
        if reduced == original:
            raise LookupError(f"{function} holds no {action} on *{resource_suffix}")
        self.policies[function] = reduced
        try:
            with self.expecting_denials():
                yield
        finally:
            self.policies[function] = original


_enforcer: Enforcer | None = None
# Every enforcer this process installed, so their unexpected denials outlive uninstall (a session's end).
_installed: list[Enforcer] = []
_original_call = BaseClient._make_api_call


def check_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> None:
    """Refuse the call `client` is about to make unless its function may (the hook of every botocore call,
    and of the pollers' own wire calls, devstack.pollers.wire)."""
    # A timed-out invocation's environment is gone in Lambda: nothing it still runs reaches AWS.
    refuse_if_discarded()
    enforcer = _enforcer
    if enforcer is not None:
        function = client.__dict__.get(_POLLER_ATTRIBUTE) or _function.get()
        if function is not None:
            enforcer.check(function, client, operation_name, api_params)


def _checked_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
    check_call(client, operation_name, api_params)
    return _original_call(client, operation_name, api_params)


def install(enforcer: Enforcer) -> Enforcer:
    """Check every botocore call of this process against `enforcer` from now on."""
    global _enforcer
    _enforcer = enforcer
    if not any(known is enforcer for known in _installed):
        _installed.append(enforcer)
    BaseClient._make_api_call = _checked_call
    return enforcer


def unexpected_denials() -> list[str]:
    """Each denial no test asked for, of every enforcer this process installed, as one line:
    `FUNCTION may not ACTION on RESOURCE (OPERATION)`."""
    lines: list[str] = []
    for enforcer in _installed:
        with enforcer._lock:
            found = list(enforcer.unexpected.items())
        lines += [f"{f} may not {action} on {resource} ({operation})" for (f, action, resource), operation in found]
    return sorted(set(lines))


def uninstall(enforcer: Enforcer | None = None) -> None:
    """Stop checking (only if `enforcer`, when given, is the one installed)."""
    global _enforcer
    if enforcer is None or _enforcer is enforcer:
        _enforcer = None


# --- the dev stack's policies ---------------------------------------------------------------------
class LocalArns:
    """infra.policy's Arns for the resources the dev stack provisioned on the embedded AWS."""

    def __init__(self, settings: Any, stream_arns: dict[str, str], ws_api_id: str, ws_stage: str) -> None:
        self.settings = settings
        self.stream_arns = stream_arns
        self.ws_api_id = ws_api_id
        self.ws_stage = ws_stage
        self._base = f"{settings.region}:{settings.account_id}"

    def log_group(self, function: str) -> str:
        return f"arn:aws:logs:{self._base}:log-group:/aws/lambda/{self.settings.table_prefix}{function}:*"

    def table(self, name: str) -> str:
        return f"arn:aws:dynamodb:{self._base}:table/{self.settings.table_name(name)}"

    def stream(self, table: str) -> str:
        return self.stream_arns[table]

    def queue(self, name: str) -> str:
        return f"arn:aws:sqs:{self._base}:{self.settings.table_prefix}{name}"

    def events_topic(self) -> str:
        return str(self.settings.events_topic_arn)

    def schedules(self) -> str:
        return f"arn:aws:scheduler:{self._base}:schedule/{self.settings.scheduler_group}/*"

    def scheduler_role(self) -> str:
        return str(self.settings.scheduler_role_arn)

    def user_pool(self) -> str:
        return str(self.settings.user_pool_arn)

    def connections(self) -> str | None:
        return f"arn:aws:execute-api:{self._base}:{self.ws_api_id}/{self.ws_stage}/*/@connections/*"

    def function(self, name: str) -> str:
        return str(self.settings.function_arn(name))

    def stripe_secret(self) -> str:
        return f"arn:aws:secretsmanager:{self._base}:secret:{self.settings.stripe_secret_name}-??????"

    def vapid_secret(self) -> str:
        return f"arn:aws:secretsmanager:{self._base}:secret:{self.settings.vapid_secret_name}-??????"

    def email_identity(self) -> str:
        return f"arn:aws:ses:{self._base}:identity/{self.settings.email_domain}"

    def email_configuration_set(self) -> str:
        return f"arn:aws:ses:{self._base}:configuration-set/{self.settings.ses_configuration_set}"

    def images_bucket(self) -> str:
        return f"arn:aws:s3:::{self.settings.images_bucket}"


def local_enforcer(dynamodb: Any, *, ws_api_id: str, ws_stage: str) -> Enforcer:
    """An Enforcer holding every function's policy as infra deploys it, over this stack's resources.

    `dynamodb` is a client of the embedded AWS (to read the tables' stream ARNs)."""
    from chalicelib.schema.functions import ACCESS
    from infra.policy import function_statements, scheduler_statements

    settings = get_settings()
    streams = {}
    for source in topology.STREAM_SOURCES:
        table = dynamodb.describe_table(TableName=settings.table_name(source.table))["Table"]
        streams[source.table] = table["LatestStreamArn"]
    arns = LocalArns(settings, streams, ws_api_id, ws_stage)
    stripe = settings.payment_provider == "stripe"
    policies = {
        name: function_statements(name, access, arns, payment_secrets=stripe) for name, access in ACCESS.items()
    }
    return Enforcer(
        policies, settings.account_id, settings.table_prefix, ws_api_id, ws_stage, scheduler_statements(arns)
    )
