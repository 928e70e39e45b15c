"""The dev stack and the AWS deployment create the same tables, topics and queues."""

from __future__ import annotations

from typing import Any

import boto3

from chalicelib.core.config import get_settings
from devstack.identity import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from infra.monitoring import ALARM_TOPIC
from infra.stack import STREAM_FAILURES_QUEUE
from tests.infra.conftest import PREFIX, Synth

# Infra-only: where Lambda's stream source parks records it gave up on (the dev stack's stream
# pump retries without a limit, so it has nothing to park).
INFRA_ONLY_QUEUES = {STREAM_FAILURES_QUEUE}
# Infra-only: the topic CloudWatch alarms notify (the dev stack has no alarms).
INFRA_ONLY_TOPICS = {ALARM_TOPIC}


def _client(service: str, endpoint: str) -> Any:
    return boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def _local(names: list[str], prefix: str) -> set[str]:
    return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}


def test_dev_stack_and_cdk_create_the_same_resources(synth: Synth, stack: Any) -> None:
    endpoint, messaging, prefix = stack.aws.endpoint, stack.aws.messaging_endpoint, get_settings().table_prefix
    dev_tables = _local(_client("dynamodb", endpoint).list_tables()["TableNames"], prefix)
    dev_queues = _local([url.rsplit("/", 1)[1] for url in _client("sqs", messaging).list_queues()["QueueUrls"]], prefix)
    dev_topics = _local(
        [t["TopicArn"].rsplit(":", 1)[1] for t in _client("sns", messaging).list_topics()["Topics"]], prefix
    )

    def cdk(resource_type: str, name_property: str) -> set[str]:
        return _local([r["Properties"][name_property] for r in synth.of_type(resource_type).values()], PREFIX)

    assert cdk("AWS::DynamoDB::Table", "TableName") == dev_tables
    assert cdk("AWS::SNS::Topic", "TopicName") == dev_topics | INFRA_ONLY_TOPICS
    assert cdk("AWS::SQS::Queue", "QueueName") == dev_queues | INFRA_ONLY_QUEUES
    assert dev_tables and dev_topics and dev_queues
