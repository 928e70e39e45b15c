"""The partial batch response (ReportBatchItemFailures) as both batch pollers read it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from devstack.pollers.batch import failed_positions

ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=20, unique=True)


@given(ids, st.data())
def test_the_reported_items_are_the_failed_ones_in_batch_order(batch, data) -> None:
    failed = data.draw(st.lists(st.sampled_from(batch), unique=True))
    # Order and repetition in the response do not matter.
    reported = data.draw(st.permutations(failed + failed[:1]))
    result = {"batchItemFailures": [{"itemIdentifier": i} for i in reported]}
    assert failed_positions(batch, result) == sorted(batch.index(i) for i in failed)


@given(ids, st.data())
def test_an_identifier_not_in_the_batch_fails_the_whole_batch(batch, data) -> None:
    known = data.draw(st.lists(st.sampled_from(batch), unique=True))
    stranger = data.draw(
        st.one_of(
            st.text(max_size=12).filter(lambda s: s not in batch),
            st.none(),
            st.integers(),
            st.lists(st.text(), max_size=2),
        )
    )
    failures = [{"itemIdentifier": i} for i in known] + [{"itemIdentifier": stranger}]
    assert failed_positions(batch, {"batchItemFailures": failures}) == list(range(len(batch)))


@given(ids, st.sampled_from(["x", 1, None, {}]))
def test_an_entry_that_is_not_an_object_fails_the_whole_batch(batch, entry) -> None:
    assert failed_positions(batch, {"batchItemFailures": [entry]}) == list(range(len(batch)))


SUCCESSES = [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"statusCode": 200}, []]


@given(ids, st.sampled_from(SUCCESSES))
def test_a_response_without_failures_means_the_whole_batch_succeeded(batch, result) -> None:
    assert failed_positions(batch, result) == []
