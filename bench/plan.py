"""`python -m bench plan`: a drop of a given size in AWS, stage by stage, with the quotas it needs raised
and what it costs. docs/capacity.md explains the model; each figure below names its source.

    python -m bench plan --followers 100000 --entrants 20000 --stock 5000 --mode queue

Calibration: per-invocation durations the calls benchmark measures (bench/results/calls.json, else the
published run), else DEFAULTS, said so in the output. The rest is the deployment's own settings:
event-source concurrency (infra.stack), slice sizes and push threads (chalicelib), function timeouts
(chalicelib.schema.functions), and AWS's default quotas.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field

from bench import cost
from chalicelib.delivery.notifications import DROP_PUSH_SLICE, FOLLOWERS_PER_SLICE
from chalicelib.delivery.pusher import PUSH_WORKERS
from chalicelib.schema.functions import ACCESS

MODES = ("first_come", "queue", "draw")
# AWS defaults (docs/capacity.md): raisable quotas per account and region.
WS_NEW_CONNECTIONS_PER_S = 500
API_REQUESTS_PER_S = 10_000
LAMBDA_CONCURRENCY = 1_000
LAMBDA_UNRESERVED_MIN = 100
PARTITION_WCU_PER_S = 1_000
ON_DEMAND_INITIAL_WCU_PER_S = 4_000
# Per-item defaults where no run measured them.
DEFAULTS = {
    "push_ms": 25.0,  # one @connections post
    "order_ms": 60.0,  # one POST /orders invocation
    "entrant_ms": 20.0,  # sealing or drawing: 2 DynamoDB calls and a push per entrant, threads apart
    "inbox_slice_ms": 400.0,  # one deliver invocation: a page of followers read, their inbox rows written
}


@dataclass
class Drop:
    followers: int
    entrants: int
    stock: int
    mode: str
    order_rate: float = 150.0  # orders/s the front door takes (the seed's promise)
    payment_latency_ms: float = cost.DEFAULT_PAYMENT_LATENCY_MS
    charge_concurrency: int = 10
    connect_window_s: float = 60.0  # followers open their sockets over the minute before the start
    seal_slices: int = 1  # invocations that seal or draw at once (1: one invocation does it all)
    push_slices: int = 0  # slices of drop_started's push posted at once (0: as many as their event source allows)


@dataclass
class Plan:
    stages: dict[str, float] = field(default_factory=dict)  # seconds
    quotas: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    concurrency: int = 0


def calibration() -> tuple[dict[str, float], str]:
    """Per-item durations: measured where the calls benchmark ran, else DEFAULTS."""
    figures, source = cost.load_figures()
    measured = dict(DEFAULTS)
    api = figures["functions"].get("api")
    if api and figures["functions"] is not cost.DEFAULTS["functions"]:
        measured["order_ms"] = cost.invocation_ms(api)
        return measured, f"order_ms {source}; push and entrant figures: documented defaults"
    return measured, "documented defaults (no run measured per-invocation durations)"


def orders_of(drop: Drop) -> int:
    """Orders of a sell-out, one unit each: the stock, or fewer entrants in a queue or draw."""
    return drop.stock if drop.mode == "first_come" else min(drop.stock, drop.entrants)


def deployed_caps() -> dict[str, int]:
    """MaximumConcurrency of each queue's event source, as the stack deploys it."""
    # Imported here: infra.lambdas loads the CDK (seconds), which the arithmetic does not need.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.lambdas import QUEUE_SOURCE_TUNING

    return {queue: concurrency for queue, (_, concurrency) in QUEUE_SOURCE_TUNING.items()}


