"""The dev stack runs functions as Lambda does: their timeout and memory, timeouts that stop the work,
environments that own their /tmp and threads, and queues consumed several batches at once."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.schema import topology
from chalicelib.schema.functions import ACCESS
from devstack import iam
from devstack.__main__ import _positive_float
from devstack.environments import FunctionPool, FunctionTimedOut
from devstack.identity import aws_client
from devstack.lambda_runtime import EnvironmentDiscarded, current_sandbox
from devstack.pollers import PeriodicPump, QueuePump, SchedulePump, StreamPump
from devstack.resources import scaled_seconds
from devstack.stack import DevStack

WAIT = 30.0  # the bound of every wait below: an event ends it long before, unless something is wrong
# Scratch queues and tables carry this prefix rather than the stage's, so they are never taken for
# the app's own resources (the infra parity check lists the stage's) even if a test fails before
# removing them.
SCRATCH = "scratch-lr-"


def make_queue(stack: DevStack, visibility: int = 1) -> str:
    sqs = aws_client("sqs", stack.aws.messaging_endpoint)
    name = f"{SCRATCH}{uuid.uuid4().hex[:8]}"
    return str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"])


def queue_depth(stack: DevStack, url: str) -> int:
    sqs = aws_client("sqs", stack.aws.messaging_endpoint)
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


# --- timeouts -----------------------------------------------------------------------------------
def test_a_handler_past_its_timeout_is_stopped_and_its_batch_redelivered(stack: DevStack, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="devstack.lambda")
    url = make_queue(stack)
    sqs = aws_client("sqs", stack.aws.messaging_endpoint)
    interrupted: list[str] = []
    refused: list[str] = []
    late_call = threading.Event()
    redelivered = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> None:
        record = event["Records"][0]
        if record["attributes"]["ApproximateReceiveCount"] != "1":
            redelivered.set()
            return

        def after_the_deadline() -> None:
            late_call.wait(WAIT)
            try:
                sqs.send_message(QueueUrl=url, MessageBody="written after the timeout")
            except EnvironmentDiscarded as error:
                refused.append(str(error))

        # A thread of the invocation: it outlives the timeout, and what it then does must not reach AWS.
        threading.Thread(target=after_the_deadline, daemon=True).start()
        try:
            while True:  # runs forever unless the invocation is stopped
                time.sleep(0.01)
        except BaseException as error:
            interrupted.append(type(error).__name__)
            raise

    pool = FunctionPool("slowpoke", handler, timeout_seconds=1.0, memory_mb=128)
    pump = QueuePump(stack.aws.messaging_endpoint, url, pool, batch_size=1, function_name="slowpoke")
    try:
        sqs.send_message(QueueUrl=url, MessageBody="big work")
        pump.start()
        assert redelivered.wait(WAIT), "the batch never came back after its visibility timeout"
        late_call.set()
        assert wait_until(lambda: bool(refused))
        assert wait_until(lambda: queue_depth(stack, url) == 0)
    finally:
        late_call.set()
        pump.stop()
        pool.stop()
    assert interrupted == ["EnvironmentDiscarded"]
    assert pool.stats()["timeouts"] == 1
    lines = [r.getMessage() for r in caplog.records if "Task timed out" in r.getMessage()]
    assert len(lines) == 1 and "Task timed out after 1.00 seconds" in lines[0] and "slowpoke" in lines[0]
    # Where it was stuck is logged too: the handler's own frame.
    where = [r.getMessage() for r in caplog.records if "was at:" in r.getMessage()]
    assert len(where) == 1 and "in handler" in where[0] and "time.sleep(0.01)" in where[0]
    # The message written after the timeout never reached the queue: the queue is empty.
    assert "discarded" in refused[0]


def test_a_rest_call_past_the_api_timeout_answers_504(stack: DevStack, api) -> None:
    pool = stack.pools["api"]
    original, configured = pool.handler, pool.timeout_seconds

    def handler(event: dict[str, Any], context: Any) -> Any:
        if (event.get("queryStringParameters") or {}).get("slow"):
            threading.Event().wait(WAIT)
        return original(event, context)

    timeouts = pool.stats()["timeouts"]
    pool.handler, pool.timeout_seconds = handler, 0.3
    try:
        assert api.get("/health?slow=1").status_code == 504
    finally:
        pool.handler, pool.timeout_seconds = original, configured
    assert pool.stats()["timeouts"] == timeouts + 1
    assert api.get("/health").status_code == 200  # a new environment serves the next call


def test_a_timed_out_invocation_fails_at_once_and_a_new_environment_takes_its_place() -> None:
    release = threading.Event()
    pool = FunctionPool(
        "stuck", lambda event, context: release.wait(WAIT) if event else "ok", concurrency=1, timeout_seconds=1.0
    )
    try:
        started = time.monotonic()
        with pytest.raises(FunctionTimedOut, match=r"Task timed out after 1\.00 seconds"):
            pool({"block": True})
        assert time.monotonic() - started < WAIT
        assert pool({}) == "ok"
        assert pool.stats()["environments"] == 1 and pool.stats()["inits"] == 2
    finally:
        release.set()
        pool.stop()


def test_a_stop_discards_an_invocation_still_running_after_its_grace_instead_of_waiting_for_it() -> None:
    release = threading.Event()
    sandboxes: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> str:
        if not event:
            return "quick"
        sandboxes.append(current_sandbox())
        release.wait(WAIT)  # a schedule target sleeping until its second, as the stop begins
        return "late"

    pool = FunctionPool("sleeper", handler, concurrency=2, timeout_seconds=60.0)
    try:
        assert pool({}) == "quick"
        running = pool.submit({"sleep": True})
        assert wait_until(lambda: bool(sandboxes))
        started = time.monotonic()
        pool.stop(timeout=0.2)
        assert time.monotonic() - started < WAIT / 2  # not held until the invocation ends
        with pytest.raises(RuntimeError, match="stopped while it ran"):
            running.result(WAIT)
        # Whatever it does once it wakes is refused, as after a timeout: nothing of it reaches AWS.
        assert sandboxes[0].discarded
        with pytest.raises(RuntimeError, match="is stopped"):
            pool.submit({})
    finally:
        release.set()


# --- the context --------------------------------------------------------------------------------
@contextlib.contextmanager
def recording(pool: FunctionPool, ours: Callable[[dict[str, Any]], bool] = lambda event: False) -> Iterator[list]:
    """What the contexts of `pool`'s invocations say; the invocations `ours` picks do nothing more."""
    seen: list[tuple[str, int, int]] = []
    original = pool.handler

    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.append((context.function_name, context.get_remaining_time_in_millis(), context.memory_limit_in_mb))
        return None if ours(event) else original(event, context)

    pool.handler = handler
    try:
        yield seen
    finally:
        pool.handler = original


