"""The functions Chalice packaged, finished for AWS: each one's role (its policy rendered from its
grants), log group, timeout, memory, reserved concurrency and environment, and the event source
mappings of its queues and streams (chalicelib.schema.topology, which the dev stack's pumps read too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from chalicelib.schema import topology
from chalicelib.schema.functions import ACCESS, FunctionAccess
from infra import policy
from infra.arns import APP_NAME, CdkArns, camel

if TYPE_CHECKING:
    from infra.stack import AppFunction, LiveDropStack

STREAM_MAX_RETRIES = topology.STREAM_MAX_RETRIES
# Per SQS event source: (MaximumBatchingWindowInSeconds, MaximumConcurrency). Pushes people wait for get
# no window; payments and inbox slices wait up to a second for fuller batches. The concurrency caps keep
# one queue's backlog from taking every execution environment (within the consumers' reserved concurrency).
# Both come from chalicelib.schema.topology, which the dev stack's pumps read too.
QUEUE_SOURCE_TUNING = {s.queue: (s.batching_window_s, s.max_concurrency) for s in topology.QUEUE_SOURCES}
# How long one AWS call may wait for an answer in AWS, where DynamoDB, SQS and SNS answer in milliseconds:
# with the default two attempts, a backend that does not answer is a 503 backend_unavailable within
# about 7 s (two reads of 3 s and a backoff), not a gateway timeout at 29 s. (The dev stack keeps the
# settings' 10 s: its embedded DynamoDB on a busy 2-core machine can take seconds to answer.)
AWS_READ_TIMEOUT_SECONDS = 3


def environment(stack: LiveDropStack, access: FunctionAccess) -> dict[str, str]:
    env = {
        "LIVEDROP_STAGE": stack.stage,
        "LIVEDROP_ACCOUNT_ID": stack.account,
        "LIVEDROP_TABLE_PREFIX": stack.prefix,
        "LIVEDROP_EVENTS_TOPIC_ARN": stack.topic.topic_arn,
        "LIVEDROP_QUEUE_URL_PREFIX": f"https://sqs.{stack.region}.{stack.url_suffix}/{stack.account}/",
        "LIVEDROP_SCHEDULER_GROUP": stack.prefix + topology.SCHEDULER_GROUP,
        "LIVEDROP_SCHEDULER_ROLE_ARN": stack.scheduler_role.role_arn,
        "LIVEDROP_FUNCTION_ARN_PREFIX": stack.function_arn(f"{APP_NAME}-{stack.stage}-"),
        "LIVEDROP_USER_POOL_ID": stack.user_pool.user_pool_id,
        "LIVEDROP_USER_POOL_CLIENT_ID": stack.user_pool_client.user_pool_client_id,
        "LIVEDROP_COGNITO_ISSUER": stack.cognito_issuer,
        "LIVEDROP_JWKS_URL": f"{stack.cognito_issuer}/.well-known/jwks.json",
        "LIVEDROP_WS_MANAGEMENT_ENDPOINT": stack.ws_management_endpoint,
        "LIVEDROP_PAYMENT_PROVIDER": stack.payment_provider,
        # The secret's name, not its values: those are read at run time, where granted (chalicelib.schema.secrets).
        "LIVEDROP_STRIPE_SECRET": stack.stripe_secret_name,
        "LIVEDROP_EMAIL_FROM": stack.email_from,
        "LIVEDROP_SES_CONFIGURATION_SET": stack.configuration_set_name,
        "LIVEDROP_VAPID_SECRET": stack.vapid_secret_name,
        "LIVEDROP_PUBLIC_URL": stack.public_url,
        "LIVEDROP_WEB_URL": stack.web_url,
        "LIVEDROP_IMAGES_BUCKET": stack.images_bucket_name,
        "LIVEDROP_AWS_READ_TIMEOUT_SECONDS": str(AWS_READ_TIMEOUT_SECONDS),
        "POWERTOOLS_SERVICE_NAME": APP_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": "LiveDrop",
    }
    return env


def configure(stack: LiveDropStack, function: AppFunction) -> None:
    access = ACCESS[function.handler]
    role = iam.Role(
        stack,
        f"{function.logical_id}Role",
        description=f"LiveDrop {stack.stage} {function.handler} function",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        inline_policies={"access": iam.PolicyDocument(statements=statements(stack, function, access))},
    )
    stack.roles[function.handler] = role
    log_group = logs.LogGroup(
        stack,
        f"{function.logical_id}Logs",
        log_group_name=f"/aws/lambda/{function.function_name}",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    resource = function.resource
    # The role may not create log groups: the function's group must exist before it first runs.
    resource.add_resource_dependency(cast(cdk.CfnResource, log_group.node.default_child))
    resource.add_property_override("FunctionName", function.function_name)
    resource.add_property_override("Role", role.role_arn)
    resource.add_property_override("Timeout", access.timeout)
    resource.add_property_override("MemorySize", access.memory)
    resource.add_property_override("Tracing", "Active")
    if access.reserved_concurrency is not None and stack.reserve_concurrency:
        resource.add_property_override("ReservedConcurrentExecutions", access.reserved_concurrency)
    for key, value in environment(stack, access).items():
        resource.add_property_override(f"Environment.Variables.{key}", value)


# --- least privilege -----------------------------------------------------------------------
def statements(stack: LiveDropStack, function: AppFunction, access: FunctionAccess) -> list[iam.PolicyStatement]:
    rendered = policy.function_statements(
        function.handler, access, CdkArns(stack), payment_secrets=stack.payment_provider == "stripe"
    )
    return [
        iam.PolicyStatement(actions=list(s.actions), resources=list(s.resources), conditions=dict(s.conditions) or None)
        for s in rendered
    ]


# --- event sources -------------------------------------------------------------------------
def event_sources(stack: LiveDropStack) -> None:
    for source in topology.QUEUE_SOURCES:
        function = stack.functions.get(source.handler)
        if function is None:
            cdk.Annotations.of(stack).add_warning(f"no function {source.handler} for queue {source.queue}")
            continue
        window, concurrency = QUEUE_SOURCE_TUNING.get(source.queue, (0, 2))
        if window != source.batching_window_s:
            # One value for both: chalicelib.schema.topology (the dev stack's pumps read it too).
            raise ValueError(f"{source.queue}: window {window} s here, {source.batching_window_s} s in topology")
        mapping = lambda_.CfnEventSourceMapping(
            stack,
            f"{camel(source.queue)}QueueTo{function.logical_id}",
            function_name=function.resource.ref,
            event_source_arn=stack.queues[source.queue].queue_arn,
            batch_size=source.batch_size,
            function_response_types=["ReportBatchItemFailures"],
            # The window is topology's, the one the dev stack's pumps honour too.
            maximum_batching_window_in_seconds=source.batching_window_s or None,
            scaling_config=lambda_.CfnEventSourceMapping.ScalingConfigProperty(maximum_concurrency=concurrency),
        )
        mapping.node.add_dependency(stack.roles[source.handler])
    for stream in topology.STREAM_SOURCES:
        function = stack.functions.get(stream.handler)
        if function is None:
            cdk.Annotations.of(stack).add_warning(f"no function {stream.handler} for stream {stream.table}")
            continue
        mapping = lambda_.CfnEventSourceMapping(
            stack,
            f"{stream.table}StreamTo{function.logical_id}",
            function_name=function.resource.ref,
            event_source_arn=stack.tables[stream.table].get_att("StreamArn").to_string(),
            batch_size=stream.batch_size,
            maximum_batching_window_in_seconds=stream.batching_window_s or None,
            starting_position="TRIM_HORIZON",
            function_response_types=["ReportBatchItemFailures"],
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=STREAM_MAX_RETRIES,
            destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(destination=stack.stream_failures.queue_arn)
            ),
        )
        mapping.node.add_dependency(stack.roles[stream.handler])