def plan(drop: Drop, per: dict[str, float], per_order_usd: float, caps: dict[str, int]) -> Plan:
    """Every stage's time, the quotas to raise and the cost of one drop of this size, with `caps` the
    queues' event-source concurrency (deployed_caps())."""
    if drop.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    result = Plan()
    deliver_cap, payments_cap, notify_cap = caps["deliver"], caps["payments"], caps["notify"]
    slices_cap = caps["push_slices"]

    # notify: drop_started posted to every connected follower in slices of DROP_PUSH_SLICE connections
    # (notifications.push_in_slices), each an invocation posting PUSH_WORKERS at a time, as many at once as
    # the push_slices event source allows (or `push_slices`); inbox rows follow in FOLLOWERS_PER_SLICE slices.
    slices = math.ceil(drop.followers / DROP_PUSH_SLICE)
    at_once = max(1, min(slices, drop.push_slices or slices_cap))
    slice_s = min(drop.followers, DROP_PUSH_SLICE) * per["push_ms"] / 1000 / PUSH_WORKERS
    notify_s = math.ceil(slices / at_once) * slice_s
    posts_per_s = drop.followers / notify_s if notify_s else 0.0
    if posts_per_s + drop.order_rate > API_REQUESTS_PER_S:
        notify_s = drop.followers / (API_REQUESTS_PER_S - drop.order_rate)
        result.quotas.append(
            f"API Gateway requests/s: {posts_per_s + drop.order_rate:,.0f} wanted (pushes + orders) > "
            f"{API_REQUESTS_PER_S:,} default; at the default, notify takes {notify_s:.1f} s"
        )
    push_timeout = ACCESS["fanout"].timeout
    if slice_s > push_timeout:
        posts = int(push_timeout * PUSH_WORKERS / (per["push_ms"] / 1000))
        result.notes.append(
            f"one fanout invocation posts about {posts:,} pushes in its {push_timeout} s timeout: "
            f"a slice of {DROP_PUSH_SLICE:,} connections does not fit"
        )
    result.stages["notify (drop_started)"] = notify_s
    result.stages["inbox rows (drop_started)"] = (
        math.ceil(math.ceil(drop.followers / FOLLOWERS_PER_SLICE) / deliver_cap) * per["inbox_slice_ms"] / 1000
    )

    # seal or draw: per entrant, in `seal_slices` invocations at once, each within its timeout.
    if drop.mode != "first_come":
        handler = "admissions"  # it seals lines and draws draws, once a minute
        work_s = drop.entrants * per["entrant_ms"] / 1000
        seal_s = work_s / max(1, drop.seal_slices)
        result.stages["seal line" if drop.mode == "queue" else "draw"] = seal_s
        timeout = ACCESS[handler].timeout
        if seal_s > timeout:
            result.notes.append(
                f"one {handler} invocation needs {seal_s:.0f} s > its {timeout} s timeout: slice it "
                f"(at least {math.ceil(work_s / (timeout * 0.5))} slices of half a timeout)"
            )

    # charge: orders arrive at order_rate; each payments invocation runs charge_concurrency at once.
    orders = orders_of(drop)
    charges_per_s = payments_cap * drop.charge_concurrency / (drop.payment_latency_ms / 1000)
    arrival_s = orders / drop.order_rate
    result.stages["charge"] = max(arrival_s, orders / charges_per_s) + drop.payment_latency_ms / 1000
    if charges_per_s < drop.order_rate:
        needed = math.ceil(drop.order_rate * drop.payment_latency_ms / 1000 / drop.charge_concurrency)
        result.notes.append(
            f"charges settle {charges_per_s:.0f}/s < {drop.order_rate:.0f} orders/s: raise payments' "
            f"MaximumConcurrency to {needed} (and its reserved concurrency)"
        )

    # confirm: order_confirmed pushes, one per order, through notify's consumers.
    confirm_rate = notify_cap * PUSH_WORKERS / (per["push_ms"] / 1000)
    result.stages["confirm (order_confirmed)"] = orders / min(confirm_rate, charges_per_s, drop.order_rate) + (
        per["push_ms"] / 1000
    )

    # quotas
    connects = drop.followers / drop.connect_window_s
    if connects > WS_NEW_CONNECTIONS_PER_S:
        result.quotas.append(
            f"WebSocket new connections/s: {connects:,.0f} > {WS_NEW_CONNECTIONS_PER_S} default "
            f"({drop.followers:,} followers connecting over {drop.connect_window_s:.0f} s)"
        )
    api_concurrency = math.ceil(drop.order_rate * per["order_ms"] / 1000)
    result.concurrency = api_concurrency + deliver_cap + payments_cap + notify_cap + slices_cap + 10
    if result.concurrency > LAMBDA_CONCURRENCY - LAMBDA_UNRESERVED_MIN:
        result.quotas.append(
            f"Lambda concurrency: {result.concurrency:,} at peak > {LAMBDA_CONCURRENCY - LAMBDA_UNRESERVED_MIN} usable"
        )
    stock_wcu = drop.order_rate * 2  # a transactional decrement: 2 units per 1 KB stock item or shard
    shards = math.ceil(stock_wcu / PARTITION_WCU_PER_S)
    if shards > 1:
        result.quotas.append(
            f"DynamoDB partitions: the drop's stock takes {stock_wcu:,.0f} WCU/s > {PARTITION_WCU_PER_S} per "
            f"partition: shard its stock over at least {shards} items"
        )
    table_wcu = drop.order_rate * per.get("wcu_per_order", 18)
    if table_wcu > ON_DEMAND_INITIAL_WCU_PER_S:
        result.quotas.append(
            f"DynamoDB on-demand: {table_wcu:,.0f} WCU/s > {ON_DEMAND_INITIAL_WCU_PER_S:,} a new table takes at "
            "once: set warm throughput on the tables before the drop"
        )

    pushes = drop.followers + (drop.entrants if drop.mode != "first_come" else 0)
    result.cost_usd = orders * per_order_usd + pushes * cost.PRICES["ws"].usd / cost.PRICES["ws"].per
    return result


