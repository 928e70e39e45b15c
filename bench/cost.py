"""`python -m bench cost`: what a million orders cost in AWS, end to end, item by item.

From placement to confirmation and the buyer's notification: the REST request (and its WAF check),
the Lambda invocations of every function on the way (their memory from chalicelib/functions.py, which the
template deploys, and their duration as the dev stack measures it, plus the wait on the card
processor), the DynamoDB capacity units of the items as the dev stack writes and reads them
(bench.units), the SNS and SQS requests, the WebSocket push, logs and traces.

The figures come from `make bench`'s calls benchmark (bench/results/calls.json; else the published
run in bench/published/); anything a run did not measure falls back to DEFAULTS, and the output says
which. Prices are on-demand list prices, us-east-1, without free tiers; PRICES says each one.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.schema import topology
from chalicelib.schema.functions import ACCESS

BENCH = Path(__file__).resolve().parent
MEASURED = (BENCH / "results" / "calls.json", BENCH / "published" / "latest.json")


@dataclass(frozen=True)
class Price:
    usd: float
    per: float
    unit: str

    def __str__(self) -> str:
        per = {1e6: "1M", 1024**3: "GB", 1: "1"}.get(self.per, f"{self.per:g}")
        return f"${self.usd:g} per {per}"


PRICES: dict[str, Price] = {
    "rest": Price(3.50, 1e6, "API Gateway REST requests"),
    "waf": Price(0.60, 1e6, "WAF web ACL requests"),
    "lambda_requests": Price(0.20, 1e6, "Lambda requests"),
    "lambda_gb_s": Price(0.0000166667, 1, "Lambda GB-seconds (x86_64)"),
    "ddb_write": Price(0.625, 1e6, "DynamoDB on-demand write request units"),
    "ddb_read": Price(0.125, 1e6, "DynamoDB on-demand read request units"),
    "sns": Price(0.50, 1e6, "SNS publish requests (a batch up to 64 KB is one); deliveries to SQS are free"),
    "sqs": Price(0.40, 1e6, "SQS requests (Lambda's receives and deletes included)"),
    "ws": Price(1.00, 1e6, "API Gateway WebSocket messages (pushes through @connections included)"),
    "logs": Price(0.50, 1024**3, "CloudWatch Logs ingested bytes"),
    "xray": Price(5.00, 1e6, "X-Ray traces recorded"),
}
# Lambda bills whole milliseconds; reads of DynamoDB streams by Lambda triggers are free.
FREE = {"dynamodbstreams"}
# What no run measured: the figures of one dev stack run of bench.calls (40 orders, 2026-12-06, a load
# average near 50: wall times are inflated, CPU times and calls are not). docs/capacity.md explains them.
DEFAULTS: dict[str, Any] = {
    "calls": {
        "dynamodb:BatchGetItem": 0.625,
        "dynamodb:BatchWriteItem": 0.875,
        "dynamodb:GetItem": 1.25,
        "dynamodb:Query": 1.05,
        "dynamodb:TransactWriteItems": 2.0,
        "dynamodb:UpdateItem": 0.15,
        "sns:PublishBatch": 1.025,
        "sqs:DeleteMessageBatch": 0.525,
        "sqs:ReceiveMessage": 0.55,
    },
    "capacity": {"write_units_per_order": 25.15, "read_units_per_order": 2.27},
    "functions": {
        "api": {"invocations_per_order": 1.0, "mean_ms": 1752.1, "cpu_ms": 4.7, "calls_per_invocation": 1.2},
        "domain_events": {
            "invocations_per_order": 0.975,
            "mean_ms": 162.9,
            "cpu_ms": 3.3,
            "calls_per_invocation": 1.05,
        },
        "fanout": {"invocations_per_order": 0.4, "mean_ms": 1117.3, "cpu_ms": 53.2, "calls_per_invocation": 5.94},
        "payments": {"invocations_per_order": 0.125, "mean_ms": 3311.0, "cpu_ms": 60.7, "calls_per_invocation": 19.0},
    },
}
# A function's billed time in AWS: its handler's CPU time as measured, plus each AWS call it makes at
# an in-region latency (DynamoDB answers in single-digit ms, SNS and SQS in about 10-20). The dev stack's
# wall time is not used when CPU time was measured: on a shared machine it mostly measures the neighbours.
AWS_CALL_MS = 10.0
LOG_BYTES_PER_INVOCATION = 700  # START, END, REPORT and one Powertools line
TRACE_SAMPLE = 0.05  # X-Ray's default rule: 1 a second, then 5 %
PUSHES_PER_ORDER = 1.0  # order_confirmed to the buyer's open socket; live stock is per drop, not per order
DEFAULT_PAYMENT_LATENCY_MS = 300.0


def load_figures() -> tuple[dict[str, Any], str]:
    """The last calls benchmark's pipeline figures, per order, and where they came from."""
    for path in MEASURED:
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        calls = data.get("results", {}).get("calls", data) if "results" in data else data
        pipeline = calls.get("pipeline")
        if pipeline:
            orders = pipeline["orders"]
            figures = {
                "calls": {k: v / orders for k, v in pipeline["calls"].items()},
                "capacity": pipeline.get("capacity") or DEFAULTS["capacity"],
                "functions": pipeline.get("functions") or DEFAULTS["functions"],
            }
            missing = [k for k in ("capacity", "functions") if not pipeline.get(k)]
            note = f"measured: {path.relative_to(BENCH.parent)}"
            return figures, note + (f" (defaults for {', '.join(missing)})" if missing else "")
    return DEFAULTS, "no benchmark run found: documented defaults (run `make bench` to measure)"


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float  # per order
    price: Price

    @property
    def per_million(self) -> float:
        return self.quantity * 1e6 * self.price.usd / self.price.per


