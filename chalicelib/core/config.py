"""One frozen Settings object, read from the environment once; nothing else reads os.environ."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    account_id: str
    table_prefix: str
    # The dev stack's endpoint for every AWS service (moto); None in AWS.
    aws_endpoint_url: str | None
    events_topic_arn: str
    queue_url_prefix: str
    scheduler_group: str
    scheduler_role_arn: str
    function_arn_prefix: str
    user_pool_id: str
    user_pool_client_id: str
    cognito_issuer: str
    jwks_url: str
    auto_confirm: bool
    ws_management_endpoint: str
    payment_provider: str
    stripe_api_key: str
    stripe_webhook_secret: str
    # The Secrets Manager secret holding Stripe's api_key and webhook_secret (read at run time).
    stripe_secret_name: str
    reservation_seconds: int
    idempotency_key_hours: int
    debug: bool
    # Per-service endpoints that override aws_endpoint_url, as (botocore service name, URL) pairs:
    # the dev stack serves DynamoDB from a process of its own.
    service_endpoints: tuple[tuple[str, str], ...] = ()
    # How long one AWS call may wait (docs/limits-and-faults.md): a backend that does not answer makes
    # a request fail in seconds with 503 backend_unavailable, well inside API Gateway's 29 s.
    aws_connect_timeout_seconds: float = 2.0
    aws_read_timeout_seconds: float = 10.0
    aws_max_attempts: int = 2  # the first call and its retries (throttling, 5xx, timeouts)

    def endpoint_url(self, service: str) -> str | None:
        """Where clients of `service` (a botocore service name) go: its own endpoint, else the default."""
        for name, url in self.service_endpoints:
            if name == service:
                return url
        return self.aws_endpoint_url

    # Hot drops (docs/sale-modes.md): per-user fixed windows, admission tokens and the admissions tick.
    rate_window_seconds: int = 10
    order_rate_limit: int = 20
    join_rate_limit: int = 5
    admission_key: str = ""
    admission_tick_seconds: float = 1.0
    admission_loop_seconds: float = 0.0
    # The fake payment provider's time per charge or refund (the dev stack's --payment-latency-ms).
    payment_latency_ms: int = 0

    # E-mail and Web Push (docs/notification-channels.md).
    email_from: str = "no-reply@livedrop.example"
    ses_configuration_set: str = ""
    # Where links in e-mails point: the API (unsubscribe) and the web page (a drop, an order).
    public_url: str = ""
    web_url: str = ""
    vapid_secret_name: str = ""
    # The dev stack only: push endpoints on http://127.0.0.1 (a test's own push service) are accepted.
    push_loopback: bool = False
    # Product images (chalicelib.domain.images): the bucket uploads go to, and the URL its keys are served under:
    # in AWS none, so image URLs are root-relative (/images/...) on the web page's CDN, which serves the
    # page, its API and the images from one origin; the embedded S3's URL in the dev stack.
    images_bucket: str = ""
    images_url: str = ""

    @property
    def user_pool_arn(self) -> str:
        return f"arn:aws:cognito-idp:{self.region}:{self.account_id}:userpool/{self.user_pool_id}"

    @property
    def email_domain(self) -> str:
        """The domain of the sender address: the SES identity e-mail is sent from."""
        return self.email_from.rpartition("@")[2].rstrip(">").strip()

    def table_name(self, name: str) -> str:
        return f"{self.table_prefix}{name}"

    def queue_url(self, name: str) -> str:
        return f"{self.queue_url_prefix}{self.table_prefix}{name}"

    def function_arn(self, name: str) -> str:
        return f"{self.function_arn_prefix}{name}"


def _service_endpoints(raw: str | None) -> tuple[tuple[str, str], ...]:
    """`dynamodb=http://a,dynamodbstreams=http://a` -> (("dynamodb", "http://a"), ...)."""
    pairs = (item.split("=", 1) for item in (raw or "").split(",") if "=" in item)
    return tuple((name.strip(), url.strip()) for name, url in pairs if name.strip() and url.strip())


def settings_from_env(env: dict[str, str] | os._Environ[str]) -> Settings:
    """Build Settings from an environment mapping (defaults suit unit tests)."""
    stage = env.get("LIVEDROP_STAGE", "dev")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    account = env.get("LIVEDROP_ACCOUNT_ID", "123456789012")
    prefix = env.get("LIVEDROP_TABLE_PREFIX", f"livedrop-{stage}-")
    endpoint = env.get("LIVEDROP_AWS_ENDPOINT") or None
    pool_id = env.get("LIVEDROP_USER_POOL_ID", "")
    issuer_default = f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"
    jwks_default = (
        f"{endpoint}/{pool_id}/.well-known/jwks.json" if endpoint else f"{issuer_default}/.well-known/jwks.json"
    )
    public_url = env.get("LIVEDROP_PUBLIC_URL", "").rstrip("/")
    queue_prefix_default = f"{endpoint}/{account}/" if endpoint else f"https://sqs.{region}.amazonaws.com/{account}/"
    return Settings(
        stage=stage,
        region=region,
        account_id=account,
        table_prefix=prefix,
        aws_endpoint_url=endpoint,
        events_topic_arn=env.get("LIVEDROP_EVENTS_TOPIC_ARN", f"arn:aws:sns:{region}:{account}:{prefix}events"),
        queue_url_prefix=env.get("LIVEDROP_QUEUE_URL_PREFIX", queue_prefix_default),
        scheduler_group=env.get("LIVEDROP_SCHEDULER_GROUP", f"{prefix}drops"),
        scheduler_role_arn=env.get("LIVEDROP_SCHEDULER_ROLE_ARN", f"arn:aws:iam::{account}:role/{prefix}scheduler"),
        function_arn_prefix=env.get(
            "LIVEDROP_FUNCTION_ARN_PREFIX", f"arn:aws:lambda:{region}:{account}:function:livedrop-{stage}-"
        ),
        user_pool_id=pool_id,
        user_pool_client_id=env.get("LIVEDROP_USER_POOL_CLIENT_ID", ""),
        cognito_issuer=env.get("LIVEDROP_COGNITO_ISSUER", issuer_default),
        jwks_url=env.get("LIVEDROP_JWKS_URL", jwks_default),
        auto_confirm=_flag(env.get("LIVEDROP_AUTO_CONFIRM")),
        ws_management_endpoint=env.get("LIVEDROP_WS_MANAGEMENT_ENDPOINT", ""),
        payment_provider=env.get("LIVEDROP_PAYMENT_PROVIDER", "fake"),
        stripe_api_key=env.get("LIVEDROP_STRIPE_API_KEY", ""),
        stripe_webhook_secret=env.get("LIVEDROP_STRIPE_WEBHOOK_SECRET", ""),
        stripe_secret_name=env.get("LIVEDROP_STRIPE_SECRET", f"livedrop/{stage}/stripe"),
        reservation_seconds=int(env.get("LIVEDROP_RESERVATION_SECONDS", "600")),
        idempotency_key_hours=int(env.get("LIVEDROP_IDEMPOTENCY_KEY_HOURS", "24")),
        debug=_flag(env.get("LIVEDROP_DEBUG")),
        service_endpoints=_service_endpoints(env.get("LIVEDROP_AWS_ENDPOINTS")),
        rate_window_seconds=int(env.get("LIVEDROP_RATE_WINDOW_SECONDS", "10")),
        order_rate_limit=int(env.get("LIVEDROP_ORDER_RATE_LIMIT", "20")),
        join_rate_limit=int(env.get("LIVEDROP_JOIN_RATE_LIMIT", "5")),
        admission_key=env.get("LIVEDROP_ADMISSION_KEY", ""),
        admission_tick_seconds=float(env.get("LIVEDROP_ADMISSION_TICK_SECONDS", "1")),
        payment_latency_ms=int(env.get("LIVEDROP_PAYMENT_LATENCY_MS", "0")),
        # A Lambda scheduled once a minute ticks in a loop for most of it; the dev stack's pump calls
        # it once per tick instead.
        admission_loop_seconds=float(env.get("LIVEDROP_ADMISSION_LOOP_SECONDS", "0" if endpoint else "50")),
        aws_connect_timeout_seconds=float(env.get("LIVEDROP_AWS_CONNECT_TIMEOUT_SECONDS", "2")),
        aws_read_timeout_seconds=float(env.get("LIVEDROP_AWS_READ_TIMEOUT_SECONDS", "10")),
        aws_max_attempts=int(env.get("LIVEDROP_AWS_MAX_ATTEMPTS", "2")),
        email_from=env.get("LIVEDROP_EMAIL_FROM", "no-reply@livedrop.example"),
        ses_configuration_set=env.get("LIVEDROP_SES_CONFIGURATION_SET", f"{prefix}email"),
        public_url=public_url,
        web_url=env.get("LIVEDROP_WEB_URL", f"{public_url}/web/" if public_url else ""),
        vapid_secret_name=env.get("LIVEDROP_VAPID_SECRET", f"{prefix}vapid"),
        # The local dev stack only: a test runs its own push service on loopback (in AWS, loopback is the
        # Lambda runtime API, never a push service).
        push_loopback=endpoint is not None,
        # Bucket names are global: the account and region are in it (as infra/ names it).
        images_bucket=env.get("LIVEDROP_IMAGES_BUCKET", f"{prefix}images-{account}-{region}"),
        images_url=env.get(
            "LIVEDROP_IMAGES_URL", f"{endpoint}/{prefix}images-{account}-{region}" if endpoint else ""
        ).rstrip("/"),
    )


_current: Settings | None = None
_lock = threading.Lock()


def get_settings() -> Settings:
    """The process-wide Settings, read from os.environ on first use (never at import).

    Only the composition root (chalicelib.wiring.bootstrap) replaces or forgets them, through use_settings."""
    global _current
    found = _current
    if found is None:
        with _lock:
            if _current is None:
                _current = settings_from_env(os.environ)
            found = _current
    return found


def use_settings(settings: Settings | None) -> Settings | None:
    """Make `settings` the process-wide Settings (None: read os.environ again on next use); returns the
    ones they replace (None if none were read yet)."""
    global _current
    with _lock:
        previous, _current = _current, settings
    return previous
