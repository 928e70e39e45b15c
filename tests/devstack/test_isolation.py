"""Functions own their module globals (issue 21 #2): each imports the app afresh, as each Lambda
environment does, so one function's caches, clients and settings are not another's; a thread a handler
starts acts as its function and sees its environment's code; the environment replacing one discarded
after a timeout starts from fresh globals; tests reach every environment through the stack's patches."""

from __future__ import annotations

import importlib
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore import loaders
from botocore.exceptions import ClientError

from devstack import app_copies, iam, sdk_data
from devstack.environments import FunctionPool, FunctionTimedOut, current_code
from devstack.lambda_events.scheduled import scheduled_event
from devstack.stack import DevStack, function_code

WAIT = 30.0  # the bound of every wait below: an event ends it long before, unless something is wrong


def remember(event: dict[str, Any], context: Any) -> Any:
    """Keep event["value"] in a module global of the environment's chalicelib.core.config, if given; answer
    what that global held before, and which module object it is."""
    config = current_code().module("chalicelib.core.config")
    before = config.__dict__.get("_remembered")
    if "value" in event:
        config._remembered = event["value"]
    if event.get("block"):
        threading.Event().wait(WAIT)  # nothing sets it: the pool's timeout ends the invocation
    return before, id(config)


def test_two_functions_do_not_see_each_others_globals() -> None:
    writer = FunctionPool("writer", remember, code=app_copies.fresh_copy)
    reader = FunctionPool("reader", remember, code=app_copies.fresh_copy)
    try:
        assert writer({"value": "writer's"})[0] is None
        assert writer({})[0] == "writer's"  # the same warm environment keeps its globals
        before, reader_module = reader({})
        assert before is None  # ... which the other function does not see
        assert reader_module != writer({})[1]
        assert "_remembered" not in vars(sys.modules["chalicelib.core.config"])  # nor does the stack's own code
    finally:
        writer.stop()
        reader.stop()


def test_the_stacks_functions_run_their_own_copies_of_the_app(stack: DevStack, api) -> None:
    assert api.get("/health").status_code == 200  # the api's environment builds its health probe's client
    api_codes = [env.sandbox.code for env in stack.pools["api"].environments if env.sandbox and env.sandbox.code]
    assert api_codes, "the api's environments hold no copy of the app"
    shared = sys.modules["chalicelib.core.aws"]
    for code in api_codes:
        assert code.module("chalicelib.core.aws") is not shared
        assert code.module("app").app is not stack.app_module.app  # type: ignore[union-attr]
    assert any(any("#probe" in key for key in code.module("chalicelib.core.aws")._clients) for code in api_codes)
    assert not any("#probe" in key for key in shared._clients)  # the stack's own code made no probe
    # Another function's environments run another copy.
    stack.pools["sweeper"](scheduled_event("sweeper"))
    (sweeper,) = {id(env.sandbox.code) for env in stack.pools["sweeper"].environments if env.sandbox}
    assert sweeper not in {id(code) for code in api_codes}


def test_an_environment_discarded_after_a_timeout_starts_with_fresh_globals() -> None:
    pool = FunctionPool("forgetful", remember, concurrency=1, timeout_seconds=1.0, code=app_copies.fresh_copy)
    try:
        assert pool({"value": "warm"})[0] is None
        first_module = pool({})[1]
        with pytest.raises(FunctionTimedOut):
            pool({"block": True})
        before, module = pool({})  # a new environment: a cold start, the app imported afresh
        assert before is None and module != first_module
        assert pool.stats()["inits"] == 2
    finally:
        pool.stop()


def test_a_thread_inside_a_handler_sees_its_environments_code_and_acts_as_its_function(stack: DevStack) -> None:
    outcome: list[Any] = []

    def scan_in_a_thread(event: dict[str, Any], context: Any) -> None:
        def scan() -> None:
            code = current_code()
            outcome.append(
                code is not None and code.module("chalicelib.core.aws") is not sys.modules["chalicelib.core.aws"]
            )
            table = code.module("chalicelib.core.config").get_settings().table_name("Connections")
            try:
                code.module("chalicelib.core.aws").client("dynamodb").scan(TableName=table, Limit=1)
                outcome.append("allowed")
            except ClientError as error:
                outcome.append(error.response["Error"]["Code"])

        worker = threading.Thread(target=scan)  # a plain thread, started inside the handler
        worker.start()
        worker.join(WAIT)

    pool = FunctionPool("fanout", iam.as_function("fanout", scan_in_a_thread), code=app_copies.fresh_copy)
    try:
        with stack.iam.revoked("fanout", "dynamodb:Scan"):  # type: ignore[union-attr]
            pool({})
        pool({})
    finally:
        pool.stop()
    assert outcome == [True, "AccessDeniedException", True, "allowed"]


