"""The prod template is ready for a first real drop: sign-up e-mail through SES, alarms someone hears
and that do not cry wolf, the Stripe secret checked at deploy, edge protection, the web page deployed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from infra.edge import PER_CONNECTING_IP_PER_MINUTE, PER_VIEWER_PER_MINUTE
from tests.infra.conftest import ROOT, Synth, stage_source
from tests.infra.test_stack import alarm_metric, functions, render


def one(synth: Synth, resource_type: str) -> dict[str, Any]:
    (resource,) = synth.of_type(resource_type).values()
    return resource["Properties"]


def parameter_ref(synth: Synth, expr: Any) -> str:
    """The deploy parameter an expression is, or contains (e.g. inside an ARN or a Join)."""
    refs = [name for name in synth.template.get("Parameters", {}) if json.dumps({"Ref": name}) in json.dumps(expr)]
    assert len(refs) == 1, expr
    return refs[0]


# --- 1. sign-up e-mail through SES, threat protection ------------------------------------------
def test_prod_sends_sign_up_mail_through_ses_with_deploy_parameters(prod: Synth) -> None:
    pool = one(prod, "AWS::Cognito::UserPool")
    email = pool["EmailConfiguration"]
    assert email["EmailSendingAccount"] == "DEVELOPER"
    assert parameter_ref(prod, email["From"]) == "SesFromEmail"
    assert parameter_ref(prod, email["ConfigurationSet"]) == "SesConfigurationSet"
    assert parameter_ref(prod, email["SourceArn"]) == "SesIdentity"
    assert ":ses:" in json.dumps(email["SourceArn"]) and "identity/" in json.dumps(email["SourceArn"])
    # Threat protection: audit at least (ENFORCED would block risky sign-ins outright).
    assert pool["UserPoolAddOns"]["AdvancedSecurityMode"] in {"AUDIT", "ENFORCED"}
    assert pool["UserPoolTier"] == "PLUS"


def test_dev_auto_confirms_and_asks_for_no_ses_parameters(synth: Synth) -> None:
    assert "EmailConfiguration" not in one(synth, "AWS::Cognito::UserPool") or not one(
        synth, "AWS::Cognito::UserPool"
    ).get("EmailConfiguration")
    assert not {"SesFromEmail", "SesConfigurationSet", "SesIdentity"} & set(synth.template.get("Parameters", {}))


# --- 2. alarms: a destination, M of N, rates, latency past cold starts ---------------------------
def test_prod_synth_refuses_to_build_without_an_alarm_destination(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEDROP_", "AWS_", "CDK_"))}
    env["CDK_OUTDIR"] = str(tmp_path / "cdk.out")
    env["CDK_CONTEXT_JSON"] = json.dumps(
        {"stage": "prod", "source_dir": str(stage_source(tmp_path / "source")), "package_dir": str(tmp_path)}
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "app.py")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "ALARM_EMAIL=" in done.stderr
    assert not list(tmp_path.glob("**/*.template.json"))


def test_make_synth_passes_alarm_email_to_the_app() -> None:
    dry = subprocess.run(
        ["make", "-n", "synth", "STAGE=prod", "ALARM_EMAIL=oncall@example.com"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    context = json.loads(dry.split("CDK_CONTEXT_JSON='", 1)[1].split("'", 1)[0])
    assert context == {"stage": "prod", "alarm_email": "oncall@example.com"}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_no_alarm_pages_on_one_bad_minute(synths: dict[str, Synth], stage: str) -> None:
    for logical, alarm in synths[stage].of_type("AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        assert props.get("DatapointsToAlarm", 1) >= 2 and props["EvaluationPeriods"] >= 2, logical


def test_lambda_errors_and_throttles_alarm_on_a_rate_of_invocations_not_on_one(prod: Synth) -> None:
    watched = 0
    for logical, alarm in prod.of_type("AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        metric = alarm_metric(props)
        if metric["MetricName"] not in {"Errors", "Throttles"}:
            continue
        watched += 1
        names = {q["MetricStat"]["Metric"]["MetricName"] for q in props["Metrics"] if "MetricStat" in q}
        assert names == {metric["MetricName"], "Invocations"}, logical
        (expression,) = [q["Expression"] for q in props["Metrics"] if "Expression" in q]
        assert "/" in expression and "invocations" in expression, logical
        assert 0 < props["Threshold"] < 1, logical
    assert watched == 2 * len(functions(prod))


def test_order_latency_alarm_needs_three_slow_minutes_of_five(prod: Synth) -> None:
    (latency,) = [
        a["Properties"]
        for a in prod.of_type("AWS::CloudWatch::Alarm").values()
        if alarm_metric(a["Properties"])["MetricName"] == "Latency"
    ]
    assert alarm_metric(latency)["Stat"] == "p99"
    period = latency.get("Period") or latency["Metrics"][0]["MetricStat"]["Period"]
    # A minute or two of cold starts at a rush's first seconds stays under 3 of 5 one-minute periods.
    assert period == 60
    assert latency["DatapointsToAlarm"] >= 3 and latency["EvaluationPeriods"] >= latency["DatapointsToAlarm"]


# --- 4. the Stripe secret, checked at deploy -----------------------------------------------------
def test_prod_deploy_fails_when_the_stripe_secret_is_absent(prod: Synth) -> None:
    (check,) = prod.of_type("Custom::AWS").values()
    for phase in ("Create", "Update"):
        call = json.loads(check["Properties"][phase])
        assert (call["service"], call["action"]) == ("SecretsManager", "getSecretValue")
        assert call["parameters"] == {"SecretId": "livedrop/prod/stripe"}
        # The value never leaves the check: only the ARN is returned, nothing is logged.
        assert call["outputPaths"] == ["ARN"] and call["logApiResponseData"] is False
    (policy,) = [
        p["Properties"]
        for logical, p in prod.of_type("AWS::IAM::Policy").items()
        if logical in check.get("DependsOn", [])
    ]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert "secret:livedrop/prod/stripe-??????" in json.dumps(statement["Resource"])


def test_dev_pays_with_the_fake_provider_and_checks_no_secret(synth: Synth) -> None:
    assert not synth.of_type("Custom::AWS")


# --- 5. edge protection ----------------------------------------------------------------------------
def test_a_waf_web_acl_limits_each_client_ip_on_the_rest_stage(prod: Synth) -> None:
    acl = one(prod, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL" and "Allow" in acl["DefaultAction"]
    rates = {
        rule["Name"]: rule["Statement"]["RateBasedStatement"]
        for rule in acl["Rules"]
        if "RateBasedStatement" in rule["Statement"]
    }
    for rule in acl["Rules"]:
        if rule["Name"] in rates:
            assert "Block" in rule["Action"]
    # Every request counts against its connecting IP; direct callers and the page's viewers each get
    # the tighter per-client limit.
    assert rates["PerConnectingIp"]["AggregateKeyType"] == "IP"
    assert "ScopeDownStatement" not in rates["PerConnectingIp"]
    assert rates["PerConnectingIp"]["Limit"] == PER_CONNECTING_IP_PER_MINUTE
    assert rates["PerDirectClientIp"]["AggregateKeyType"] == "IP"
    assert rates["PerViewerIp"]["AggregateKeyType"] == "FORWARDED_IP"
    assert rates["PerDirectClientIp"]["Limit"] == rates["PerViewerIp"]["Limit"] == PER_VIEWER_PER_MINUTE
    assert all(r["EvaluationWindowSec"] == 60 for r in rates.values())
    association = one(prod, "AWS::WAFv2::WebACLAssociation")
    arn = association["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("::/restapis/${RestAPI}/stages/${RestAPI.Stage}")
    (acl_logical,) = prod.of_type("AWS::WAFv2::WebACL")
    assert association["WebACLArn"] == {"Fn::GetAtt": [acl_logical, "Arn"]}
    assert one(prod, "AWS::WAFv2::LoggingConfiguration")["ResourceArn"] == {"Fn::GetAtt": [acl_logical, "Arn"]}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_sns_topic_refuses_publishes_without_tls(synths: dict[str, Synth], stage: str) -> None:
    synth = synths[stage]
    guarded = set()
    for policy in synth.of_type("AWS::SNS::TopicPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if (
                statement["Effect"] == "Deny"
                and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                and "sns:Publish" in json.dumps(statement["Action"])
            ):
                guarded |= {t["Ref"] for t in policy["Properties"]["Topics"]}
    assert guarded == set(synth.of_type("AWS::SNS::Topic"))


# --- 6. the web page --------------------------------------------------------------------------------
def test_the_web_page_is_a_private_bucket_read_only_by_cloudfront(prod: Synth) -> None:
    buckets = prod.of_type("AWS::S3::Bucket")
    # Two private buckets behind the one distribution: the page, and the products' images.
    (images_logical,) = [k for k, b in buckets.items() if "images" in json.dumps(b["Properties"].get("BucketName"))]
    (bucket_logical,) = [k for k in buckets if k != images_logical]
    blocks = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    for bucket in buckets.values():
        assert all(bucket["Properties"]["PublicAccessBlockConfiguration"][k] for k in blocks)
    (distribution_logical,) = prod.of_type("AWS::CloudFront::Distribution")
    config = one(prod, "AWS::CloudFront::Distribution")["DistributionConfig"]
    access_controls = set(prod.of_type("AWS::CloudFront::OriginAccessControl"))
    by_id = {o["Id"]: o for o in config["Origins"]}
    s3_origin = by_id[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert bucket_logical in json.dumps(s3_origin["DomainName"])
    assert s3_origin["OriginAccessControlId"]["Fn::GetAtt"][0] in access_controls
    assert s3_origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    # Read access for this distribution only, on both buckets: the service principal and its SourceArn.
    for policy in prod.of_type("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        (reader,) = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
        assert reader["Action"] == "s3:GetObject"
        assert distribution_logical in json.dumps(reader["Condition"]["StringEquals"]["AWS:SourceArn"])
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    # The images from their bucket, through the same distribution.
    images = behaviors.pop("/images/*")
    assert images_logical in json.dumps(by_id[images["TargetOriginId"]]["DomainName"])
    assert by_id[images["TargetOriginId"]]["OriginAccessControlId"]["Fn::GetAtt"][0] in access_controls
    # The API through the same distribution (no cross-origin calls), never cached.
    (api,) = behaviors.values()
    assert api["PathPattern"] == "/api/*"
    assert "RestAPI" in json.dumps(by_id[api["TargetOriginId"]]["DomainName"])
    assert by_id[api["TargetOriginId"]]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert "POST" in api["AllowedMethods"]


def test_the_page_is_deployed_with_the_api_and_websocket_addresses(prod: Synth) -> None:
    deployment = one(prod, "Custom::CDKBucketDeployment")
    assert deployment["DistributionPaths"] == ["/*"]
    markers = json.dumps(deployment["SourceMarkers"])
    assert '\\"wss://' in markers and '"Ref": "WebsocketAPI"' in markers
    # config.json as web/js/api.js reads it: the WebSocket address filled in at deploy, the API under /api.
    (config_asset,) = [
        path for path in prod.template_path.parent.glob("asset.*") if path.is_dir() and (path / "config.json").exists()
    ]
    config = json.loads((config_asset / "config.json").read_text().replace("<<marker:0xbaba:0>>", '"wss://x/api"'))
    assert config == {"api_url": "/api", "ws_url": "wss://x/api"}
    (web_asset,) = [
        path for path in prod.template_path.parent.glob("asset.*") if path.is_dir() and (path / "index.html").exists()
    ]
    assert (web_asset / "js" / "api.js").exists()
    outputs = prod.template["Outputs"]
    assert "DomainName" in json.dumps(outputs["WebUrl"]["Value"])


# --- the capacity model reads what is deployed ----------------------------------------------------
def test_the_plans_event_source_caps_are_the_templates(synth: Synth) -> None:
    from bench.plan import deployed_caps

    caps = {}
    for mapping in synth.of_type("AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        if "ScalingConfig" in props:
            caps[render(synth, props["EventSourceArn"]).removeprefix("queue:")] = props["ScalingConfig"][
                "MaximumConcurrency"
            ]
    assert deployed_caps() == caps


# --- rule packs ----------------------------------------------------------------------------------------
def test_cdk_nag_finds_nothing_it_was_not_told_why_to_accept(prod: Synth) -> None:
    report = json.loads((prod.template_path.parent / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    for accepted in nag["suppressedViolations"]:
        assert len(accepted["reason"]) > 20, accepted["acknowledgedId"]