def invocation_ms(figures: dict[str, float]) -> float:
    """One invocation's duration in AWS: CPU time plus calls at AWS_CALL_MS, else the measured wall time."""
    if "cpu_ms" in figures:
        return figures["cpu_ms"] + figures.get("calls_per_invocation", 0.0) * AWS_CALL_MS
    return figures["mean_ms"]


def charge_wait_ms(latency_ms: float, concurrency: int) -> float:
    """Lambda time per order spent waiting on the card processor: a batch's charges run `concurrency`
    at a time, so each order holds the function for latency / concurrency."""
    return latency_ms / max(1, concurrency)


def lines(figures: dict[str, Any], payment_latency_ms: float, charge_concurrency: int) -> list[Line]:
    """Every cost item of one order, quantities per order."""
    calls = figures["calls"]
    sns = sum(v for k, v in calls.items() if k.startswith("sns:"))
    sqs = sum(v for k, v in calls.items() if k.startswith("sqs:"))
    functions = figures["functions"]
    invocations = sum(f["invocations_per_order"] for f in functions.values())
    gb_s = 0.0
    for name, f in functions.items():
        memory = ACCESS[name].memory if name in ACCESS else 128
        billed_ms = f["invocations_per_order"] * math.ceil(invocation_ms(f))
        if name == "payments":
            billed_ms += charge_wait_ms(payment_latency_ms, charge_concurrency)
        gb_s += billed_ms / 1000 * memory / 1024
    rest = 1.0
    capacity = figures["capacity"]
    return [
        Line("REST request (POST /orders)", rest, PRICES["rest"]),
        Line("WAF check of that request", rest, PRICES["waf"]),
        Line("Lambda invocations", invocations, PRICES["lambda_requests"]),
        Line("Lambda duration (GB-s, card wait included)", gb_s, PRICES["lambda_gb_s"]),
        Line("DynamoDB write units", capacity["write_units_per_order"], PRICES["ddb_write"]),
        Line("DynamoDB read units", capacity["read_units_per_order"], PRICES["ddb_read"]),
        Line("SNS publishes", sns, PRICES["sns"]),
        Line("SQS requests", sqs, PRICES["sqs"]),
        Line("WebSocket push (order_confirmed)", PUSHES_PER_ORDER, PRICES["ws"]),
        Line("CloudWatch Logs (bytes)", invocations * LOG_BYTES_PER_INVOCATION, PRICES["logs"]),
        Line("X-Ray traces", TRACE_SAMPLE * (rest + invocations), PRICES["xray"]),
    ]


def per_million(items: list[Line]) -> float:
    return sum(line.per_million for line in items)


def report(items: list[Line], source: str, payment_latency_ms: float, charge_concurrency: int) -> str:
    total = per_million(items)
    out = [
        f"AWS cost per 1M orders, placement to confirmation and notification ({source})",
        f"card processor latency {payment_latency_ms:.0f} ms, {charge_concurrency} charges at once per invocation",
        "",
        f"{'item':46} {'per order':>12} {'price':>22} {'per 1M orders':>14} {'share':>6}",
    ]
    for line in items:
        price = str(line.price)
        share = line.per_million / total if total else 0.0
        out.append(f"{line.item:46} {line.quantity:12.4g} {price:>22} {line.per_million:14.2f} {share:6.1%}")
    out += ["", "prices assumed (on-demand, us-east-1, no free tier):"]
    out += [f"  {p.unit}: {p}" for p in PRICES.values()]
    out += ["  DynamoDB stream reads by Lambda: free", "", f"per 1M orders: ${total:.2f}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--payment-latency-ms", type=float, default=DEFAULT_PAYMENT_LATENCY_MS)
    parser.add_argument(
        "--charge-concurrency",
        type=int,
        default=topology.QUEUE_SOURCES[[s.queue for s in topology.QUEUE_SOURCES].index("payments")].batch_size,
        help="charges one payments invocation runs at once (a batch in parallel: its batch size; 1: one by one)",
    )
    args = parser.parse_args(argv)
    figures, source = load_figures()
    items = lines(figures, args.payment_latency_ms, args.charge_concurrency)
    print(report(items, source, args.payment_latency_ms, args.charge_concurrency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
