"""cdk-nag's AWS Solutions rules on the stack (`-c nag=true`), with every finding LiveDrop accepts on
purpose written down here, with its reason. Any other finding fails the synth."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from chalicelib.schema import topology

if TYPE_CHECKING:
    from infra.stack import LiveDropStack

_PACK = "AwsSolutions::AwsSolutions-"
_ARN = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"

# Findings whose id names no resource of ours.
ACCEPTED: dict[str, str] = {
    "APIG1": "The WebSocket stage logs access as JSON: AccessLogSettings is a property override on the stage "
    "Chalice packaged, which the rule does not read (tests/infra check the template).",
    "APIG4": "WebSocket routes: $connect verifies the Cognito id token in the app (browsers cannot send an "
    "Authorization header on a WebSocket); $default and $disconnect run only on connections it accepted.",
    "CFR1": "A storefront sells worldwide; no country is refused.",
    "CFR2": "The distribution serves static files; the API it forwards /api/* to has its own regional web ACL "
    "(a CLOUDFRONT web ACL must live in us-east-1, another stack).",
    "CFR3": "Static files of a public page: CloudFront standard logs add cost and no security value; API "
    "requests are logged by the REST stage's access log.",
    "CFR4": "The default *.cloudfront.net certificate cannot pin TLS 1.2; a custom domain with an ACM "
    "certificate (docs: Deploy to AWS) takes the TLSv1.2_2021 policy.",
    "COG2": "Fans sign up minutes before a drop; MFA stays the user's choice. Threat protection audits sign-ins.",
    "IAM5[Resource::*]": "X-Ray's PutTraceSegments/PutTelemetryRecords take no resource; CDK's deploy-time "
    "helpers (bucket deployment, secret check) list only what they are given.",
    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": "CDK's own "
    "deploy-time helper functions (bucket cleanup, secret check) write their logs with the basic role.",
    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]": "The "
    "account's API Gateway CloudWatch role: the policy AWS documents for it, nothing else.",
    "IAM5[Action::s3:Abort*]": "CDK's bucket deployment, on the web bucket and its asset only.",
    "IAM5[Action::s3:DeleteObject*]": "CDK's bucket deployment prunes old files of the web bucket only.",
    "IAM5[Action::s3:GetBucket*]": "CDK's bucket deployment, on the web bucket and its asset only.",
    "IAM5[Action::s3:GetObject*]": "CDK's bucket deployment reads the page's asset.",
    "IAM5[Action::s3:List*]": "CDK's bucket deployment, on the web bucket and its asset only.",
    "IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]": "The "
    "CDK bootstrap bucket the page's asset is uploaded to (read only).",
    "L1": "CDK's bucket deployment function: its runtime is set by aws-cdk-lib, updated with it.",
    "S1": "The web bucket holds the page's static files, read only through CloudFront: no access worth a log.",
    "SQS3": "The stream-failures queue is itself a dead-letter destination (streams' on-failure).",
}


def _accepted(stack: LiveDropStack) -> dict[str, str]:
    """ACCEPTED plus the findings whose id names a resource of this stack."""
    found = dict(ACCEPTED)
    for function in stack.functions.values():
        log_group = _ARN.format(service="logs", resource=f"log-group:/aws/lambda/{function.function_name}:*")
        found[f"IAM5[Resource::{log_group}]"] = "The function's own log group: :* names its log streams."
    for table in sorted({s.table for s in topology.STREAM_SOURCES}):
        found[f"IAM5[Resource::<{table}Table.Arn>/stream/*]"] = (
            "The table's stream: its label changes when the stream is re-enabled; one table only."
        )
    connections = _ARN.format(service="execute-api", resource=f"<WebsocketAPI>/{stack.api_stage}/*/@connections/*")
    found[f"IAM5[Resource::{connections}]"] = "Pushes to the stage's connections: ids are made per connection."
    schedules = _ARN.format(service="scheduler", resource=f"schedule/{stack.prefix}{topology.SCHEDULER_GROUP}/*")
    found[f"IAM5[Resource::{schedules}]"] = "One schedule per drop, named at run time, in this stage's group only."
    images = f"arn:<AWS::Partition>:s3:::{stack.prefix}images-<AWS::AccountId>-<AWS::Region>/images/*"
    found[f"IAM5[Resource::{images}]"] = "Product image uploads: one key per upload, made at run time, under images/."
    lifecycle = _ARN.format(service="lambda", resource=f"function:{stack.prefix}drop_lifecycle:*")
    found[f"IAM5[Resource::{lifecycle}]"] = "The scheduler invokes the lifecycle function's versions and aliases."
    if stack.website is not None:
        bucket = stack.resolve(stack.get_logical_id(stack.website.bucket.node.default_child))
        found[f"IAM5[Resource::<{bucket}.Arn>/*]"] = "The page's files: every object of the web bucket."
    return found


def check(app: cdk.App, stack: LiveDropStack) -> None:
    """Run the rules at synth; accepted findings are acknowledged on the stack with their reason."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    for finding, reason in _accepted(stack).items():
        cdk.Validations.of(stack).acknowledge(cdk.Acknowledgment(id=_PACK + finding, reason=reason))
