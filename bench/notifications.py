"""Notification latency on a fresh dev stack: drop_started to 1,000 online followers, and
order -> order_confirmed for buyers while orders arrive at about 100/s.

`python -m bench.notifications` prints the figures and writes bench/results/notifications.json.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devstack.stack import DevStack

FOLLOWERS = 1000
BUYERS = 50
ORDER_RATE = 100.0  # orders per second offered
ORDER_SECONDS = 5.0
START_AHEAD_S = 3.0


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


def _drop_started(stack: DevStack, api: Any, owner_token: str) -> dict[str, Any]:
    from tests.e2e.support import Crowd, follow_all, make_drop, make_fans, make_shop, parse_iso

    began = time.time()
    creator_id, product_id = make_shop(api, owner_token)
    fans = make_fans(FOLLOWERS)
    follow_all(fans, creator_id)
    crowd = Crowd(stack.ws_url)
    try:
        crowd.connect([fan.token for fan in fans])
        setup_s = time.time() - began
        drop = make_drop(api, owner_token, creator_id, product_id, start=START_AHEAD_S)
        start = parse_iso(drop["start_time"])
        everyone = range(len(fans))
        crowd.wait_for(lambda: all(crowd.of_type(i, "drop_started") for i in everyone), timeout=120)
        time.sleep(1.0)
        delays = [r.at - start for i in everyone for r in crowd.of_type(i, "drop_started")[:1]]
        counts = [len(crowd.of_type(i, "drop_started")) for i in everyone]
    finally:
        crowd.close()
    return {
        "followers": FOLLOWERS,
        "setup_s": round(setup_s, 1),
        "reached": sum(1 for c in counts if c >= 1),
        "duplicates": sum(c - 1 for c in counts if c > 1),
        "delay_from_start_time": _percentiles(delays),
    }


def _order_confirmed(stack: DevStack, api: Any, owner_token: str) -> dict[str, Any]:
    from tests.e2e.support import Crowd, make_drop, make_fans, make_shop

    creator_id, product_id = make_shop(api, owner_token)
    drop = make_drop(api, owner_token, creator_id, product_id, start=-1, stock=100_000)
    buyers = make_fans(BUYERS)
    crowd = Crowd(stack.ws_url)
    sent: dict[str, float] = {}
    statuses: list[int] = []
    lock = threading.Lock()
    try:
        crowd.connect([b.token for b in buyers])

        def place(index: int) -> None:
            buyer = buyers[index % len(buyers)]
            body = {"drop_id": drop["drop_id"], "quantity": 1, "payment_token": "tok_visa"}
            t0 = time.time()
            response = api.post("/orders", buyer.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 201:
                    sent[response.json()["order_id"]] = t0

        total = int(ORDER_RATE * ORDER_SECONDS)
        began = time.time()
        with ThreadPoolExecutor(max_workers=32) as pool:
            for i in range(total):
                # Open-loop pacing: the offered rate does not slow down when the service does.
                time.sleep(max(0.0, began + i / ORDER_RATE - time.time()))
                pool.submit(place, i)
        offered_s = time.time() - began

        def confirmed() -> dict[str, float]:
            got: dict[str, float] = {}
            for i in range(len(buyers)):
                for r in crowd.of_type(i, "order_confirmed"):
                    got.setdefault(r.frame["data"]["order_id"], r.at)
            return got

        crowd.wait_for(lambda: set(sent) <= set(confirmed()), timeout=180)
        arrived = confirmed()
    finally:
        crowd.close()
    delays = [arrived[oid] - t0 for oid, t0 in sent.items() if oid in arrived]
    return {
        "orders_offered": total,
        "offered_rate_per_s": round(total / offered_s, 1),
        "orders_created": statuses.count(201),
        "other_statuses": sorted(set(s for s in statuses if s != 201)),
        "confirmed_frames": len(delays),
        "delay_from_post": _percentiles(delays),
    }


def run(results_dir: str) -> dict[str, Any]:
    """Start a fresh dev stack, measure both scenarios and write notifications.json into `results_dir`."""
    os.environ["LIVEDROP_TABLE_PREFIX"] = "livedrop-bench-"
    stack = DevStack(http_port=0, ws_port=0, stage="bench").start()
    try:
        from tests.support import Api, sign_up_user

        api = Api(stack.rest_url)
        owner = sign_up_user(api, name="Bench star")
        results = {
            "benchmark": "notifications",
            "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
            "drop_started": _drop_started(stack, api, owner.token),
        }
        second_owner = sign_up_user(api, name="Bench shop")
        results["order_confirmed"] = _order_confirmed(stack, api, second_owner.token)
        api.close()
    finally:
        stack.stop()
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "notifications.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    print(json.dumps(run(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")), indent=2))
