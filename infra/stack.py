"""LiveDrop in AWS: the Chalice app (chalice.cdk.Chalice) plus everything Chalice does not create.

Tables come from chalicelib.schema.models.table_spec, queues, subscriptions and event sources from
chalicelib.schema.topology, per-function permissions from chalicelib.schema.functions: the same definitions
the dev stack provisions locally, so the two cannot drift.

Chalice packages the app at synth time, before CDK knows any ARN. So the functions' handlers stay
plain `@app.lambda_function`s; their event source mappings, roles, names and environment are added
here onto the functions Chalice made, and the Cognito authorizer's provider ARN is patched into the
packaged API definition. The pieces live by concept: infra.lambdas (roles, settings, event sources),
infra.gateways (the APIs), infra.users (Cognito), infra.arns (ARNs as tokens).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.core.config import get_settings, settings_from_env
from chalicelib.schema import models, topology
from chalicelib.schema.functions import ACCESS, API_HANDLER
from infra import gateways, lambdas, policy, users
from infra.arns import APP_NAME, CdkArns, camel
from infra.edge import RestFirewall, WebSite
from infra.monitoring import Monitoring
from infra.policy import STREAM_FAILURES_QUEUE

# Chalice needs some role ARN to package with manage_iam_role off; every function gets its own below.
_PACKAGING_ROLE_ARN = "arn:aws:iam::000000000000:role/replaced-per-function"


def logical_table_name(model: Any) -> str:
    """A model's table name without the stage prefix of the process that imported the models."""
    name: str = model.Meta.table_name
    prefix = get_settings().table_prefix
    if not name.startswith(prefix):
        raise ValueError(f"table {name} does not start with the settings' prefix {prefix}")
    return name[len(prefix) :]


@dataclass
class AppFunction:
    """One function Chalice packaged: its handler name, SAM logical id and deployed name."""

    handler: str
    logical_id: str
    function_name: str
    resource: cdk.CfnResource


