"""Creates every AWS resource of the stack on the embedded AWS, from the models and the topology.

Returns the environment the app reads through chalicelib.core.config (one Settings for all).
"""

from __future__ import annotations

import contextlib
import json
import math
import os

from chalicelib.schema import topology
from chalicelib.schema.models import create_all_tables
from chalicelib.wiring import bootstrap
from devstack.identity import ACCOUNT_ID, CREDENTIALS_ENV, aws_client
from devstack.persistence import add_missing_indexes


def base_env(endpoint: str, stage: str = "dev", dynamodb_endpoint: str | None = None) -> dict[str, str]:
    """The environment for a stack at `endpoint` (DynamoDB's services at `dynamodb_endpoint`, when it is
    another process) before any resource exists."""
    dynamodb = dynamodb_endpoint or endpoint
    return {
        **CREDENTIALS_ENV,
        "POWERTOOLS_TRACE_DISABLED": "1",
        # EMF lines on stdout are for CloudWatch; locally they would drown the console.
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "livedrop",
        "POWERTOOLS_METRICS_NAMESPACE": "LiveDrop",
        "LIVEDROP_STAGE": stage,
        "LIVEDROP_ACCOUNT_ID": ACCOUNT_ID,
        "LIVEDROP_AWS_ENDPOINT": endpoint,
        "LIVEDROP_AWS_ENDPOINTS": f"dynamodb={dynamodb},dynamodbstreams={dynamodb}",
        "LIVEDROP_AUTO_CONFIRM": "true",
        "LIVEDROP_PAYMENT_PROVIDER": "fake",
    }


def scaled_seconds(seconds: float, scale: float) -> int:
    """A whole-second AWS duration multiplied by the dev stack's --timeout-scale (at least 1 s)."""
    return max(1, math.ceil(seconds * scale))


def provision(
    endpoint: str, stage: str = "dev", dynamodb_endpoint: str | None = None, *, timeout_scale: float = 1.0
) -> dict[str, str]:
    """Create tables, topic, queues (+DLQs, redrive, subscriptions), scheduler group and user pool.

    `timeout_scale` multiplies the queues' visibility timeouts, as it does the functions' timeouts.

    Puts the stack's environment into os.environ, where the app's composition root reads it (again)
    on next use, and returns it, completed with the created ids.
    """
    env = base_env(endpoint, stage, dynamodb_endpoint)
    os.environ.update(env)
    bootstrap.reset()
    settings = bootstrap.settings()
    dynamodb = aws_client("dynamodb", dynamodb_endpoint or endpoint)
    create_all_tables(dynamodb)
    add_missing_indexes(dynamodb)  # tables restored from an older data folder

    sns = aws_client("sns", endpoint)
    sqs = aws_client("sqs", endpoint)
    topic_arn = sns.create_topic(Name=f"{settings.table_prefix}{topology.EVENTS_TOPIC}")["TopicArn"]
    for spec in topology.QUEUES:
        dlq_url = sqs.create_queue(QueueName=settings.table_prefix + spec.dlq_name)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=settings.table_prefix + spec.name,
            Attributes={
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
                ),
            },
        )["QueueUrl"]
        # Set apart from the creation: a queue restored from a data folder may have another scale's value.
        sqs.set_queue_attributes(
            QueueUrl=queue_url,
            Attributes={"VisibilityTimeout": str(scaled_seconds(spec.visibility_timeout, timeout_scale))},
        )
        if spec.event_types:
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={
                    "RawMessageDelivery": "true",
                    "FilterPolicy": json.dumps({"event_type": list(spec.event_types)}),
                },
            )
    env["LIVEDROP_EVENTS_TOPIC_ARN"] = topic_arn
    env["LIVEDROP_QUEUE_URL_PREFIX"] = f"{endpoint}/{ACCOUNT_ID}/"

    scheduler = aws_client("scheduler", endpoint)
    group = f"{settings.table_prefix}{topology.SCHEDULER_GROUP}"
    # Everything here may exist already (state restored from a data folder): reused, never replaced.
    try:
        scheduler.get_schedule_group(Name=group)
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule_group(Name=group)
    env["LIVEDROP_SCHEDULER_GROUP"] = group

    cognito = aws_client("cognito-idp", endpoint)
    pool_name = f"{settings.table_prefix}users"
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((pool["Id"] for pool in pools if pool["Name"] == pool_name), None)
    if pool_id is None:
        pool_id = cognito.create_user_pool(
            PoolName=pool_name,
            AutoVerifiedAttributes=["email"],
            UsernameAttributes=["email"],
            Schema=[{"Name": "name", "AttributeDataType": "String", "Mutable": True}],
        )["UserPool"]["Id"]
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == "livedrop-web"), None)
    if client_id is None:
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="livedrop-web",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
    # E-mail: SES sends only from a verified identity, in the configuration set the app names.
    ses = aws_client("ses", endpoint)
    ses.verify_domain_identity(Domain=settings.email_domain)
    with contextlib.suppress(ses.exceptions.ConfigurationSetAlreadyExistsException):
        ses.create_configuration_set(ConfigurationSet={"Name": settings.ses_configuration_set})

    # Product images (chalicelib.domain.images): uploaded by presigned POST, served by the embedded S3.
    s3 = aws_client("s3", endpoint)
    bucket = settings.images_bucket
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    # Anyone may read the images, as the web page's CDN serves them in AWS (its origin access is
    # granted by the same kind of bucket policy there); nothing else in the bucket is readable.
    public_read = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/images/*",
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public_read]}))
    env["LIVEDROP_IMAGES_BUCKET"] = bucket
    env["LIVEDROP_IMAGES_URL"] = f"{endpoint}/{bucket}"
    env["LIVEDROP_USER_POOL_ID"] = pool_id
    env["LIVEDROP_USER_POOL_CLIENT_ID"] = client_id
    os.environ.update(env)
    bootstrap.reset()
    return env
