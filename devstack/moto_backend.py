"""The embedded AWS: moto in server mode, split by service into child processes, on 127.0.0.1.

Child processes keep moto's CPU work off the GIL of the process that runs the app, gateways and
pumps, and each has its own serialization lock, so the pipeline's messaging never waits behind the
order path's DynamoDB transactions and both cores are used:

- `dynamodb`: DynamoDB and DynamoDB Streams (moto reads a table's stream in process);
- `messaging`: SQS, SNS, EventBridge Scheduler, Cognito, SES, Secrets Manager and any other service.
  SNS delivers to its SQS subscriptions inside moto, in process, so SNS and SQS stay together. It
  also answers `GET /_devstack/ses/sent`: the e-mails SES sent, which SES itself never lists
  (the REST gateway shows them at /_dev/emails).

A child refuses requests for services of the other group (HTTP 400), so a client pointed at the
wrong endpoint fails loudly instead of writing to an empty copy of a service.
`python -m devstack.moto_backend --port 0 --group dynamodb` prints `LISTENING <port>` once it serves.

Inside the child (and only there) `serve` adjusts moto for a long-running dev stack:
`_patch_moto_transactions` (rollback journal instead of whole-table copies),
`_patch_sqs_long_poll` (long polls wait outside the serialization lock), periodic
`reset_model_data` in `SerializedApp` (bounded memory) and `KeepAliveRequestHandler`
(HTTP/1.1 keep-alive, no access log).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any

from devstack.contention import ContentionPlan, ItemGate, write_units
from devstack.identity import CREDENTIALS_ENV

# moto registers every model instance it ever creates (moto.core.model_instances) for its dashboard;
# forgetting them every so many requests keeps a long run's memory flat.
MODEL_RESET_EVERY = 1000

# The serialization lock the current request thread holds, so a long poll can let go of it.
_held = threading.local()

# moto's backend names per child process; the messaging child also serves every service not listed.
DYNAMODB = "dynamodb"
MESSAGING = "messaging"
SERVICE_GROUPS: dict[str, tuple[str, ...]] = {
    DYNAMODB: ("dynamodb", "dynamodbstreams"),
    MESSAGING: ("sqs", "sns", "scheduler", "cognito-idp", "ses", "secretsmanager"),
}


# The file each process keeps its state in, in a data folder: the tables (users, drops, orders) stay in
# aws.state, where a single process kept everything before the split.
STATE_NAMES = {DYNAMODB: "aws", MESSAGING: "aws-messaging"}
# What a child prints instead of LISTENING when its data folder cannot be restored (then one line).
REFUSED = "REFUSED "


def group_of(service: str) -> str:
    """The child process (group) that serves moto/botocore service `service`."""
    return DYNAMODB if service in SERVICE_GROUPS[DYNAMODB] else MESSAGING


def _serves(group: str, backend: str) -> bool:
    if backend in ("moto_api", "instance_metadata"):
        return True
    return group_of(backend) == group


class SerializedApp:
    """WSGI middleware that lets one request at a time into moto (its backends are not thread-safe)."""

    def __init__(self, app: Any, reset_every: int = MODEL_RESET_EVERY) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._reset_every = reset_every
        self._requests = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        # When the request reached DynamoDB: what waits for the lock runs concurrently in AWS.
        _held.arrived = time.monotonic()
        with self._lock:
            _held.lock = self._lock
            try:
                return list(self._app(environ, start_response))
            finally:
                _held.lock = None
                self._requests += 1
                if self._reset_every and self._requests % self._reset_every == 0:
                    _forget_tracked_models()


def _forget_tracked_models() -> None:
    # moto's own reset calls this too; the models stay reachable from their backends.
    from moto.core.model_instances import reset_model_data

    reset_model_data()


def _refusal(group: str, backend: str) -> Any:
    message = f"this embedded AWS process serves the {group} services, not {backend}".encode()

    def refuse(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("400 Bad Request", [("Content-Type", "text/plain"), ("Content-Length", str(len(message)))])
        return [message]

    return refuse


def build_app(group: str | None = None) -> SerializedApp:
    """moto's WSGI app for the services of `group` (every service when None), wrapped for safe concurrent use."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from devstack.contention import TransactionRules
    from devstack.s3_uploads import PostPolicyCheck

    def create_app(backend: Any) -> Any:
        if group is None or _serves(group, str(backend)):
            return create_backend_app(backend)
        return _refusal(group, str(backend))

    # Inside the lock: a token's first request and its repeat never overlap.
    dispatcher: Any = TransactionRules(DomainDispatcherApplication(create_app))
    if group is None or _serves(group, "s3"):
        # S3 refuses a browser upload its policy does not allow; moto would store it.
        dispatcher = PostPolicyCheck(dispatcher)
    if group is None or _serves(group, "ses"):
        return SerializedApp(_SentEmails(dispatcher))
    return SerializedApp(dispatcher)


