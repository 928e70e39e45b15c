"""Embedded DynamoDB throughput: TransactWriteItems/s and GetItem/s, 1 and 8 client threads, 0 and 20,000 items.

`python -m bench.backend` prints the figures and writes them to bench/results/backend.json.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

from devstack.identity import client_kwargs
from devstack.moto_backend import EmbeddedAws

TABLE_SIZES = (0, 20_000)
THREAD_COUNTS = (1, 8)
DURATION_S = 3.0
# One transaction on a table of 20,000 items can take seconds when moto copies the table;
# a cap keeps a measurement bounded even then.
MAX_WAIT_S = 30.0


def order_items(table: str, order_id: str) -> list[dict[str, Any]]:
    """An order-shaped transaction: a conditional stock decrement and a new order row."""
    return [
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": "stock"}},
                "UpdateExpression": "SET stock = stock - :one",
                "ConditionExpression": "stock >= :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {
            "Put": {
                "TableName": table,
                "Item": {"pk": {"S": f"order#{order_id}"}, "qty": {"N": "1"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]


def _client(endpoint: str, pool: int = 10) -> Any:
    return boto3.session.Session().client(
        "dynamodb",
        **client_kwargs(endpoint),
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=pool),
    )


def _create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def load_items(endpoint: str, table: str, count: int, threads: int = 8) -> None:
    """Write `count` filler items into `table` with BatchWriteItem from `threads` threads."""
    if count <= 0:
        return
    client = _client(endpoint, pool=threads)

    def write_chunk(start: int) -> None:
        requests = [
            {"PutRequest": {"Item": {"pk": {"S": f"item#{i}"}, "payload": {"S": "x" * 64}, "n": {"N": str(i)}}}}
            for i in range(start, min(start + 25, count))
        ]
        pending: dict[str, Any] = {table: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(write_chunk, range(0, count, 25)))


def _measure(threads: int, op: Any) -> dict[str, float]:
    """Run `op(worker_index)` in `threads` threads for DURATION_S; returns ops/s and errors."""
    done = [0] * threads
    errors = [0] * threads
    stop = threading.Event()

    def worker(index: int) -> None:
        while not stop.is_set():
            try:
                op(index)
                done[index] += 1
            except Exception:
                errors[index] += 1

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(DURATION_S)
    stop.set()
    for w in workers:
        w.join(MAX_WAIT_S)
    elapsed = time.perf_counter() - started
    return {"ops_per_s": round(sum(done) / elapsed, 1), "ops": sum(done), "errors": sum(errors)}


def _bench_table(endpoint: str, size: int) -> dict[str, Any]:
    admin = _client(endpoint)
    table = f"bench-{size}-{uuid.uuid4().hex[:6]}"
    _create_table(admin, table)
    started = time.perf_counter()
    load_items(endpoint, table, size)
    load_s = time.perf_counter() - started
    admin.put_item(TableName=table, Item={"pk": {"S": "stock"}, "stock": {"N": str(10**9)}})
    clients = [_client(endpoint) for _ in range(max(THREAD_COUNTS))]

    def transact(index: int) -> None:
        clients[index].transact_write_items(TransactItems=order_items(table, uuid.uuid4().hex))

    def get(index: int) -> None:
        key = f"item#{random.randrange(size)}" if size else "stock"
        clients[index].get_item(TableName=table, Key={"pk": {"S": key}})

    result: dict[str, Any] = {"items": size, "load_s": round(load_s, 2)}
    for threads in THREAD_COUNTS:
        result[f"transact_write_{threads}t"] = _measure(threads, transact)
        result[f"get_item_{threads}t"] = _measure(threads, get)
    admin.delete_table(TableName=table)
    return result


def run(results_dir: str) -> dict[str, Any]:
    """Measure the embedded DynamoDB and write backend.json into `results_dir`."""
    with EmbeddedAws() as aws:
        tables = [_bench_table(aws.endpoint, size) for size in TABLE_SIZES]
    results = {"benchmark": "backend", "duration_s": DURATION_S, "tables": tables}
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "backend.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def _print(results: dict[str, Any]) -> None:
    for table in results["tables"]:
        print(f"items={table['items']} (loaded in {table['load_s']} s)")
        for key, value in table.items():
            if isinstance(value, dict):
                print(f"  {key:20s} {value['ops_per_s']:8.1f}/s  ({value['ops']} ops, {value['errors']} errors)")


if __name__ == "__main__":
    _print(run(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")))
