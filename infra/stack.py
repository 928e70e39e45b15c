"""LiveDrop in AWS: the Chalice app (chalice.cdk.Chalice) plus everything Chalice does not create.

Tables come from chalicelib.models.table_spec, queues, subscriptions and event sources from
chalicelib.topology, per-function permissions from infra.access: the same definitions the dev stack
provisions locally, so the two cannot drift.

Chalice packages the app at synth time, before CDK knows any ARN. So the functions' handlers stay
plain `@app.lambda_function`s; their event source mappings, roles, names and environment are added
here onto the functions Chalice made, and the Cognito authorizer's provider ARN is patched into the
packaged API definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib import models, topology
from chalicelib.config import get_settings, settings_from_env
from infra import gateway_responses, policy
from infra.access import ACCESS, API_HANDLER, FunctionAccess
from infra.edge import RestFirewall, WebSite
from infra.monitoring import Monitoring
from infra.policy import STREAM_FAILURES_QUEUE

APP_NAME = "livedrop"
STREAM_MAX_RETRIES = topology.STREAM_MAX_RETRIES
# Per SQS event source: (MaximumBatchingWindowInSeconds, MaximumConcurrency). Pushes people wait for get
# no window; payments and inbox slices wait up to a second for fuller batches. The concurrency caps keep
# one queue's backlog from taking every execution environment (within the consumers' reserved concurrency).
# Both come from chalicelib.topology, which the dev stack's pumps read too.
QUEUE_SOURCE_TUNING = {s.queue: (s.batching_window_s, s.max_concurrency) for s in topology.QUEUE_SOURCES}
# Stage throttling (requests per second, burst), well under the account's shared 10,000/s.
REST_THROTTLE = (2000.0, 1000)
WS_THROTTLE = (1000.0, 500)
# Access log lines as JSON, one per request.
_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "connectionId": "$context.connectionId",
        "error": "$context.error.message",
    }
)


# Chalice needs some role ARN to package with manage_iam_role off; every function gets its own below.
_PACKAGING_ROLE_ARN = "arn:aws:iam::000000000000:role/replaced-per-function"


def logical_table_name(model: Any) -> str:
    """A model's table name without the stage prefix of the process that imported the models."""
    name: str = model.Meta.table_name
    prefix = get_settings().table_prefix
    if not name.startswith(prefix):
        raise ValueError(f"table {name} does not start with the settings' prefix {prefix}")
    return name[len(prefix) :]


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


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
        # Product images (chalicelib.images): bucket names are global, so the account and region are in it.
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
        self.user_pool, self.user_pool_client = self._user_pool(retain)
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
        self.access_logs = self._access_logs(api_gateway_logging_role)
        self._patch_rest_api()
        self._patch_websocket_api()
        self.roles: dict[str, iam.Role] = {}
        for function in self.functions.values():
            self._configure(function)
        self._event_sources()
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
                f"{_camel(spec.name)}DeadLetterQueue",
                queue_name=self.prefix + spec.dlq_name,
                retention_period=cdk.Duration.days(14),
                enforce_ssl=True,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
            )
            queue = sqs.Queue(
                self,
                f"{_camel(spec.name)}Queue",
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

    def _user_pool(self, removal: cdk.RemovalPolicy) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
        pool = cognito.UserPool(
            self,
            "Users",
            user_pool_name=self.prefix + "users",
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                fullname=cognito.StandardAttribute(required=True, mutable=True)
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Cognito's default policy, spelled out: 8 characters with upper, lower, digit and symbol.
            password_policy=cognito.PasswordPolicy(
                min_length=8, require_lowercase=True, require_uppercase=True, require_digits=True, require_symbols=True
            ),
            removal_policy=removal,
            **self._sign_up_email(),
        )
        if self.sends_email:
            cast(cognito.CfnUserPool, pool.node.default_child).add_property_override(
                "EmailConfiguration", self._ses_email
            )
        client = pool.add_client(
            "WebClient",
            user_pool_client_name=f"{APP_NAME}-web",
            auth_flows=cognito.AuthFlow(user_password=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
        )
        return pool, client

    def _sign_up_email(self) -> dict[str, Any]:
        """Where sign-ups are confirmed by e-mail: SES as the sender (deploy parameters) and Cognito's
        threat protection auditing sign-ins and sign-ups (bots come for a drop's sign-up flow)."""
        if not self.sends_email:
            return {}
        sender = cdk.CfnParameter(
            self,
            "SesFromEmail",
            description="The SES-verified address (or an address of a verified domain) sign-up e-mails come from",
            allowed_pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            constraint_description="an e-mail address",
        )
        configuration_set = cdk.CfnParameter(
            self,
            "SesConfigurationSet",
            description="The SES configuration set for sign-up e-mails (bounces, complaints, sending metrics)",
            min_length=1,
        )
        domain = cdk.CfnParameter(
            self,
            "SesIdentity",
            description="The verified SES identity that sends (the sender's domain, or the address itself)",
            min_length=1,
        )
        # Set on the pool's CloudFormation directly: the CDK helper compares the sender and the identity as
        # text, which parameters are not until deploy.
        self._ses_email = {
            "EmailSendingAccount": "DEVELOPER",
            "From": cdk.Fn.join("", ["LiveDrop <", sender.value_as_string, ">"]),
            "SourceArn": self.format_arn(
                service="ses",
                resource="identity",
                resource_name=domain.value_as_string,
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            ),
            "ConfigurationSet": configuration_set.value_as_string,
        }
        return {
            "feature_plan": cognito.FeaturePlan.PLUS,
            "standard_threat_protection_mode": cognito.StandardThreatProtectionMode.AUDIT_ONLY,
        }

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
                        actions=["secretsmanager:GetSecretValue"], resources=[_CdkArns(self).stripe_secret()]
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
                raise KeyError(f"function {name} ({logical_id}) has no entry in infra/access.py ACCESS")
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
        statements = policy.scheduler_statements(_CdkArns(self))
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

    def _patch_rest_api(self) -> None:
        if "RestAPI" not in self.sam["Resources"]:
            return
        api = self.chalice.get_resource("RestAPI")
        api.add_property_override("Name", self.rest_api_name)
        # Detailed metrics for the order path only: its p99 latency is alarmed on.
        rate, burst = REST_THROTTLE
        api.add_property_override(
            "MethodSettings",
            [
                {"ResourcePath": "/~1orders", "HttpMethod": "POST", "MetricsEnabled": True},
                {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst},
            ],
        )
        api.add_property_override("TracingEnabled", True)
        api.add_property_override(
            "AccessLogSetting", {"DestinationArn": self.access_logs["rest"].log_group_arn, "Format": _ACCESS_LOG_FORMAT}
        )
        # What API Gateway answers itself (401, unknown route, 415, 429, 5xx...) in the API's error shape.
        api.add_property_override(
            "DefinitionBody.x-amazon-apigateway-gateway-responses", gateway_responses.openapi_extension()
        )
        body = self.sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
        for name, definition in body.get("securityDefinitions", {}).items():
            authorizer = definition.get("x-amazon-apigateway-authorizer", {})
            if authorizer.get("type") == "cognito_user_pools":
                api.add_property_override(
                    f"DefinitionBody.securityDefinitions.{name}.x-amazon-apigateway-authorizer.providerARNs",
                    [self.user_pool.user_pool_arn],
                )

    def _patch_websocket_api(self) -> None:
        if self.ws_api_id is None:
            return
        # The deployment must follow the routes, or CloudFormation may deploy an API with none.
        deployment = self.chalice.get_resource("WebsocketAPIDeployment")
        rate, burst = WS_THROTTLE
        stage = self.chalice.get_resource("WebsocketAPIStage")
        stage.add_property_override(
            "DefaultRouteSettings", {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}
        )
        # API Gateway has no X-Ray tracing for WebSocket APIs: the functions behind it trace instead.
        stage.add_property_override(
            "AccessLogSettings", {"DestinationArn": self.access_logs["ws"].log_group_arn, "Format": _ACCESS_LOG_FORMAT}
        )
        for logical_id, resource in self.sam["Resources"].items():
            if resource["Type"] == "AWS::ApiGatewayV2::Route":
                deployment.add_resource_dependency(self.chalice.get_resource(logical_id))

    def _access_logs(self, logging_role: bool) -> dict[str, logs.LogGroup]:
        groups = {
            kind: logs.LogGroup(
                self,
                f"{title}AccessLogs",
                log_group_name=f"/aws/apigateway/{self.prefix}{kind}-access",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            for kind, title in (("rest", "Rest"), ("ws", "WebSocket"))
        }
        if logging_role:
            # Stages may log only once the account's API Gateway has a CloudWatch role (one per account and
            # region: deploy with -c api_gateway_logging_role=false where another stack already set it).
            role = iam.Role(
                self,
                "ApiGatewayLoggingRole",
                assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
                managed_policies=[
                    iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
                ],
            )
            account = apigateway.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
            for logical_id in ("RestAPI", "WebsocketAPIStage"):
                if logical_id in self.sam["Resources"]:
                    self.chalice.get_resource(logical_id).add_dependency(account)
        return groups

    def _environment(self, access: FunctionAccess) -> dict[str, str]:
        env = {
            "LIVEDROP_STAGE": self.stage,
            "LIVEDROP_ACCOUNT_ID": self.account,
            "LIVEDROP_TABLE_PREFIX": self.prefix,
            "LIVEDROP_EVENTS_TOPIC_ARN": self.topic.topic_arn,
            "LIVEDROP_QUEUE_URL_PREFIX": f"https://sqs.{self.region}.{self.url_suffix}/{self.account}/",
            "LIVEDROP_SCHEDULER_GROUP": self.prefix + topology.SCHEDULER_GROUP,
            "LIVEDROP_SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
            "LIVEDROP_FUNCTION_ARN_PREFIX": self.function_arn(f"{APP_NAME}-{self.stage}-"),
            "LIVEDROP_USER_POOL_ID": self.user_pool.user_pool_id,
            "LIVEDROP_USER_POOL_CLIENT_ID": self.user_pool_client.user_pool_client_id,
            "LIVEDROP_COGNITO_ISSUER": self.cognito_issuer,
            "LIVEDROP_JWKS_URL": f"{self.cognito_issuer}/.well-known/jwks.json",
            "LIVEDROP_WS_MANAGEMENT_ENDPOINT": self.ws_management_endpoint,
            "LIVEDROP_PAYMENT_PROVIDER": self.payment_provider,
            # The secret's name, not its values: those are read at run time, where granted (chalicelib.secrets).
            "LIVEDROP_STRIPE_SECRET": self.stripe_secret_name,
            "LIVEDROP_EMAIL_FROM": self.email_from,
            "LIVEDROP_SES_CONFIGURATION_SET": self.configuration_set_name,
            "LIVEDROP_VAPID_SECRET": self.vapid_secret_name,
            "LIVEDROP_PUBLIC_URL": self.public_url,
            "LIVEDROP_WEB_URL": self.web_url,
            "LIVEDROP_IMAGES_BUCKET": self.images_bucket_name,
            "POWERTOOLS_SERVICE_NAME": APP_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": "LiveDrop",
        }
        return env

    def _configure(self, function: AppFunction) -> None:
        access = ACCESS[function.handler]
        role = iam.Role(
            self,
            f"{function.logical_id}Role",
            description=f"LiveDrop {self.stage} {function.handler} function",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            inline_policies={"access": iam.PolicyDocument(statements=self._statements(function, access))},
        )
        self.roles[function.handler] = role
        log_group = logs.LogGroup(
            self,
            f"{function.logical_id}Logs",
            log_group_name=f"/aws/lambda/{function.function_name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        resource = function.resource
        # The role may not create log groups: the function's group must exist before it first runs.
        resource.add_resource_dependency(cast(cdk.CfnResource, log_group.node.default_child))
        resource.add_property_override("FunctionName", function.function_name)
        resource.add_property_override("Role", role.role_arn)
        resource.add_property_override("Timeout", access.timeout)
        resource.add_property_override("MemorySize", access.memory)
        resource.add_property_override("Tracing", "Active")
        if access.reserved_concurrency is not None and self.reserve_concurrency:
            resource.add_property_override("ReservedConcurrentExecutions", access.reserved_concurrency)
        for key, value in self._environment(access).items():
            resource.add_property_override(f"Environment.Variables.{key}", value)

    # --- least privilege -----------------------------------------------------------------------
    def _statements(self, function: AppFunction, access: FunctionAccess) -> list[iam.PolicyStatement]:
        rendered = policy.function_statements(
            function.handler, access, _CdkArns(self), payment_secrets=self.payment_provider == "stripe"
        )
        return [
            iam.PolicyStatement(
                actions=list(s.actions), resources=list(s.resources), conditions=dict(s.conditions) or None
            )
            for s in rendered
        ]

    # --- event sources -------------------------------------------------------------------------
    def _event_sources(self) -> None:
        for source in topology.QUEUE_SOURCES:
            function = self.functions.get(source.handler)
            if function is None:
                cdk.Annotations.of(self).add_warning(f"no function {source.handler} for queue {source.queue}")
                continue
            window, concurrency = QUEUE_SOURCE_TUNING.get(source.queue, (0, 2))
            if window != source.batching_window_s:
                # One value for both: chalicelib.topology (the dev stack's pumps read it too).
                raise ValueError(f"{source.queue}: window {window} s here, {source.batching_window_s} s in topology")
            mapping = lambda_.CfnEventSourceMapping(
                self,
                f"{_camel(source.queue)}QueueTo{function.logical_id}",
                function_name=function.resource.ref,
                event_source_arn=self.queues[source.queue].queue_arn,
                batch_size=source.batch_size,
                function_response_types=["ReportBatchItemFailures"],
                # The window is topology's, the one the dev stack's pumps honour too.
                maximum_batching_window_in_seconds=source.batching_window_s or None,
                scaling_config=lambda_.CfnEventSourceMapping.ScalingConfigProperty(maximum_concurrency=concurrency),
            )
            mapping.node.add_dependency(self.roles[source.handler])
        for stream in topology.STREAM_SOURCES:
            function = self.functions.get(stream.handler)
            if function is None:
                cdk.Annotations.of(self).add_warning(f"no function {stream.handler} for stream {stream.table}")
                continue
            mapping = lambda_.CfnEventSourceMapping(
                self,
                f"{stream.table}StreamTo{function.logical_id}",
                function_name=function.resource.ref,
                event_source_arn=self.tables[stream.table].get_att("StreamArn").to_string(),
                batch_size=stream.batch_size,
                maximum_batching_window_in_seconds=stream.batching_window_s or None,
                starting_position="TRIM_HORIZON",
                function_response_types=["ReportBatchItemFailures"],
                bisect_batch_on_function_error=True,
                maximum_retry_attempts=STREAM_MAX_RETRIES,
                destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                    on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(
                        destination=self.stream_failures.queue_arn
                    )
                ),
            )
            mapping.node.add_dependency(self.roles[stream.handler])

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


class _CdkArns:
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