def assert_configured(seen: list[tuple[str, int, int]], function: str) -> None:
    access = ACCESS[function]
    assert seen, f"{function} was not invoked"
    for name, remaining_ms, memory in seen:
        assert name == function and memory == access.memory
        # Counting down from the configured timeout (some of it spent before the handler looked).
        assert access.timeout * 1000 - 10_000 < remaining_ms <= access.timeout * 1000


def test_the_context_has_the_functions_timeout_and_memory_from_every_invoker(
    stack: DevStack, api, stream_table
) -> None:
    settings = get_settings()
    marker = f"{SCRATCH}{uuid.uuid4().hex[:8]}"
    # REST
    with recording(stack.pools["api"]) as seen:
        assert api.get("/health").status_code == 200
    assert_configured(seen, "api")
    # WebSocket ($connect without a token is refused, after the function ran)
    with recording(stack.pools["ws_connect"]) as seen, pytest.raises(InvalidStatus):
        connect(stack.ws_url, open_timeout=WAIT).close()
    assert_configured(seen, "ws_connect")
    # An SQS event source mapping
    url = make_queue(stack)
    payments = stack.pools["payments"]
    with recording(payments, lambda e: marker in json.dumps(e)) as seen:
        pump = QueuePump(stack.aws.messaging_endpoint, url, payments, function_name="payments")
        aws_client("sqs", stack.aws.messaging_endpoint).send_message(QueueUrl=url, MessageBody=marker)
        with pump:
            assert wait_until(lambda: bool(seen))
    assert_configured(seen, "payments")
    # A DynamoDB stream
    dynamodb, table = stream_table
    events = stack.pools["domain_events"]
    stream = StreamPump(stack.aws.endpoint, table, events, function_name="domain_events")
    with recording(events, lambda e: marker in json.dumps(e)) as seen, stream:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": marker}})
        assert wait_until(lambda: bool(seen))
    assert_configured(seen, "domain_events")
    # An EventBridge Scheduler at() schedule
    scheduler = aws_client("scheduler", stack.aws.messaging_endpoint)
    scheduler.create_schedule_group(Name=marker)
    scheduler.create_schedule(
        Name=marker,
        GroupName=marker,
        ScheduleExpression="at(2020-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": settings.function_arn_prefix + "drop_lifecycle",
            "RoleArn": settings.scheduler_role_arn,
            "Input": json.dumps({"marker": marker}),
        },
    )
    lifecycle = stack.pool("drop_lifecycle", stack.handler("drop_lifecycle"))  # type: ignore[arg-type]
    schedules = SchedulePump(stack.aws.messaging_endpoint, marker, lambda arn: lifecycle)
    with recording(lifecycle, lambda e: e.get("marker") == marker) as seen, schedules:
        assert wait_until(lambda: bool(seen))
    assert_configured(seen, "drop_lifecycle")
    # An EventBridge rate() rule
    sweeper = stack.pools["sweeper"]
    with recording(sweeper, lambda e: True) as seen, PeriodicPump(sweeper, 3600, "sweeper", first_after=0):
        assert wait_until(lambda: bool(seen))
    assert_configured(seen, "sweeper")


