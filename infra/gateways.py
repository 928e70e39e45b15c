"""The APIs Chalice packaged, finished for AWS: names, stage throttling, tracing, JSON access logs, the
gateway's own error responses and the Cognito authorizer's user pool."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from infra import gateway_responses

if TYPE_CHECKING:
    from infra.stack import LiveDropStack

# Stage throttling (requests per second, burst), well under the account's shared 10,000/s.
REST_THROTTLE = (2000.0, 1000)
WS_THROTTLE = (1000.0, 500)
# Access log lines as JSON, one per request.
_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "connectionId": "$context.connectionId",
        "error": "$context.error.message",
    }
)


def patch_rest_api(stack: LiveDropStack) -> None:
    if "RestAPI" not in stack.sam["Resources"]:
        return
    api = stack.chalice.get_resource("RestAPI")
    api.add_property_override("Name", stack.rest_api_name)
    # Detailed metrics for the order path only: its p99 latency is alarmed on.
    rate, burst = REST_THROTTLE
    api.add_property_override(
        "MethodSettings",
        [
            {"ResourcePath": "/~1orders", "HttpMethod": "POST", "MetricsEnabled": True},
            {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst},
        ],
    )
    api.add_property_override("TracingEnabled", True)
    api.add_property_override(
        "AccessLogSetting", {"DestinationArn": stack.access_logs["rest"].log_group_arn, "Format": _ACCESS_LOG_FORMAT}
    )
    # What API Gateway answers itself (401, unknown route, 415, 429, 5xx...) in the API's error shape.
    api.add_property_override(
        "DefinitionBody.x-amazon-apigateway-gateway-responses", gateway_responses.openapi_extension()
    )
    body = stack.sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    for name, definition in body.get("securityDefinitions", {}).items():
        authorizer = definition.get("x-amazon-apigateway-authorizer", {})
        if authorizer.get("type") == "cognito_user_pools":
            api.add_property_override(
                f"DefinitionBody.securityDefinitions.{name}.x-amazon-apigateway-authorizer.providerARNs",
                [stack.user_pool.user_pool_arn],
            )


def patch_websocket_api(stack: LiveDropStack) -> None:
    if stack.ws_api_id is None:
        return
    # The deployment must follow the routes, or CloudFormation may deploy an API with none.
    deployment = stack.chalice.get_resource("WebsocketAPIDeployment")
    rate, burst = WS_THROTTLE
    stage = stack.chalice.get_resource("WebsocketAPIStage")
    stage.add_property_override("DefaultRouteSettings", {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst})
    # API Gateway has no X-Ray tracing for WebSocket APIs: the functions behind it trace instead.
    stage.add_property_override(
        "AccessLogSettings", {"DestinationArn": stack.access_logs["ws"].log_group_arn, "Format": _ACCESS_LOG_FORMAT}
    )
    for logical_id, resource in stack.sam["Resources"].items():
        if resource["Type"] == "AWS::ApiGatewayV2::Route":
            deployment.add_resource_dependency(stack.chalice.get_resource(logical_id))


def access_logs(stack: LiveDropStack, logging_role: bool) -> dict[str, logs.LogGroup]:
    groups = {
        kind: logs.LogGroup(
            stack,
            f"{title}AccessLogs",
            log_group_name=f"/aws/apigateway/{stack.prefix}{kind}-access",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        for kind, title in (("rest", "Rest"), ("ws", "WebSocket"))
    }
    if logging_role:
        # Stages may log only once the account's API Gateway has a CloudWatch role (one per account and
        # region: deploy with -c api_gateway_logging_role=false where another stack already set it).
        role = iam.Role(
            stack,
            "ApiGatewayLoggingRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
            ],
        )
        account = apigateway.CfnAccount(stack, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        for logical_id in ("RestAPI", "WebsocketAPIStage"):
            if logical_id in stack.sam["Resources"]:
                stack.chalice.get_resource(logical_id).add_dependency(account)
    return groups
