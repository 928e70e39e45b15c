"""The stage's users: the Cognito user pool and web client, and where sign-ups are confirmed by e-mail,
SES as the sender and Cognito's threat protection (LiveDropStack builds them in its own scope)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito

from infra.arns import APP_NAME

if TYPE_CHECKING:
    from infra.stack import LiveDropStack


def user_pool(stack: LiveDropStack, removal: cdk.RemovalPolicy) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
    threat_protection, ses_email = sign_up_email(stack) if stack.sends_email else ({}, {})
    pool = cognito.UserPool(
        stack,
        "Users",
        user_pool_name=stack.prefix + "users",
        self_sign_up_enabled=True,
        sign_in_aliases=cognito.SignInAliases(email=True),
        auto_verify=cognito.AutoVerifiedAttrs(email=True),
        standard_attributes=cognito.StandardAttributes(fullname=cognito.StandardAttribute(required=True, mutable=True)),
        account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
        # Cognito's default policy, spelled out: 8 characters with upper, lower, digit and symbol.
        password_policy=cognito.PasswordPolicy(
            min_length=8, require_lowercase=True, require_uppercase=True, require_digits=True, require_symbols=True
        ),
        removal_policy=removal,
        **threat_protection,
    )
    if ses_email:
        cast(cognito.CfnUserPool, pool.node.default_child).add_property_override("EmailConfiguration", ses_email)
    client = pool.add_client(
        "WebClient",
        user_pool_client_name=f"{APP_NAME}-web",
        auth_flows=cognito.AuthFlow(user_password=True),
        generate_secret=False,
        prevent_user_existence_errors=True,
    )
    return pool, client


def sign_up_email(stack: LiveDropStack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Where sign-ups are confirmed by e-mail: SES as the sender (deploy parameters) and Cognito's
    threat protection auditing sign-ins and sign-ups (bots come for a drop's sign-up flow): the pool's
    threat protection settings and its e-mail configuration."""
    sender = cdk.CfnParameter(
        stack,
        "SesFromEmail",
        description="The SES-verified address (or an address of a verified domain) sign-up e-mails come from",
        allowed_pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        constraint_description="an e-mail address",
    )
    configuration_set = cdk.CfnParameter(
        stack,
        "SesConfigurationSet",
        description="The SES configuration set for sign-up e-mails (bounces, complaints, sending metrics)",
        min_length=1,
    )
    domain = cdk.CfnParameter(
        stack,
        "SesIdentity",
        description="The verified SES identity that sends (the sender's domain, or the address itself)",
        min_length=1,
    )
    # Set on the pool's CloudFormation directly: the CDK helper compares the sender and the identity as
    # text, which parameters are not until deploy.
    ses_email = {
        "EmailSendingAccount": "DEVELOPER",
        "From": cdk.Fn.join("", ["LiveDrop <", sender.value_as_string, ">"]),
        "SourceArn": stack.format_arn(
            service="ses",
            resource="identity",
            resource_name=domain.value_as_string,
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        ),
        "ConfigurationSet": configuration_set.value_as_string,
    }
    threat_protection = {
        "feature_plan": cognito.FeaturePlan.PLUS,
        "standard_threat_protection_mode": cognito.StandardThreatProtectionMode.AUDIT_ONLY,
    }
    return threat_protection, ses_email
