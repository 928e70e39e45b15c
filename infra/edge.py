"""What stands between the internet and the app: a WAF web ACL on the REST stage, and the web page
as a private S3 bucket behind CloudFront.

The page and its API share one origin: CloudFront serves the page's files from the bucket and sends
/api/* to the REST stage (named api), so the browser makes no cross-origin calls and the API needs no
CORS. The WebSocket is reached directly (WebSockets are not subject to CORS). config.json, which the
page reads at start (web/js/api.js), is written at deploy with those two addresses.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

# Requests per client IP per minute before WAF answers 403 for the rest of the minute. A buyer's page
# makes a few requests a second at most, so 300 a minute leaves room for a rush and stops a script.
PER_VIEWER_PER_MINUTE = 300
# Every request per connecting IP, whatever it says about itself: CloudFront's edges connect from
# shared addresses, so this ceiling is the generous one and PER_VIEWER_PER_MINUTE does the fine work.
PER_CONNECTING_IP_PER_MINUTE = 3000
RATE_WINDOW_SECONDS = 60
# CloudFront names itself in Via on every request it forwards.
_VIA_CLOUDFRONT = "cloudfront"


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _rate_rule(
    name: str,
    priority: int,
    limit: int,
    *,
    forwarded: bool,
    scope_down: wafv2.CfnWebACL.StatementProperty | None = None,
) -> wafv2.CfnWebACL.RuleProperty:
    statement = wafv2.CfnWebACL.RateBasedStatementProperty(
        limit=limit,
        evaluation_window_sec=RATE_WINDOW_SECONDS,
        aggregate_key_type="FORWARDED_IP" if forwarded else "IP",
        forwarded_ip_config=(
            wafv2.CfnWebACL.ForwardedIPConfigurationProperty(header_name="X-Forwarded-For", fallback_behavior="MATCH")
            if forwarded
            else None
        ),
        scope_down_statement=scope_down,
    )
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=statement),
        visibility_config=_visibility(name),
    )


class RestFirewall(Construct):
    """A regional web ACL on the REST stage: per-client rate limits and AWS's known-bad-inputs rules."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, stage_arn: str) -> None:
        super().__init__(scope, construct_id)
        via_cloudfront = wafv2.CfnWebACL.StatementProperty(
            byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(single_header={"Name": "via"}),
                positional_constraint="CONTAINS",
                search_string=_VIA_CLOUDFRONT,
                text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="LOWERCASE")],
            )
        )
        known_bad = wafv2.CfnWebACL.RuleProperty(
            name="KnownBadInputs",
            priority=0,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name="AWSManagedRulesKnownBadInputsRuleSet"
                )
            ),
            visibility_config=_visibility("KnownBadInputs"),
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{prefix}rest",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{prefix}rest"),
            rules=[
                known_bad,
                # Direct callers by their own address; the page's requests, through CloudFront, by the
                # viewer address CloudFront appends to X-Forwarded-For.
                _rate_rule("PerConnectingIp", 1, PER_CONNECTING_IP_PER_MINUTE, forwarded=False),
                _rate_rule("PerViewerIp", 2, PER_VIEWER_PER_MINUTE, forwarded=True, scope_down=via_cloudfront),
                _rate_rule(
                    "PerDirectClientIp",
                    3,
                    PER_VIEWER_PER_MINUTE,
                    forwarded=False,
                    scope_down=wafv2.CfnWebACL.StatementProperty(
                        not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=via_cloudfront)
                    ),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(self, "RestStage", resource_arn=stage_arn, web_acl_arn=self.web_acl.attr_arn)
        # WAF logs only to a group whose name starts with aws-waf-logs-.
        self.logs = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"aws-waf-logs-{prefix}rest",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        wafv2.CfnLoggingConfiguration(
            self, "Logging", resource_arn=self.web_acl.attr_arn, log_destination_configs=[self.logs.log_group_arn]
        )


class WebSite(Construct):
    """The web page: a private bucket read only by CloudFront (origin access control), /api/* to REST."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        web_dir: Path,
        rest_domain: str,
        api_stage: str,
        ws_url: str,
        images_bucket_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # The page is rebuilt from web/ at every deploy: nothing in the bucket is worth keeping.
            removal_policy=cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        # Product images: uploaded by browsers with presigned POSTs (hence CORS), read only by CloudFront.
        self.images = s3.Bucket(
            self,
            "Images",
            bucket_name=images_bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.POST], allowed_origins=["*"], allowed_headers=["*"])],
            # Creators' uploads are data: kept when the stack goes.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        api = origins.HttpOrigin(rest_domain, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY)
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="LiveDrop web page and its API",
            default_root_object="index.html",
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
            additional_behaviors={
                "/images/*": cloudfront.BehaviorOptions(
                    origin=origins.S3BucketOrigin.with_origin_access_control(self.images),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                ),
                f"/{api_stage}/*": cloudfront.BehaviorOptions(
                    origin=api,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    # Never cached at the edge: the API sets its own Cache-Control and ETags.
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                ),
            },
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        s3deploy.BucketDeployment(
            self,
            "Files",
            destination_bucket=self.bucket,
            sources=[
                s3deploy.Source.asset(str(web_dir)),
                # What web/js/api.js reads at start: the API through this distribution, the WebSocket direct.
                s3deploy.Source.json_data("config.json", {"api_url": f"/{api_stage}", "ws_url": ws_url}),
            ],
            distribution=self.distribution,
            distribution_paths=["/*"],
        )