class LiveDropStack(cdk.Stack):
    """One stage of LiveDrop. The construct id is the Chalice stage (dev, prod): Chalice reads it."""

    def __init__(
        self,
        scope: Construct,
        stage: str,
        *,
        source_dir: str,
        alarm_topic_arn: str | None = None,
        alarm_email: str | None = None,
        reserve_concurrency: bool = True,
        api_gateway_logging_role: bool = True,
        stripe_secret_name: str | None = None,
        web_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, stage, stack_name=f"{APP_NAME}-{stage}", **kwargs)
        self.stage = stage
        self.prefix = f"{APP_NAME}-{stage}-"
        # Product images (chalicelib.domain.images): bucket names are global, so the account and region are in it.
        self.images_bucket_name = f"{self.prefix}images-{self.account}-{self.region}"
        self.source_dir = Path(source_dir)
        chalice_config = json.loads((self.source_dir / ".chalice" / "config.json").read_text())
        stage_config = chalice_config.get("stages", {}).get(stage, {})
        self.api_stage = stage_config.get("api_gateway_stage") or chalice_config.get("api_gateway_stage") or "api"
        stage_env = {**chalice_config.get("environment_variables", {}), **stage_config.get("environment_variables", {})}
        self.payment_provider = stage_env.get("LIVEDROP_PAYMENT_PROVIDER", "fake")
        # A stage that confirms sign-ups by e-mail sends them through SES (Cognito's own sender: ~50 a day).
        self.sends_email = stage_env.get("LIVEDROP_AUTO_CONFIRM", "false").lower() != "true"
        self.stripe_secret_name = stripe_secret_name or f"{APP_NAME}/{stage}/stripe"
        self.reserve_concurrency = reserve_concurrency
        retain = cdk.RemovalPolicy.RETAIN if stage == "prod" else cdk.RemovalPolicy.DESTROY
        cdk.Tags.of(self).add("app", APP_NAME)
        cdk.Tags.of(self).add("stage", stage)

        self.tables = self._tables(retain)
        # enforce_ssl: the topic's policy refuses publishes that do not come over TLS (aws:SecureTransport).
        self.topic = sns.Topic(self, "EventsTopic", topic_name=self.prefix + topology.EVENTS_TOPIC, enforce_ssl=True)
        self.queues, self.dead_letter_queues = self._queues()
        self.stream_failures = sqs.Queue(
            self,
            "StreamFailuresQueue",
            queue_name=self.prefix + STREAM_FAILURES_QUEUE,
            retention_period=cdk.Duration.days(14),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
        )
        self.schedule_group = scheduler.CfnScheduleGroup(
            self, "DropSchedules", name=self.prefix + topology.SCHEDULER_GROUP
        )
        self.user_pool, self.user_pool_client = users.user_pool(self, retain)
        self._email(stage_env)

        self.chalice = Chalice(
            self,
            "Chalice",
            source_dir=str(self.source_dir),
            stage_config={"manage_iam_role": False, "iam_role_arn": _PACKAGING_ROLE_ARN},
        )
        self.sam = json.loads((Path(self.chalice._sam_package_dir) / "sam.json").read_text())
        self.functions = self._app_functions()
        self.scheduler_role = self._scheduler_role()
        self.ws_api_id = self._resource_ref("WebsocketAPI")
        self.access_logs = gateways.access_logs(self, api_gateway_logging_role)
        gateways.patch_rest_api(self)
        gateways.patch_websocket_api(self)
        self.roles: dict[str, iam.Role] = {}
        for function in self.functions.values():
            lambdas.configure(self, function)
        lambdas.event_sources(self)
        if self.payment_provider == "stripe":
            self._check_stripe_secret()
        self.firewall = self.website = None
        if "RestAPI" in self.sam["Resources"]:
            rest_id = self.chalice.get_resource("RestAPI").ref
            self.firewall = RestFirewall(
                self,
                "Firewall",
                prefix=self.prefix,
                # RestAPI.Stage: SAM's reference to the stage it creates, so the association waits for it.
                stage_arn=cdk.Fn.sub(
                    "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}/stages/${RestAPI.Stage}"
                ),
            )
            self.website = WebSite(
                self,
                "Web",
                web_dir=Path(web_dir) if web_dir else self.source_dir / "web",
                rest_domain=f"{rest_id}.execute-api.{self.region}.{self.url_suffix}",
                api_stage=self.api_stage,
                ws_url=self.ws_url,
                images_bucket_name=self.images_bucket_name,
            )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            stage=stage,
            api_name=self.rest_api_name,
            api_stage=self.api_stage,
            function_names=[f.function_name for f in self.functions.values()],
            dead_letter_queues=[*self.dead_letter_queues.values(), self.stream_failures],
            alarm_topic_arn=alarm_topic_arn,
            alarm_email=alarm_email,
            queues=list(self.queues.values()),
            stream_function_names=sorted(
                {
                    self.functions[s.handler].function_name
                    for s in topology.STREAM_SOURCES
                    if s.handler in self.functions
                }
            ),
        )
        self._outputs()
        self._drop_dependencies_a_reference_implies()

    # --- state ---------------------------------------------------------------------------------
    def _tables(self, removal: cdk.RemovalPolicy) -> dict[str, cdk.CfnResource]:
        tables = {}
        for model in models.ALL_MODELS:
            spec = models.table_spec(model)
            name = logical_table_name(model)
            properties: dict[str, Any] = {
                **spec["create"],
                # CreateTable's StreamEnabled is implied in CloudFormation by the view type.
                "TableName": self.prefix + name,
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": removal == cdk.RemovalPolicy.RETAIN,
            }
            if "StreamSpecification" in properties:
                properties["StreamSpecification"] = {
                    "StreamViewType": properties["StreamSpecification"]["StreamViewType"]
                }
            if spec["ttl_attribute"]:
                properties["TimeToLiveSpecification"] = {"AttributeName": spec["ttl_attribute"], "Enabled": True}
            table = cdk.CfnResource(self, f"{name}Table", type="AWS::DynamoDB::Table", properties=properties)
            table.apply_removal_policy(removal)
            tables[name] = table
        return tables

    def _queues(self) -> tuple[dict[str, sqs.Queue], dict[str, sqs.Queue]]:
        queues, dlqs = {}, {}
        for spec in topology.QUEUES:
            dlq = sqs.Queue(
                self,
                f"{camel(spec.name)}DeadLetterQueue",
                queue_name=self.prefix + spec.dlq_name,
                retention_period=cdk.Duration.days(14),
                enforce_ssl=True,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
            )
            queue = sqs.Queue(
                self,
                f"{camel(spec.name)}Queue",
                queue_name=self.prefix + spec.name,
                visibility_timeout=cdk.Duration.seconds(spec.visibility_timeout),
                dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=spec.max_receive_count, queue=dlq),
                enforce_ssl=True,
                # Encrypted at rest with SQS's own keys: no KMS calls to pay for, nothing to grant.
                encryption=sqs.QueueEncryption.SQS_MANAGED,
            )
            if spec.event_types:
                self.topic.add_subscription(
                    subscriptions.SqsSubscription(
                        queue,
                        raw_message_delivery=True,
                        filter_policy={
                            "event_type": sns.SubscriptionFilter.string_filter(allowlist=list(spec.event_types))
                        },
                    )
                )
            queues[spec.name], dlqs[spec.name] = queue, dlq
        return queues, dlqs

    def _email(self, stage_env: dict[str, str]) -> None:
        """E-mail (docs/notification-channels.md): the sender's SES domain identity (verified through
        the DKIM records CloudFormation outputs) and the configuration set every send names."""
        settings = settings_from_env({"LIVEDROP_STAGE": self.stage, "LIVEDROP_TABLE_PREFIX": self.prefix, **stage_env})
        self.email_from, self.email_domain = settings.email_from, settings.email_domain
        self.public_url, self.web_url = settings.public_url, settings.web_url
        self.vapid_secret_name = settings.vapid_secret_name
        self.configuration_set_name = settings.ses_configuration_set
        self.configuration_set = ses.ConfigurationSet(
            self, "EmailConfigurationSet", configuration_set_name=self.configuration_set_name
        )
        self.email_identity = ses.EmailIdentity(
            self,
            "EmailIdentity",
            identity=ses.Identity.domain(self.email_domain),
            configuration_set=self.configuration_set,
        )

    def _check_stripe_secret(self) -> None:
        """Fail the deploy when the stage's Stripe secret is absent or has no value: read once, at deploy,
        with the value kept out of the response and the logs (only its ARN is returned)."""
        read = custom_resources.AwsSdkCall(
            service="SecretsManager",
            action="getSecretValue",
            parameters={"SecretId": self.stripe_secret_name},
            physical_resource_id=custom_resources.PhysicalResourceId.from_response("ARN"),
            output_paths=["ARN"],
            logging=custom_resources.Logging.with_data_hidden(),
        )
        custom_resources.AwsCustomResource(
            self,
            "StripeSecretCheck",
            on_create=read,
            on_update=read,
            install_latest_aws_sdk=False,
            policy=custom_resources.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["secretsmanager:GetSecretValue"], resources=[CdkArns(self).stripe_secret()]
                    )
                ]
            ),
        )

    # --- the functions Chalice made ------------------------------------------------------------
    def _app_functions(self) -> dict[str, AppFunction]:
        functions = {}
        for logical_id, resource in self.sam["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            handler = resource["Properties"]["Handler"].split(".", 1)[1]
            name = API_HANDLER if handler == "app" else handler
            if name not in ACCESS:
                raise KeyError(f"function {name} ({logical_id}) has no entry in chalicelib/functions.py ACCESS")
            functions[name] = AppFunction(
                name, logical_id, f"{APP_NAME}-{self.stage}-{name}", self.chalice.get_resource(logical_id)
            )
        return functions

    def _resource_ref(self, logical_id: str) -> str | None:
        return self.chalice.get_resource(logical_id).ref if logical_id in self.sam["Resources"] else None

    def function_arn(self, function_name: str) -> str:
        return self.format_arn(
            service="lambda",
            resource="function",
            resource_name=function_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _scheduler_role(self) -> iam.Role:
        # By name, not by reference: the target function's environment names this role.
        statements = policy.scheduler_statements(CdkArns(self))
        return iam.Role(
            self,
            "SchedulerRole",
            description="EventBridge Scheduler invokes the drop lifecycle function",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}
            ),
            inline_policies={
                "invoke": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(actions=list(s.actions), resources=list(s.resources)) for s in statements
                    ]
                )
            },
        )

    @property
    def cognito_issuer(self) -> str:
        # ProviderURL has no scheme; a token's iss does.
        return f"https://{self.user_pool.user_pool_provider_url}"

    @property
    def rest_api_name(self) -> str:
        return f"{APP_NAME}-{self.stage}"

    @property
    def ws_url(self) -> str:
        if self.ws_api_id is None:
            return ""
        return f"wss://{self.ws_api_id}.execute-api.{self.region}.{self.url_suffix}/{self.api_stage}"

    @property
    def ws_management_endpoint(self) -> str:
        if self.ws_api_id is None:
            return ""
        return f"https://{self.ws_api_id}.execute-api.{self.region}.{self.url_suffix}/{self.api_stage}"

    def _drop_dependencies_a_reference_implies(self) -> None:
        # CDK's own helper functions (the secret check, the bucket's cleanup and deployment) both reference
        # their role and depend on it: cfn-lint flags the duplicate (W3005). They keep depending on their
        # role's policies only, which no reference implies.
        for node in self.node.find_all():
            if not (isinstance(node, cdk.CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function"):
                continue
            owner = node.node.scope
            if owner is None or owner is self:
                continue
            kin = [c for c in owner.node.find_all() if isinstance(c, cdk.CfnResource)]
            if not any(c.cfn_resource_type == "AWS::IAM::Role" for c in kin):
                continue
            policies = [self.get_logical_id(c) for c in kin if c.cfn_resource_type == "AWS::IAM::Policy"]
            if policies:
                node.add_override("DependsOn", policies)
            else:
                node.add_deletion_override("DependsOn")

    def _outputs(self) -> None:
        if "RestAPI" in self.sam["Resources"]:
            rest_id = self.chalice.get_resource("RestAPI").ref
            cdk.CfnOutput(
                self,
                "RestApiUrl",
                value=f"https://{rest_id}.execute-api.{self.region}.{self.url_suffix}/{self.api_stage}/",
            )
        if self.ws_api_id is not None:
            cdk.CfnOutput(self, "WebSocketUrl", value=self.ws_url)
        if self.website is not None:
            cdk.CfnOutput(self, "WebUrl", value=self.website.url)
        cdk.CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        cdk.CfnOutput(self, "UserPoolClientId", value=self.user_pool_client.user_pool_client_id)
        cdk.CfnOutput(self, "Region", value=self.region)
