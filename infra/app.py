"""The CDK app: `cdk deploy -c stage=prod` from infra/, or `make synth`.

Context (cdk -c key=value, or CDK_CONTEXT_JSON):
- stage: the Chalice stage of .chalice/config.json to deploy (dev);
- source_dir: the Chalice project (the repo root);
- package_dir: where Chalice packages the app, into chalice.out/ (infra/);
- alarm_email: an address the stack's alarm topic e-mails (`make synth STAGE=prod ALARM_EMAIL=...`); prod
  refuses to build without it or alarm_topic_arn: an alarm nobody hears is no alarm;
- alarm_topic_arn: an existing SNS topic that alarms notify too (none);
- reserve_concurrency: false to deploy without reserved concurrency (accounts with a small quota);
- api_gateway_logging_role: false where the account's API Gateway already has a CloudWatch role;
- stripe_secret: the Secrets Manager secret with api_key and webhook_secret, read when the stage's
  payment provider is stripe (livedrop/<stage>/stripe); the deploy fails when it is absent;
- web_dir: the web page's files (web/ of this repository);
- nag: true to check the stack against cdk-nag's AWS Solutions rules; findings accepted on purpose are
  suppressed with their reason in infra/nag.py, any other fails the synth.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parent
ROOT = INFRA_DIR.parent
# Chalice imports the app as the module `app`: this file must not shadow the repo's app.py.
sys.path[:] = [str(ROOT), *(p for p in sys.path if p and Path(p).resolve() not in (INFRA_DIR, ROOT))]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Chalice asks for a region while packaging (service principals); the template itself uses AWS::Region.
os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("CDK_DEFAULT_REGION", "us-east-1"))

import aws_cdk as cdk  # noqa: E402

from infra.stack import LiveDropStack  # noqa: E402


def _flag(value: object, default: bool) -> bool:
    """A boolean context value (-c key=false arrives as a string)."""
    if value is None:
        return default
    return str(value).strip().lower() not in {"false", "0", "no", "off"}


# Stages that must page someone: their synth stops before anything is built without a destination.
PAGED_STAGES = {"prod"}


def main() -> None:
    # CDK's built-in CloudFormation validation runs on every synth; its findings fail it.
    app = cdk.App(context={"@aws-cdk/core:validateAgainstDefaultRules": True})
    stage = app.node.try_get_context("stage") or "dev"
    alarm_email = app.node.try_get_context("alarm_email")
    alarm_topic_arn = app.node.try_get_context("alarm_topic_arn")
    if stage in PAGED_STAGES and not (alarm_email or alarm_topic_arn):
        sys.exit(
            f"stage {stage} needs an alarm destination: make synth STAGE={stage} ALARM_EMAIL=you@example.com "
            "(or cdk -c alarm_email=... / -c alarm_topic_arn=...)"
        )
    source_dir = app.node.try_get_context("source_dir") or str(ROOT)
    package_dir = Path(app.node.try_get_context("package_dir") or INFRA_DIR)
    # The Chalice construct packages into ./chalice.out (ignored); keep one package, not one per synth.
    package_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(package_dir)
    shutil.rmtree(package_dir / "chalice.out", ignore_errors=True)
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        env = cdk.Environment(account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION"))
    stack = LiveDropStack(
        app,
        stage,
        source_dir=source_dir,
        alarm_topic_arn=alarm_topic_arn,
        alarm_email=alarm_email,
        reserve_concurrency=_flag(app.node.try_get_context("reserve_concurrency"), True),
        api_gateway_logging_role=_flag(app.node.try_get_context("api_gateway_logging_role"), True),
        stripe_secret_name=app.node.try_get_context("stripe_secret"),
        web_dir=app.node.try_get_context("web_dir") or str(ROOT / "web"),
        env=env,
    )
    if _flag(app.node.try_get_context("nag"), False):
        from infra.nag import check

        check(app, stack)
    app.synth()


if __name__ == "__main__":
    main()