def test_a_patch_reaches_every_environment_present_and_new_and_is_undone(stack: DevStack) -> None:
    def limit(event: dict[str, Any], context: Any) -> Any:
        if event.get("hold"):
            event["hold"].wait(WAIT)
        return current_code().module("chalicelib.domain.connections").MAX_CONNECTIONS_PER_USER

    original = importlib.import_module("chalicelib.domain.connections").MAX_CONNECTIONS_PER_USER
    pool = FunctionPool("patched", limit, concurrency=2, code=app_copies.fresh_copy)
    try:
        assert pool({}) == original  # one environment before the patch
        with stack.patched("chalicelib.domain.connections", MAX_CONNECTIONS_PER_USER=1):
            assert importlib.import_module("chalicelib.domain.connections").MAX_CONNECTIONS_PER_USER == 1
            hold = threading.Event()
            busy = pool.submit({"hold": hold})  # keeps one environment busy: the next call starts another
            assert pool({}) == 1
            hold.set()
            assert busy.result(WAIT) == 1
            assert pool.stats()["inits"] == 2
        assert original == importlib.import_module("chalicelib.domain.connections").MAX_CONNECTIONS_PER_USER
        hold = threading.Event()
        busy = pool.submit({"hold": hold})
        assert pool({}) == original
        hold.set()
        assert busy.result(WAIT) == original
    finally:
        pool.stop()


def test_copies_build_their_own_clients_from_botocores_files_parsed_once(stack: DevStack, monkeypatch) -> None:
    """Each copy's clients are its own, but the SDK's JSON is parsed once per process (devstack.sdk_data):
    parsing it per client made every copy's first requests slow enough to time out under a rush."""
    sdk_data.install()
    app_copies.fresh_copy().module("chalicelib.core.aws").client("sqs")  # what a copy parses, parsed once
    reads: list[str] = []
    original = loaders.JSONFileLoader.load_file

    def counted(self: Any, file_path: str) -> Any:
        reads.append(file_path)
        return original(self, file_path)

    monkeypatch.setattr(loaders.JSONFileLoader, "load_file", counted)
    first, second = (app_copies.fresh_copy().module("chalicelib.core.aws") for _ in range(2))
    assert first is not second and first.client("sqs") is not second.client("sqs")
    assert first.client("sqs").meta.endpoint_url == second.client("sqs").meta.endpoint_url
    assert reads == []


def test_the_shared_sdk_data_is_per_search_path(tmp_path) -> None:
    """A loader with other search paths (its own models, as AWS_DATA_PATH gives) gets its own files."""
    sdk_data.install()
    (tmp_path / "endpoints.json").write_text(json.dumps({"partitions": [], "version": 3}))
    default, _ = loaders.Loader().load_data_with_path("endpoints")
    own, path = loaders.Loader(extra_search_paths=[str(tmp_path)]).load_data_with_path("endpoints")
    assert own == {"partitions": [], "version": 3} and path.startswith(str(tmp_path))
    assert default["partitions"]
    assert loaders.Loader().load_data_with_path("endpoints")[0] is default


def test_each_environment_has_its_own_thread_pools_and_they_end_with_it() -> None:
    together = threading.Barrier(2, timeout=WAIT)

    def posters(event: dict[str, Any], context: Any) -> Any:
        executor = current_code().module("chalicelib.delivery.pusher")._posters.get()
        together.wait()  # two invocations at once: two environments of one function, one copy of the app
        return executor, current_code().module("chalicelib.delivery.pusher")._posters.get()

    pool = FunctionPool("fanout", posters, concurrency=2, code=function_code)
    try:
        with ThreadPoolExecutor(2) as callers:
            (first, again), (second, _) = callers.map(pool, [{}, {}])
        assert first is again  # an environment's invocations share its pool, as a Lambda process's do
        assert first is not second  # ... and another environment has its own, as in Lambda
        assert first is not sys.modules["chalicelib.delivery.pusher"]._posters.get()  # the stack's own code's
    finally:
        pool.stop()
    for executor in (first, second):
        with pytest.raises(RuntimeError):  # shut down with its environment
            executor.submit(print)