class _SentEmails:
    """`GET /_devstack/ses/sent`: what SES sent, as JSON (oldest first); every other request passes on."""

    PATH = "/_devstack/ses/sent"

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != self.PATH:
            return self._app(environ, start_response)
        import json

        from moto.ses.models import ses_backends

        from devstack.identity import ACCOUNT_ID, REGION

        sent = ses_backends[ACCOUNT_ID][REGION].sent_messages
        body = json.dumps(
            [
                {"message_id": m.id, "source": m.source, "destinations": m.destinations, "raw": m.raw_data}
                for m in sent
                if hasattr(m, "raw_data")
            ]
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class _TransactionJournal:
    """The items (and stream lengths) a transaction touched, as they were before it wrote them."""

    def __init__(self) -> None:
        self._items: list[tuple[Any, Any, Any, Any]] = []
        self._streams: dict[int, tuple[Any, Any, list[Any], int]] = {}

    def remember(self, table: Any, hash_key: Any, range_key: Any, current: Any, will_mutate: bool) -> None:
        if id(table) not in self._streams:
            shard = table.stream_shard
            records = shard.items if shard is not None else []
            self._streams[id(table)] = (table, shard, records, len(records))
        # UpdateItem edits the stored Item in place; Put and Delete only replace or drop it.
        before = copy.deepcopy(current) if will_mutate and current is not None else current
        self._items.append((table, hash_key, range_key, before))

    def rollback(self) -> None:
        for table, hash_key, range_key, before in reversed(self._items):
            if range_key is not None:
                bucket = table.items[hash_key]
                if before is None:
                    bucket.pop(range_key, None)
                else:
                    bucket[range_key] = before
                if not bucket:
                    table.items.pop(hash_key, None)
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        for table, shard, records, length in self._streams.values():
            # If a Lambda event-source mapping already drained the shard, the records are gone anyway.
            if shard is not None and table.stream_shard is shard and shard.items is records:
                del records[length:]
        self._items.clear()
        self._streams.clear()


def _patch_moto_transactions() -> None:
    """Make moto's TransactWriteItems roll back from a per-item journal instead of whole-table deep copies."""
    import moto.dynamodb.comparisons as comparisons
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    # Mirrors moto 5.2.5 DynamoDBBackend.transact_write_items step for step (same checks, same
    # order, same cancellation reasons); only the backup/restore differs, and the contention the
    # ItemGate models (devstack.contention): an item held or out of write units cancels it.
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        journal = _TransactionJournal()
        target_items: set[tuple[str, str]] = set()
        touched: list[Any] = []
        started = time.monotonic()
        arrived = getattr(_held, "arrived", started)
        spent: list[tuple[Any, int]] = []

        def check_unicity(table_name: str, key: dict[str, Any]) -> None:
            item = (str(table_name), str(dict(sorted(key.items()))))
            if item in target_items:
                raise MultipleTransactionsException()
            target_items.add(item)

        errors: list[Any] = []
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")

                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                expression_attribute_names = op.get("ExpressionAttributeNames")
                expression_attribute_values = op.get("ExpressionAttributeValues")
                return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]

                check_unicity(table_name, key)

                # What self.get_item(table_name, key) does, keeping the table and key for the journal.
                table = self.get_table(table_name)
                hash_key, range_key = self.get_keys_value(table, key)
                item_id = (str(table_name), hash_key, range_key)
                if _gate.busy(item_id, arrived):
                    errors.append(("TransactionConflict", "Transaction is ongoing for the item", None))
                    continue
                if op_type != "ConditionCheck" and _gate.throttled(item_id):
                    errors.append(("ThrottlingError", _THROTTLED_ITEM, None))
                    continue
                touched.append(item_id)
                current = table.get_item(hash_key, range_key)
                size_before = write_units(None, current, transactional=True)
                journal.remember(table, hash_key, range_key, current, will_mutate=op_type == "Update")

                if condition_expression is not None:
                    condition_op = comparisons.get_filter_expression(
                        condition_expression, expression_attribute_names, expression_attribute_values
                    )
                    if not condition_op.expr(current):
                        if return_values_on_condition_check_failure == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)

                # The condition held just above, under the same lock: moto would parse and check it again.
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                if op_type != "ConditionCheck":
                    after = table.get_item(hash_key, range_key)
                    spent.append((item_id, max(size_before, write_units(None, after, transactional=True))))
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                journal.rollback()
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:
                errors.append((type(e).__name__, str(e), original_item))

        if any(code is not None for code, _, _ in errors):
            journal.rollback()
            raise TransactionCanceledException(errors)
        _gate.hold(touched, started)
        for item_id, units in spent:
            _gate.spend(item_id, units)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _patch_single_writes()
    _patch_no_op_stream_records()