def test_timeout_scale_multiplies_every_functions_timeout_and_the_queues_visibility() -> None:
    scaled = DevStack(http_port=0, ws_port=0, timeout_scale=0.05)
    pool = scaled.pool("payments", lambda event, context: None)
    try:
        assert pool.timeout_seconds == pytest.approx(ACCESS["payments"].timeout * 0.05)
        assert pool.memory_mb == ACCESS["payments"].memory
    finally:
        pool.stop()
    assert scaled_seconds(topology.PAYMENTS.visibility_timeout, 0.05) == 9
    assert scaled_seconds(30, 0.001) == 1  # SQS counts whole seconds
    assert _positive_float("0.25") == 0.25
    for bad in ("0", "-1", "nan", "inf", "x"):
        with pytest.raises(Exception, match="positive number"):
            _positive_float(bad)
    with pytest.raises(ValueError):
        DevStack(timeout_scale=0)


def test_the_session_queues_keep_their_configured_visibility(stack: DevStack) -> None:
    sqs = aws_client("sqs", stack.aws.messaging_endpoint)
    for spec in topology.QUEUES:
        attributes = sqs.get_queue_attributes(
            QueueUrl=get_settings().queue_url(spec.name), AttributeNames=["VisibilityTimeout"]
        )
        assert attributes["Attributes"]["VisibilityTimeout"] == str(spec.visibility_timeout)


# --- isolation ----------------------------------------------------------------------------------
def test_two_functions_do_not_see_each_others_tmp() -> None:
    def write(event: dict[str, Any], context: Any) -> str:
        path = os.path.join(tempfile.gettempdir(), "secret.txt")
        with open(path, "w") as file:
            file.write("mine")
        return path

    def look(event: dict[str, Any], context: Any) -> bool:
        return os.path.exists(os.path.join(tempfile.gettempdir(), "secret.txt"))

    writer, reader = FunctionPool("writer", write), FunctionPool("reader", look)
    try:
        path = writer({})
        assert os.path.exists(path) and not reader({})
        assert look({}, None) is False  # nor does code outside the functions
    finally:
        writer.stop()
        reader.stop()
    assert not os.path.exists(path)  # an environment's /tmp goes with it


def test_a_thread_started_inside_a_handler_is_iam_checked_as_its_function(stack: DevStack) -> None:
    outcome: list[Any] = []

    def scan_in_a_thread(event: dict[str, Any], context: Any) -> None:
        def scan() -> None:
            try:
                aws.client("dynamodb").scan(TableName=get_settings().table_name("Connections"), Limit=1)
                outcome.append("allowed")
            except ClientError as error:
                outcome.append(error.response["Error"]["Code"])

        worker = threading.Thread(target=scan)  # a plain thread: no in_context, no acting_as
        worker.start()
        worker.join(WAIT)

    pool = FunctionPool("fanout", iam.as_function("fanout", scan_in_a_thread))
    try:
        with stack.iam.revoked("fanout", "dynamodb:Scan"):
            pool({})
        pool({})
    finally:
        pool.stop()
    assert outcome == ["AccessDeniedException", "allowed"]


