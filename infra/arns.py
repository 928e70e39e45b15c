"""infra.policy's Arns as CloudFormation tokens of one LiveDropStack, and the app's name in every ARN."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk

from chalicelib.schema import topology
from infra.policy import STREAM_FAILURES_QUEUE

if TYPE_CHECKING:
    from infra.stack import LiveDropStack

APP_NAME = "livedrop"


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


class CdkArns:
    """infra.policy's Arns as CloudFormation tokens of one LiveDropStack."""

    def __init__(self, stack: LiveDropStack) -> None:
        self.stack = stack

    def log_group(self, function: str) -> str:
        return self.stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/lambda/{self.stack.functions[function].function_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def table(self, name: str) -> str:
        return self.stack.tables[name].get_att("Arn").to_string()

    def stream(self, table: str) -> str:
        return self.stack.tables[table].get_att("StreamArn").to_string()

    def queue(self, name: str) -> str:
        if name == STREAM_FAILURES_QUEUE:
            return self.stack.stream_failures.queue_arn
        return self.stack.queues[name].queue_arn

    def events_topic(self) -> str:
        return self.stack.topic.topic_arn

    def schedules(self) -> str:
        group = self.stack.prefix + topology.SCHEDULER_GROUP
        return self.stack.format_arn(service="scheduler", resource="schedule", resource_name=f"{group}/*")

    def scheduler_role(self) -> str:
        return self.stack.scheduler_role.role_arn

    def user_pool(self) -> str:
        return self.stack.user_pool.user_pool_arn

    def connections(self) -> str | None:
        if self.stack.ws_api_id is None:
            return None
        return self.stack.format_arn(
            service="execute-api",
            resource=self.stack.ws_api_id,
            resource_name=f"{self.stack.api_stage}/*/@connections/*",
        )

    def function(self, name: str) -> str:
        return self.stack.function_arn(f"{APP_NAME}-{self.stack.stage}-{name}")

    def stripe_secret(self) -> str:
        # A secret's ARN ends in "-" and six random characters after its name.
        return self.stack.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{self.stack.stripe_secret_name}-??????",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def vapid_secret(self) -> str:
        return self.stack.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{self.stack.vapid_secret_name}-??????",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def email_identity(self) -> str:
        return self.stack.format_arn(service="ses", resource="identity", resource_name=self.stack.email_domain)

    def email_configuration_set(self) -> str:
        name = self.stack.configuration_set_name
        return self.stack.format_arn(service="ses", resource="configuration-set", resource_name=name)

    def images_bucket(self) -> str:
        return f"arn:{self.stack.partition}:s3:::{self.stack.images_bucket_name}"