# The embedded DynamoDB's contention (devstack.contention): set by serve() from LIVEDROP_CONTENTION.
_gate = ItemGate(ContentionPlan(0.0, 0.0))
_THROTTLED_ITEM = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
    "table or index so please try again shortly."
)
# Set while a PutItem, UpdateItem or DeleteItem request is served (a transaction's own writes are not one).
_single_write = threading.local()


def _patch_single_writes() -> None:
    """PutItem, UpdateItem and DeleteItem on an item past its write rate are refused before they write."""
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    class ThroughputExceeded(DynamodbException):
        def __init__(self) -> None:
            super().__init__("com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", _THROTTLED_ITEM)

    def request(name: str) -> None:
        handle = getattr(DynamoHandler, name)

        def serve_one(self: Any) -> Any:
            _single_write.active = True
            try:
                return handle(self)
            finally:
                _single_write.active = False

        setattr(DynamoHandler, name, serve_one)

    def rated(name: str, key_of: Callable[[Any, Any, tuple[Any, ...]], Any]) -> None:
        write = getattr(DynamoDBBackend, name)

        def rated_write(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            if not getattr(_single_write, "active", False):
                return write(self, table_name, *args, **kwargs)
            table = self.get_table(table_name)
            try:
                hash_key, range_key = self.get_keys_value(table, key_of(table, args[0], args))
            except Exception:
                # A malformed key: moto's own write refuses it with DynamoDB's error.
                return write(self, table_name, *args, **kwargs)
            item_id = (str(table_name), hash_key, range_key)
            if _gate.throttled(item_id):
                raise ThroughputExceeded()
            before = write_units(None, table.get_item(hash_key, range_key))
            result = write(self, table_name, *args, **kwargs)
            _gate.spend(item_id, max(before, write_units(None, table.get_item(hash_key, range_key))))
            return result

        setattr(DynamoDBBackend, name, rated_write)

    def put_key(table: Any, attrs: dict[str, Any], _: Any) -> dict[str, Any]:
        names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
        return {name: attrs[name] for name in names if name in attrs}

    for name in ("put_item", "update_item", "delete_item"):
        request(name)
    rated("put_item", put_key)
    rated("update_item", lambda table, key, _: key)
    rated("delete_item", lambda table, key, _: key)


def _patch_no_op_stream_records() -> None:
    """A write that leaves the item as it was emits no stream record (AWS emits none)."""
    from moto.dynamodb.models.table import StreamShard

    add = StreamShard.add

    def add_if_changed(self: Any, old: Any, new: Any) -> None:
        if old is not None and new is not None and old == new:
            return
        add(self, old, new)

    StreamShard.add = add_if_changed  # type: ignore[method-assign]


EXPRESSION_CACHE_SIZE = 2048


def _patch_expression_cache() -> None:
    """Parse each DynamoDB condition and update expression once, not on every request.

    The app sends a handful of expression shapes over and over. A parsed condition (moto's Op tree)
    embeds its values and is only evaluated, never changed, so it is cached by expression, names
    and values. The update-expression AST that moto's request layer builds only to list the names
    and values used is cached by expression alone; the model layer parses its own copy, because its
    validator rewrites the tree it is given.
    """
    import json
    from functools import lru_cache

    import moto.dynamodb.comparisons as comparisons
    import moto.dynamodb.models as models
    import moto.dynamodb.models.table as tables
    import moto.dynamodb.responses as responses

    original_parser = comparisons.create_condition_expression_parser

    @lru_cache(maxsize=EXPRESSION_CACHE_SIZE)
    def parsed(expr: str | None, names: str, values: str) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
        parser = original_parser(expr, json.loads(names), json.loads(values))
        op = parser.parse()
        return op, tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    class _CachedCondition:
        """Stands in for moto's ConditionExpressionParser: parse(), then the names and values it found."""

        def __init__(self, expr: str | None, names: Any, values: Any) -> None:
            self._args = (expr, names, values)
            self.expr_attr_names_found: list[str] = []
            self.expr_attr_values_found: list[str] = []

        def parse(self) -> Any:
            expr, names, values = self._args
            try:
                key = (expr, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
            except (TypeError, ValueError):
                parser = original_parser(expr, names, values)
                op = parser.parse()
                self.expr_attr_names_found, self.expr_attr_values_found = (
                    parser.expr_attr_names_found,
                    parser.expr_attr_values_found,
                )
                return op
            op, found_names, found_values = parsed(*key)
            self.expr_attr_names_found, self.expr_attr_values_found = list(found_names), list(found_values)
            return op

    def create_condition_expression_parser(expr: str | None, names: Any, values: Any) -> Any:
        return _CachedCondition(expr, names, values)

    def get_filter_expression(expr: str | None, names: Any, values: Any) -> Any:
        return create_condition_expression_parser(expr, names, values).parse()

    class _CachedUpdateParser:
        # Read through responses: moto.dynamodb.parsing.expressions opts out of type checking as a whole.
        make = staticmethod(lru_cache(maxsize=EXPRESSION_CACHE_SIZE)(responses.UpdateExpressionParser.make))

    for module in (comparisons, models, tables, responses):
        if hasattr(module, "create_condition_expression_parser"):
            module.create_condition_expression_parser = create_condition_expression_parser  # type: ignore[attr-defined]
        if hasattr(module, "get_filter_expression"):
            module.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]
    responses.UpdateExpressionParser = _CachedUpdateParser


def _patch_sqs_long_poll() -> None:
    """Let a ReceiveMessage long poll wait without holding the serialization lock."""
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        held = getattr(_held, "lock", None)
        if held is None:
            original(self, timeout)
            return
        if self.messages:
            # Visible but undeliverable messages (e.g. a busy FIFO group): moto would spin here; a short
            # pause outside the lock lets other requests in and still rescans promptly.
            held.release()
            try:
                time.sleep(0.02)
            finally:
                held.acquire()
            return
        # Taking the queue's condition before letting go of the lock means no add_message notify is missed;
        # the lock is taken back only after the condition is released (one order, no deadlock).
        self._messages_lock.acquire()
        held.release()
        try:
            self._messages_lock.wait(timeout)
        finally:
            self._messages_lock.release()
            held.acquire()

    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_RATE = re.compile(r"rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(\S+( \S+){5}\)")


def valid_schedule_expression(expression: str) -> bool:
    """Whether EventBridge Scheduler accepts `expression`: at() of a real date and time to the second,
    rate() of a positive whole number of minutes, hours or days, or cron() of six fields."""
    at = _AT.fullmatch(expression)
    if at:
        try:
            datetime.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return False
        return True
    return bool(_RATE.fullmatch(expression) or _CRON.fullmatch(expression))


def _patch_scheduler_expressions() -> None:
    """CreateSchedule and UpdateSchedule refuse a malformed expression (moto stores any string)."""
    import inspect

    from moto.scheduler.exceptions import ValidationException
    from moto.scheduler.models import EventBridgeSchedulerBackend

    for name in ("create_schedule", "update_schedule"):
        method = getattr(EventBridgeSchedulerBackend, name)
        signature = inspect.signature(method)

        def checked(self: Any, *args: Any, _method: Any = method, _signature: Any = signature, **kwargs: Any) -> Any:
            expression = _signature.bind(self, *args, **kwargs).arguments.get("schedule_expression")
            if not isinstance(expression, str) or not valid_schedule_expression(expression):
                raise ValidationException(f"Invalid Schedule Expression {expression}.")
            return _method(self, *args, **kwargs)

        setattr(EventBridgeSchedulerBackend, name, checked)


def _request_handler_class() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveRequestHandler(MotoRequestHandler):
        """HTTP/1.1 keep-alive and no access log; the request body is read whole, so the next request is intact."""

        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without this, Nagle + delayed ACK adds ~40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def run_wsgi(self) -> None:
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            # werkzeug reads at most Content-Length and may read less; whatever it left would be taken
            # for the next request line, so the body is consumed here, exactly.
            if environ.get("wsgi.input_terminated"):
                body = environ["wsgi.input"].read()
            else:
                body = self.rfile.read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)

            response: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                response["status"], response["headers"] = status, headers
                return response.setdefault("written", []).append

            try:
                chunks = self.server.app(environ, start_response)
                try:
                    data = b"".join([*response.get("written", []), *chunks])
                finally:
                    if hasattr(chunks, "close"):
                        chunks.close()
            except Exception:
                self.log_error("Error on request %s %s:\n%s", self.command, self.path, traceback.format_exc())
                response = {"status": "500 INTERNAL SERVER ERROR", "headers": [("Content-Type", "text/plain")]}
                data = b"Internal Server Error"
                self.close_connection = True

            code_str, _, msg = response["status"].partition(" ")
            code = int(code_str)
            self.send_response(code, msg)
            skipped = {"connection", "keep-alive", "transfer-encoding"}
            has_body = self.command != "HEAD" and not (100 <= code < 200) and code not in (204, 304)
            if has_body:
                skipped.add("content-length")
            for name, value in response["headers"]:
                if name.lower() not in skipped:
                    self.send_header(name, value)
            if has_body:
                self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if has_body and data:
                self.wfile.write(data)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # One line per request drowns the dev stack's output; errors still go to log_error.
            pass

    return KeepAliveRequestHandler