# --- parallel consumers -------------------------------------------------------------------------
def test_two_batches_of_one_queue_run_at_once(stack: DevStack) -> None:
    url = make_queue(stack, visibility=60)
    both_in = threading.Barrier(2, timeout=WAIT)
    handled: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        both_in.wait()  # passes only when two batches are inside the function at the same time
        handled.extend(r["body"] for r in event["Records"])

    pool = FunctionPool("parallel", handler, concurrency=2)
    pump = QueuePump(stack.aws.messaging_endpoint, url, pool, batch_size=1, concurrency=2, function_name="parallel")
    sqs = aws_client("sqs", stack.aws.messaging_endpoint)
    try:
        for body in ("one", "two"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        with pump:
            assert wait_until(lambda: len(handled) == 2)
            assert wait_until(lambda: queue_depth(stack, url) == 0)
    finally:
        pool.stop()
    assert sorted(handled) == ["one", "two"] and pump.max_in_flight == 2 and not both_in.broken


def test_the_stacks_queue_pumps_run_as_many_batches_as_the_mapping_allows(stack: DevStack) -> None:
    pumps = {p.queue_url: p for p in stack.pumps if isinstance(p, QueuePump)}
    for source in topology.QUEUE_SOURCES:
        pump = pumps[get_settings().queue_url(source.queue)]
        assert pump.concurrency == min(source.max_concurrency, stack.pools[source.handler].concurrency) >= 2


def test_a_failed_stream_batch_is_bisected_until_the_bad_record_is_dropped_alone(stack: DevStack, stream_table) -> None:
    dynamodb, table = stream_table
    sizes: list[int] = []
    handled: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        sizes.append(len(keys))
        if "bad" in keys:
            raise ValueError("a record this function cannot handle")
        handled.extend(keys)

    keys = ["a", "b", "c", "bad", "d", "e", "f", "g"]
    for key in keys:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": key}})
    pump = StreamPump(
        stack.aws.endpoint,
        table,
        handler,
        batch_size=8,
        from_start=True,
        max_retries=5,
        bisect=True,
        retry_backoff=0.01,
    )
    with pump:
        assert wait_until(lambda: len(handled) == 7)
    assert handled == [k for k in keys if k != "bad"]  # in order, all but the bad one
    assert sizes[:3] == [8, 4, 2]  # the failed batch, then its first half, then that half's first half
    assert sizes.count(1) >= 2  # the bad record ends up alone, and is dropped alone


def test_parallel_batches_with_copies_of_one_event_do_its_work_once(stack: DevStack) -> None:
    from chalicelib.schema.idempotency import BatchMarkers, WorkInProgress

    key, runs = f"test#{uuid.uuid4().hex}", []
    first = BatchMarkers({key}, claim_ms=20_000)
    second = BatchMarkers({key}, claim_ms=20_000)  # another batch, while the first is still at it
    with pytest.raises(WorkInProgress):
        second.once(key, lambda: runs.append("second"))
    first.once(key, lambda: runs.append("first"))
    first.finish()
    BatchMarkers({key}, claim_ms=20_000).once(key, lambda: runs.append("redelivered"))
    assert runs == ["first"]
    # A copy whose work failed releases its claim: the retry does the work.
    failing_key = f"test#{uuid.uuid4().hex}"
    failing = BatchMarkers({failing_key}, claim_ms=20_000)
    with pytest.raises(RuntimeError):
        failing.once(failing_key, lambda: (_ for _ in ()).throw(RuntimeError("push failed")))
    failing.finish()
    retry = BatchMarkers({failing_key}, claim_ms=20_000)
    retry.once(failing_key, lambda: runs.append("retried"))
    assert runs == ["first", "retried"]


def test_provisioned_environments_are_initialised_before_the_burst_and_take_it_without_a_cold_start() -> None:
    inits: list[str] = []
    release = threading.Event()
    pool = FunctionPool(
        "provisioned", lambda event, context: release.wait(WAIT), init=lambda: inits.append("init"), concurrency=5
    )
    try:
        assert pool.provision(3) == 3
        assert inits == ["init"] * 3 and pool.stats()["environments"] == 3
        assert pool.provision(9) == 5  # never past the function's concurrency
        burst = [pool.submit({}, throttle=False) for _ in range(5)]
        release.set()
        assert all(future.result(timeout=WAIT) for future in burst)
        assert pool.stats()["inits"] == 5 and pool.stats()["invocations"] == 5
    finally:
        release.set()
        pool.stop()
