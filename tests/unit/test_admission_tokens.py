"""Admission tokens: only what this API signed, for this user and drop, before its expiry, admits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core import draws
from chalicelib.core.errors import AdmissionExpiredError, AdmissionRequiredError
from chalicelib.domain import admissions

NOW = 1_800_000_000_000


def test_a_token_admits_its_user_to_its_drop_until_it_expires() -> None:
    token = admissions.issue_token("u1", "dr_1", NOW + 1000)
    assert admissions.verify_token(token, "u1", "dr_1", NOW) == NOW + 1000
    with pytest.raises(AdmissionExpiredError):
        admissions.verify_token(token, "u1", "dr_1", NOW + 1000)
    for user, drop in (("u2", "dr_1"), ("u1", "dr_2")):
        with pytest.raises(AdmissionRequiredError):
            admissions.verify_token(token, user, drop, NOW)
    payload, signature = token.split(".")
    forged = admissions.issue_token("u1", "dr_1", NOW + 10**9).split(".")[0] + "." + signature
    with pytest.raises(AdmissionRequiredError):
        admissions.verify_token(forged, "u1", "dr_1", NOW)


@settings(max_examples=200, deadline=None)
@given(token=st.one_of(st.none(), st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_\-]{0,80}\.[A-Za-z0-9_\-]{0,60}")))
def test_anything_else_is_admission_required(token: str | None) -> None:
    with pytest.raises(AdmissionRequiredError):
        admissions.verify_token(token, "u1", "dr_1", NOW)


@given(seed=st.from_regex(r"[0-9a-f]{64}", fullmatch=True), ids=st.lists(st.uuids().map(str), unique=True))
def test_the_draw_order_is_a_permutation_fixed_by_the_seed(seed: str, ids: list[str]) -> None:
    ordered = draws.draw_order(seed, ids)
    assert sorted(ordered) == sorted(ids)
    assert draws.draw_order(seed, list(reversed(ids))) == ordered  # entry order does not matter