MAX_SHARD_ITERATORS = 5_000
MAX_DELETED_RECEIPTS = 50_000


def _patch_moto_leaks() -> None:
    """Bound two stores moto never empties: stream shard iterators (AWS expires them after 15
    minutes; pumps take a new one on every GetRecords) and receipt handles of deleted messages."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend
    from moto.sqs.models import Queue

    get_records = DynamoDBStreamsBackend.get_records

    def bounded_get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        result = get_records(self, iterator_arn, limit)
        if len(self.shard_iterators) > MAX_SHARD_ITERATORS:
            # Insertion order is age order: forget the oldest half, as their expiry would.
            for arn in list(self.shard_iterators)[: MAX_SHARD_ITERATORS // 2]:
                del self.shard_iterators[arn]
        return result

    delete_message = Queue.delete_message

    def bounded_delete_message(self: Any, receipt_handle: str) -> None:
        delete_message(self, receipt_handle)
        if len(self.deleted_messages) > MAX_DELETED_RECEIPTS:
            self.deleted_messages.clear()

    DynamoDBStreamsBackend.get_records = bounded_get_records  # type: ignore[method-assign]
    Queue.delete_message = bounded_delete_message  # type: ignore[method-assign]


def _patch_sqs_retention_check() -> None:
    """ReceiveMessage checks each candidate message's retention by computing all of the queue's attributes,
    counts of visible, invisible and delayed messages included: O(n) per message, O(n^2) per receive with a
    backlog (the messaging process's top hot spot under a rush). Read the retention period itself."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    _patch_sqs_send()


def _patch_sqs_send() -> None:
    """SendMessage (and every SNS delivery to a queue) computes all of the queue's attributes, message counts
    included, only to read ContentBasedDeduplication, a FIFO-only attribute: O(n) per message sent. For a
    standard queue the answer is always "absent", so the send sees an attribute view without the counts."""
    from moto.sqs.models import Queue, SQSBackend

    class _StandardQueueOnSend(Queue):
        __module__ = Queue.__module__  # moto's model metaclass files classes by their module

        @property
        def attributes(self) -> dict[str, Any]:
            return {}

    send_message = SQSBackend.send_message

    def cheap_send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue or type(queue) is not Queue:
            return send_message(self, queue_name, *args, **kwargs)
        # Requests run one at a time (SerializedApp), so no one else sees the queue while its class is swapped.
        # moto declares Queue abstract (CloudFormationModel) but instantiates it: it is concrete at runtime.
        queue.__class__ = _StandardQueueOnSend  # type: ignore[type-abstract]
        try:
            return send_message(self, queue_name, *args, **kwargs)
        finally:
            queue.__class__ = Queue  # type: ignore[type-abstract]

    SQSBackend.send_message = cheap_send_message  # type: ignore[method-assign]


def serve(
    port: int,
    data_dir: str | None = None,
    group: str = MESSAGING,
    generation: str | None = None,
    names: list[str] | None = None,
) -> None:
    """Serve the `group` services of the embedded AWS on 127.0.0.1:`port` until SIGTERM/SIGINT; with
    `data_dir`, restore this process's state from it first and save it there on a clean stop, as its
    part of snapshot `generation` whose parts are `names` (devstack.persistence: each process keeps its
    own services' state, under its group's name)."""
    from werkzeug.serving import make_server

    # A group other than the split's two serves every service (one process, as before the split).
    services = group if group in SERVICE_GROUPS else None
    state_name = STATE_NAMES.get(group, group)
    names = names or [state_name]
    global _gate
    from devstack import contention

    _gate = ItemGate(contention.parse(os.environ.get(contention.ENV_VAR)))
    _patch_moto_transactions()
    _patch_expression_cache()
    _patch_sqs_long_poll()
    _patch_sqs_retention_check()
    _patch_moto_leaks()
    _patch_scheduler_expressions()
    if data_dir:
        from devstack import persistence

        try:
            persistence.restore(data_dir, state_name, names)
        except persistence.PersistenceError as error:
            # The parent reads this line and says it once (devstack.__main__: one line, exit 1).
            print(f"{REFUSED}{error}", flush=True)
            raise SystemExit(2) from None
    from devstack import faults

    # LIVEDROP_FAULTS: injected conflicts, throttles and 5xx (off by default), in each process.
    serialized = build_app(services)
    app = faults.wrap(serialized, label=services or "all services")
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_request_handler_class())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    _shut_down_when_orphaned(server)
    try:
        print(f"LISTENING {server.server_address[1]}", flush=True)
    except BrokenPipeError:
        # The parent stopped waiting for us (Ctrl-C during start-up): nobody will use this process.
        # Leave at once: a normal exit would flush stdout into the closed pipe again and print a traceback.
        server.server_close()
        os._exit(0)
    # The parent stops reading stdout after LISTENING: anything printed later must not fill that pipe.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    if data_dir:
        from devstack import persistence

        # Requests in flight finish first, and none runs after (kept-alive connections may still send
        # some): the lock stays held until the process exits, so the snapshot is the final state.
        # (The serialization lock itself: with faults on, `app` is the fault injector around it.)
        serialized._lock.acquire()
        persistence.save(data_dir, state_name, generation or persistence.new_generation(), names)


