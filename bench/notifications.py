"""Notification latency on a fresh dev stack, the load measured against the backend's own raw rate in
the same run:

- order -> `order_confirmed` pushed to the buyer, right after a rush of RUSH_ORDERS orders (32 buyers as
  fast as they are answered: the accepted rate), while orders arrive for 30 s at half that accepted rate
  (target p99 < 2 s), and after another such rush at half the raw TransactWriteItems/s (32 clients) of
  the same embedded backend (target p99 < 5 s): the back office settles as fast as the front door;
- `drop_started` to 1,000 connected followers, from the drop's start time, while another drop's
  orders settle (target p99 < 2 s).

Orders come from a worker process and the sockets live in another (bench.crowd), so the load client
does not compete with the stack for its interpreter. `python -m bench.notifications` writes
bench/results/notifications.json.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from typing import Any

from bench.profile import profiled
from chalicelib.core.config import get_settings
from chalicelib.schema import topology
from chalicelib.schema.messages import EventType
from devstack.identity import aws_client
from devstack.stack import DevStack

FOLLOWERS = 1000
BUYERS = 50
ORDER_SECONDS = 30.0
RATE_OF_RAW = 0.5
RATE_OF_ACCEPTED = 0.5
RUSH_ORDERS, RUSH_BUYERS = 1500, 32
TARGET_AFTER_RUSH_MS = {"accepted": 2000, "raw": 5000}
RAW_CLIENTS = 32
START_AHEAD_S = 8.0
TARGET_P99_MS = 2000


def _percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "count": len(ordered),
        "p50_ms": round(pick(0.50) * 1000, 1),
        "p99_ms": round(pick(0.99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


def _live_drop(api: Any, owner_token: str, buyers: int) -> tuple[str, list[str]]:
    """A live drop of the owner's new shop, with stock for any run, and the tokens of `buyers` new fans."""
    from tests.e2e.support import make_drop, make_fans, make_shop

    creator_id, product_id = make_shop(api, owner_token)
    drop = make_drop(api, owner_token, creator_id, product_id, start=-1, stock=1_000_000)
    return str(drop["drop_id"]), [fan.token for fan in make_fans(buyers)]


def _order_confirmed(stack: DevStack, api: Any, owner_token: str, rate: float) -> dict[str, Any]:
    from bench.crowd import Crowd
    from bench.load import paced_orders

    drop_id, tokens = _live_drop(api, owner_token, BUYERS)
    with Crowd(stack.ws_url, tokens, EventType.ORDER_CONFIRMED.value) as crowd:
        began = time.time()
        with profiled("order-confirmed", seconds=ORDER_SECONDS + 30) as profile:
            placed = paced_orders(stack.rest_url, drop_id, tokens, rate, ORDER_SECONDS)
            offered_s = time.time() - began
            sent = {order_id: at for order_id, at, status in placed if status == 201 and order_id}
            arrivals = crowd.until_ids("order_id", set(sent), timeout=300)
    arrived: dict[str, float] = {}
    for sink in arrivals:
        for at, data in sink:
            arrived.setdefault(str(data.get("order_id")), at)
    delays = [arrived[oid] - t0 for oid, t0 in sent.items() if oid in arrived]
    statuses = [status for _, _, status in placed]
    return {
        "orders_offered": len(placed),
        "offered_rate_per_s": round(len(placed) / max(offered_s, 0.001), 1),
        "target_rate_per_s": round(rate, 1),
        "orders_created": statuses.count(201),
        "other_statuses": sorted({s for s in statuses if s != 201}),
        "confirmed_frames": len(delays),
        "delay_from_post": _percentiles(delays),
        "profile": profile,
    }


def _rush(stack: DevStack, api: Any, owner_token: str) -> dict[str, Any]:
    """RUSH_ORDERS orders from RUSH_BUYERS closed-loop buyers on a drop of its own: the accepted rate."""
    from bench.load import rush

    drop_id, tokens = _live_drop(api, owner_token, RUSH_BUYERS)
    return rush(stack.rest_url, drop_id, tokens, RUSH_ORDERS)


def _drop_started(stack: DevStack, api: Any, owner_token: str, busy_owner_token: str) -> dict[str, Any]:
    from bench.crowd import Crowd
    from bench.load import rush
    from tests.e2e.support import follow_all, make_drop, make_fans, make_shop, parse_iso

    began = time.time()
    creator_id, product_id = make_shop(api, owner_token)
    fans = make_fans(FOLLOWERS)
    follow_all(fans, creator_id)
    # Another drop whose orders settle while this one starts.
    busy_drop_id, busy_tokens = _live_drop(api, busy_owner_token, RUSH_BUYERS)
    settling: dict[str, Any] = {}
    with Crowd(stack.ws_url, [fan.token for fan in fans], EventType.DROP_STARTED.value) as crowd:
        setup_s = time.time() - began
        drop = make_drop(api, owner_token, creator_id, product_id, start=START_AHEAD_S)
        start = parse_iso(drop["start_time"])
        # The other drop's rush runs from a few seconds before the start second to after it.
        time.sleep(max(0.0, start - 4.0 - time.time()))
        rusher = threading.Thread(
            target=lambda: settling.update(rush(stack.rest_url, busy_drop_id, busy_tokens, 600)),
            daemon=True,
        )
        rusher.start()
        arrivals = crowd.first_per_socket(timeout=180)
        rusher.join(300)
    firsts = [[at for at, data in sink if data.get("drop_id") == drop["drop_id"]] for sink in arrivals]
    delays = [times[0] - start for times in firsts if times]
    return {
        "followers": FOLLOWERS,
        "setup_s": round(setup_s, 1),
        "reached": sum(1 for times in firsts if times),
        "duplicates": sum(len(times) - 1 for times in firsts if len(times) > 1),
        "delay_from_start_time": _percentiles(delays),
        "meanwhile_other_drop_orders": {k: settling.get(k) for k in ("orders", "orders_per_s", "p99_ms")},
    }


