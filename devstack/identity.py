"""The dev stack's fake AWS identity: one region, one account, one pair of credentials, and the ARNs built from them.

Everything local (the embedded AWS, the gateways' events, the pumps' events, the IAM checks, the tests)
spells these values from here, so an ARN a handler sees always names the account the embedded AWS keeps
its resources in. moto accepts any credentials; these are the ones its documentation uses.
"""

from __future__ import annotations

from typing import Any

REGION = "us-east-1"
# moto's default account: what it puts in the ARNs and queue URLs it hands out.
ACCOUNT_ID = "123456789012"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"

# The environment a process needs to reach the embedded AWS with these credentials. The account id
# endpoint mode is off because the fake access key carries no account (botocore would otherwise warn).
CREDENTIALS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


def arn(service: str, resource: str, *, region: str | None = REGION, account: str = ACCOUNT_ID) -> str:
    """`arn:aws:{service}:{region}:{account}:{resource}`; region None for the global services (IAM, STS)."""
    return f"arn:aws:{service}:{region or ''}:{account}:{resource}"


def function_arn(function_name: str) -> str:
    """The ARN of the Lambda function `function_name`."""
    return arn("lambda", f"function:{function_name}")


def queue_arn(queue_name: str) -> str:
    """The ARN of the SQS queue `queue_name`."""
    return arn("sqs", queue_name)


def table_arn(table_name: str) -> str:
    """The ARN of the DynamoDB table `table_name`."""
    return arn("dynamodb", f"table/{table_name}")


def rule_arn(rule_name: str) -> str:
    """The ARN of the EventBridge rule `rule_name`."""
    return arn("events", f"rule/{rule_name}")


def role_arn(role_name: str) -> str:
    """The ARN of the IAM role `role_name`."""
    return arn("iam", f"role/{role_name}", region=None)


def client_kwargs(endpoint: str | None = None) -> dict[str, Any]:
    """boto3 `client()`/`resource()` arguments for the embedded AWS at `endpoint` with the fake credentials."""
    kwargs: dict[str, Any] = {
        "region_name": REGION,
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
    }
    if endpoint is not None:
        kwargs["endpoint_url"] = endpoint
    return kwargs


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for `service` at the embedded AWS `endpoint` (own session: clients are per thread)."""
    # Imported here: the embedded AWS's child processes import this module for CREDENTIALS_ENV alone and
    # start as they did before it existed, without boto3.
    import boto3
    from botocore.config import Config

    # Short timeouts: a pump's stop() must stay prompt even when the embedded AWS is slow or gone.
    config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.session.Session().client(service, config=config, **client_kwargs(endpoint))