def _shut_down_when_orphaned(server: Any) -> None:
    """Stop serving once the parent is gone: this process is outside the terminal's process group (so
    Ctrl-C reaches only the parent), and a parent that was killed outright cannot stop it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        server.shutdown()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class EmbeddedAwsProcess:
    """One child process serving the services of one group; `endpoint` is its URL, `pid` its process id."""

    def __init__(self, group: str = MESSAGING, port: int = 0, data_dir: str | os.PathLike[str] | None = None) -> None:
        self._port = port
        # With a data folder, the child restores its state at start and saves it when stopped, as its
        # part (of `names`) of the snapshot `generation` (EmbeddedAws sets both for all its children).
        self.data_dir = os.fspath(data_dir) if data_dir is not None else None
        self.generation = ""
        self.names = [STATE_NAMES.get(group, group)]
        self.group = group
        self._process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    @property
    def pid(self) -> int | None:
        """The child process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def exit_code(self) -> int | None:
        """The child's exit status once it has died on its own (None while it runs or after stop())."""
        return self._process.poll() if self._process is not None else None

    def launch(self) -> None:
        """Start the child process without waiting for it to serve."""
        env = {**os.environ, **CREDENTIALS_ENV}
        command = [sys.executable, "-m", "devstack.moto_backend", "--port", str(self._port), "--group", self.group]
        self._process = subprocess.Popen(
            [*command, *self._data_args()],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            # Out of the terminal's process group: Ctrl-C reaches only the parent, which stops the
            # pumps before this child, so nothing loses the embedded AWS mid-call.
            process_group=0,
        )

    def wait_listening(self, timeout: float = 30.0) -> str:
        """Wait for the launched child's LISTENING line and return its endpoint URL."""
        assert self._process is not None and self._process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if line.startswith(REFUSED):
                from devstack.persistence import PersistenceError

                self.stop()
                raise PersistenceError(line[len(REFUSED) :].strip())
            if line.startswith("LISTENING "):
                self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"
                return self.endpoint
            if not line and self._process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the embedded AWS ({self.group}) did not start")

    def start(self, timeout: float = 30.0) -> str:
        """Start the child process and return its endpoint URL."""
        self.launch()
        return self.wait_listening(timeout)

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM) without waiting."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def _data_args(self) -> list[str]:
        if not self.data_dir:
            return []
        snapshot = ["--generation", self.generation] if self.generation else []
        return ["--data", os.path.abspath(self.data_dir), *snapshot, "--names", ",".join(self.names)]

    def stop(self) -> None:
        """Stop the child process (SIGTERM, then SIGKILL after 10 s, or 120 s while it saves its data)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=120 if self.data_dir else 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._process = None


class EmbeddedAws:
    """The embedded AWS: one child process per service group, started and stopped together.

    `endpoint_for(service)` is where a client of that service goes; `endpoint` is DynamoDB's (the
    order path's), `messaging_endpoint` everything else's. `env()` is how the app learns both.
    """

    def __init__(self, port: int = 0, data_dir: str | os.PathLike[str] | None = None, group: str | None = None) -> None:
        self.data_dir = os.fspath(data_dir) if data_dir is not None else None
        if group is not None:
            # One process for every service, its state under `group` (tests that need no split).
            single = EmbeddedAwsProcess(group, port, data_dir)
            self.processes = {DYNAMODB: single, MESSAGING: single}
            return
        self.processes = {
            DYNAMODB: EmbeddedAwsProcess(DYNAMODB, port, data_dir),
            MESSAGING: EmbeddedAwsProcess(MESSAGING, 0, data_dir),
        }

    @property
    def endpoint(self) -> str:
        """DynamoDB's (and DynamoDB Streams') endpoint."""
        return self.processes[DYNAMODB].endpoint

    @property
    def messaging_endpoint(self) -> str:
        """The endpoint of SQS, SNS, Scheduler, Cognito and every other service."""
        return self.processes[MESSAGING].endpoint

    @property
    def endpoints(self) -> dict[str, str]:
        """Each group's endpoint, by group name."""
        return {group: child.endpoint for group, child in self.processes.items()}

    def endpoint_for(self, service: str) -> str:
        """The endpoint serving `service` (a botocore service name such as "sqs" or "dynamodbstreams")."""
        return self.processes[group_of(service)].endpoint

    @property
    def pid(self) -> int | None:
        """The process id of a child that died on its own, else the DynamoDB child's while it runs."""
        for child in self.processes.values():
            if child.exit_code is not None:
                return child.pid
        return self.processes[DYNAMODB].pid

    @property
    def exit_code(self) -> int | None:
        """The exit status of the first child that died on its own (None while all run or after stop())."""
        for child in self.processes.values():
            if child.exit_code is not None:
                return child.exit_code
        return None

    @property
    def pids(self) -> dict[str, int | None]:
        """Every child's process id, by group."""
        return {group: child.pid for group, child in self.processes.items()}

    def env(self) -> dict[str, str]:
        """The app's settings for these endpoints: messaging is the default, DynamoDB's services go apart."""
        dynamodb = ",".join(f"{service}={self.endpoint}" for service in SERVICE_GROUPS[DYNAMODB])
        return {"LIVEDROP_AWS_ENDPOINT": self.messaging_endpoint, "LIVEDROP_AWS_ENDPOINTS": dynamodb}

    def start(self, timeout: float = 30.0) -> str:
        """Start every child (in parallel) and return DynamoDB's endpoint; with a data folder, its
        snapshot is checked first (devstack.persistence.PersistenceError: one line naming the file)."""
        if self.data_dir:
            from devstack import persistence

            names = sorted({STATE_NAMES.get(child.group, child.group) for child in self._children()})
            persistence.snapshot_files(self.data_dir, names)
            generation = persistence.new_generation()  # this run's snapshot, saved by every child together
            for child in self._children():
                child.generation, child.names = generation, names
        try:
            for child in self._children():
                child.launch()
            for child in self._children():
                child.wait_listening(timeout)
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def stop(self) -> None:
        """Stop every child (all asked at once, then each waited for)."""
        for child in self._children():
            child.terminate()
        for child in self._children():
            child.stop()

    def _children(self) -> list[EmbeddedAwsProcess]:
        return list({id(child): child for child in self.processes.values()}.values())

    def __enter__(self) -> EmbeddedAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="LiveDrop's embedded AWS (moto server)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--group", default=MESSAGING, help="dynamodb, messaging, or any other name for all services")
    parser.add_argument("--data", default=None, help="restore state from this folder, save it there on stop")
    parser.add_argument("--generation", default=None, help="the snapshot this run saves (devstack.persistence)")
    parser.add_argument("--names", default="", help="the state names saved together, comma-separated")
    args = parser.parse_args(argv)
    os.environ.update(CREDENTIALS_ENV)
    serve(args.port, args.data, args.group, args.generation, [n for n in args.names.split(",") if n])


if __name__ == "__main__":
    main()