def report(drop: Drop, result: Plan, source: str) -> str:
    out = [
        f"A {drop.mode} drop: {drop.followers:,} followers, {drop.entrants:,} entrants, {drop.stock:,} units, "
        f"orders at {drop.order_rate:.0f}/s, charges of {drop.payment_latency_ms:.0f} ms",
        f"calibration: {source}",
        "",
        "stage                          seconds",
    ]
    out += [f"{name:30} {seconds:8.1f}" for name, seconds in result.stages.items()]
    out += ["", f"peak Lambda concurrency: {result.concurrency:,}"]
    out += ["quotas to raise:"] + ([f"  - {q}" for q in result.quotas] or ["  none"])
    if result.notes:
        out += ["notes:"] + [f"  - {n}" for n in result.notes]
    out += ["", f"cost of this drop: ${result.cost_usd:,.2f}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, required=True)
    parser.add_argument("--entrants", type=int, required=True)
    parser.add_argument("--stock", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--order-rate", type=float, default=150.0, help="orders/s the front door takes")
    parser.add_argument("--payment-latency-ms", type=float, default=cost.DEFAULT_PAYMENT_LATENCY_MS)
    parser.add_argument("--seal-slices", type=int, default=1, help="invocations sealing or drawing at once")
    parser.add_argument(
        "--push-slices", type=int, default=0, help="slices of drop_started posted at once (0: push_slices' concurrency)"
    )
    args = parser.parse_args(argv)
    for name in ("followers", "entrants", "stock"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0")
    if args.order_rate <= 0 or args.payment_latency_ms <= 0 or args.seal_slices < 1 or args.push_slices < 0:
        parser.error("--order-rate and --payment-latency-ms must be > 0, --seal-slices >= 1, --push-slices >= 0")
    drop = Drop(
        args.followers,
        args.entrants,
        args.stock,
        args.mode,
        order_rate=args.order_rate,
        payment_latency_ms=args.payment_latency_ms,
        seal_slices=args.seal_slices,
        push_slices=args.push_slices,
    )
    per, source = calibration()
    figures, _ = cost.load_figures()
    per["wcu_per_order"] = float(figures["capacity"]["write_units_per_order"])
    per_order = cost.per_million(cost.lines(figures, drop.payment_latency_ms, drop.charge_concurrency)) / 1e6
    print(report(drop, plan(drop, per, per_order, deployed_caps()), source))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
