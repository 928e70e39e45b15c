"""The composition root: importing the app reads nothing, dependencies are built once on first use, and
tests hand in their own through `override`."""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import chalicelib
from chalicelib.core import cache
from chalicelib.core.config import get_settings
from chalicelib.delivery import payments
from chalicelib.domain import tokens
from chalicelib.schema import db, models
from chalicelib.wiring import bootstrap

ROOT = Path(__file__).resolve().parents[2]
_PROBE = """
import importlib, pkgutil
import chalicelib
for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(module.name)
import app
from chalicelib.core import aws, config, ports
from chalicelib.schema import models
print("settings read", config._current is not None)
print("models bound", models.base._bound.settings is not None)
print("clients", len(aws._clients), "built", ports.built_count())
print("table", models.Drop.Meta.table_name)
"""


def test_importing_chalicelib_and_the_app_reads_no_setting_and_builds_nothing() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEDROP_", "AWS_", "POWERTOOLS_"))}
    env = clean | {"LIVEDROP_STAGE": "probe", "AWS_REGION": "eu-west-1"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[:3] == ["settings read False", "models bound False", "clients 0 built 0"]
    # The first table access reads the environment as it is then.
    assert out[3] == "table livedrop-probe-Drops"


def test_models_follow_the_settings_and_keep_one_connection_between_switches() -> None:
    connection = models.Drop._get_connection()
    assert models.Drop._get_connection() is connection  # reused: one per execution environment
    other = dataclasses.replace(get_settings(), table_prefix="livedrop-other-", region="eu-west-1")
    with bootstrap.override(settings=other):
        assert models.Drop.Meta.table_name == "livedrop-other-Drops"
        assert models.Drop.Meta.region == "eu-west-1"
        moved = models.Drop._get_connection()
        assert moved is not connection and moved.table_name == "livedrop-other-Drops"
        assert models.table_spec(models.Order)["create"]["TableName"] == "livedrop-other-Orders"
    assert models.Drop.Meta.table_name == get_settings().table_name("Drops")
    assert models.Drop._get_connection().table_name == get_settings().table_name("Drops")


def test_dependencies_are_built_once_and_overridden_within_a_block() -> None:
    gateway = payments.payment_gateway()
    assert isinstance(gateway, payments.FakePaymentGateway) and payments.payment_gateway() is gateway
    assert db.connection() is db.connection() and tokens.verifier() is tokens.verifier()
    mine = payments.FakePaymentGateway()
    with bootstrap.override(payment_gateway=mine):
        assert payments.payment_gateway() is mine
        with bootstrap.override(payment_gateway=payments.FakePaymentGateway()):
            assert payments.payment_gateway() is not mine
        assert payments.payment_gateway() is mine
    assert payments.payment_gateway() is gateway


def test_other_settings_build_their_own_dependencies() -> None:
    gateway, verifier = payments.payment_gateway(), tokens.verifier()
    stripe = dataclasses.replace(get_settings(), payment_provider="stripe", stripe_api_key="sk_test_unit")
    with bootstrap.override(settings=stripe):
        assert isinstance(payments.payment_gateway(), payments.StripePaymentGateway)
        assert tokens.verifier() is not verifier
    unknown = dataclasses.replace(get_settings(), payment_provider="cash")
    with bootstrap.override(settings=unknown), pytest.raises(ValueError, match="cash"):
        payments.payment_gateway()
    assert payments.payment_gateway() is not gateway  # made again for the settings now in force
    assert isinstance(payments.payment_gateway(), payments.FakePaymentGateway)


def test_only_known_dependencies_can_be_overridden() -> None:
    with pytest.raises(TypeError, match="payment_gatway"), bootstrap.override(payment_gatway=object()):
        pass


def test_the_user_pool_authorizer_names_the_pool_of_the_settings_when_described() -> None:
    authorizer = bootstrap.user_pool_authorizer("Users")
    pool = dataclasses.replace(get_settings(), user_pool_id="us-east-1_later")
    with bootstrap.override(settings=pool):
        described = authorizer.to_swagger()["x-amazon-apigateway-authorizer"]["providerARNs"]
    assert described == [pool.user_pool_arn]


def test_the_apps_debug_flag_is_read_from_the_settings_on_its_first_use() -> None:
    app = bootstrap.chalice_app("probe")
    with bootstrap.override(settings=dataclasses.replace(get_settings(), debug=True)):
        assert app.debug is True
    quiet = bootstrap.chalice_app("quiet")
    assert quiet.debug is get_settings().debug is False


def test_other_settings_empty_every_module_level_cache_of_chalicelib_together() -> None:
    for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        importlib.import_module(module.name)
    module_caches = [
        value
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("chalicelib.")
        for value in vars(module).values()
        if isinstance(value, cache.TtlCache)
    ]
    assert len(module_caches) >= 6 and set(module_caches) <= set(cache.registered())
    for each in module_caches:
        each.put("probe", "kept")
    forgotten: list[str] = []
    cache.remember(lambda: forgotten.append("value"))
    with bootstrap.override(settings=dataclasses.replace(get_settings(), debug=True)):
        assert all(each.get("probe") is None for each in module_caches)
    assert forgotten == ["value", "value"]  # on the way in and on the way out