def _drain(stack: DevStack, timeout: float = 600) -> float:
    """Wait until the pipeline's queues are empty (bounded), so one scenario's backlog is not the next one's
    load; returns the seconds it took."""
    sqs = aws_client("sqs", stack.aws.messaging_endpoint)
    names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    began = time.time()
    while time.time() - began < timeout:
        left = 0
        for spec in topology.QUEUES:
            attributes = sqs.get_queue_attributes(QueueUrl=get_settings().queue_url(spec.name), AttributeNames=names)
            left += sum(int(attributes["Attributes"].get(name, 0)) for name in names)
        if not left:
            break
        time.sleep(1.0)
    return round(time.time() - began, 1)


def run(results_dir: str) -> dict[str, Any]:
    """Start a fresh dev stack, measure both scenarios and write notifications.json into `results_dir`."""
    from bench.orders import _raw_transactions

    os.environ["LIVEDROP_TABLE_PREFIX"] = "livedrop-bench-"
    stack = DevStack(http_port=0, ws_port=0, stage="bench").start()
    try:
        from tests.support import Api, sign_up_user

        api = Api(stack.rest_url)
        raw = _raw_transactions(stack.aws.endpoint, RAW_CLIENTS)
        rate = max(1.0, raw["tx_per_s"] * RATE_OF_RAW)
        results: dict[str, Any] = {
            "benchmark": "notifications",
            "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
            "raw": raw,
        }

        # Right after a rush, at half the rate it was accepted at; then, after another, at half the raw rate
        # (each rush and each paced stream on a shop of its own).
        def shop() -> str:
            return str(sign_up_user(api, name="Bench shop").token)

        rushed = _rush(stack, api, shop())
        accepted_rate = max(1.0, rushed["orders_per_s"] * RATE_OF_ACCEPTED)
        results["after_rush_accepted"] = {"rush": rushed, **_order_confirmed(stack, api, shop(), accepted_rate)}
        results["after_rush_accepted"]["backlog_drained_in_s"] = _drain(stack)
        rushed = _rush(stack, api, shop())
        results["order_confirmed"] = {"rush": rushed, **_order_confirmed(stack, api, shop(), rate)}
        results["order_confirmed"]["backlog_drained_in_s"] = _drain(stack)
        star, busy = sign_up_user(api, name="Bench star"), sign_up_user(api, name="Bench busy shop")
        results["drop_started"] = _drop_started(stack, api, star.token, busy.token)
        api.close()
    finally:
        stack.stop()
    confirmed, after = results["order_confirmed"], results["after_rush_accepted"]
    started = results["drop_started"]
    results["summary"] = {
        f"a {RUSH_ORDERS}-order rush, {RUSH_BUYERS} buyers: accepted orders/s": after["rush"]["orders_per_s"],
        f"right after it, order -> order_confirmed at {after['target_rate_per_s']} orders/s for {ORDER_SECONDS:.0f} s "
        f"(half the accepted rate): p50 / p99 ms (target p99 < {TARGET_AFTER_RUSH_MS['accepted']})": (
            f"{after['delay_from_post'].get('p50_ms')} / {after['delay_from_post'].get('p99_ms')}"
            f" ({after['confirmed_frames']} of {after['orders_created']} confirmed)"
        ),
        f"right after another rush, order -> order_confirmed at {confirmed['target_rate_per_s']} orders/s for "
        f"{ORDER_SECONDS:.0f} s (half of raw {raw['tx_per_s']}): p50 / p99 ms "
        f"(target p99 < {TARGET_AFTER_RUSH_MS['raw']})": (
            f"{confirmed['delay_from_post'].get('p50_ms')} / {confirmed['delay_from_post'].get('p99_ms')}"
            f" ({confirmed['confirmed_frames']} of {confirmed['orders_created']} confirmed)"
        ),
        f"drop_started to {started['followers']} followers while another drop's orders settle: "
        "p50 / p99 ms from start time (target p99 < 2000)": (
            f"{started['delay_from_start_time'].get('p50_ms')} / {started['delay_from_start_time'].get('p99_ms')}"
            f" ({started['reached']} reached, {started['duplicates']} duplicates)"
        ),
    }
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "notifications.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    print(json.dumps(run(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")), indent=2))
