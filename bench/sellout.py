"""A sell-out whose card charges take 300 ms against the same sell-out with instant charges.

UNITS units of sharded stock, BUYERS closed-loop buyers (bench.scale's sell-out stage, at Lambda's own
timeouts, contention on), each on a fresh dev stack of its own: first with instant charges, then with
charges of LATENCY_MS. Each figure runs from the first order to the last one settled. The target (issue
#22): the slow charges settle within TARGET_S of the instant ones, so a payment provider's latency
costs a drop seconds, not minutes. `python -m bench.sellout` writes bench/results/sellout.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

UNITS, LATENCY_MS, TARGET_S = 600, 300, 10.0
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _sell_out(latency_ms: int) -> dict[str, Any]:
    from bench.scale import Scale, say, stage_stack

    with stage_stack(1.0, latency_ms) as stack:
        say(f"dev stack up, charges of {latency_ms} ms")
        sizes = {"waiting_room": 0, "draw_entries": 0, "draw_stock": 0, "sell_out": UNITS, "sockets": 0}
        figures = Scale(stack, sizes).sell_out()
    return {"payment_latency_ms": latency_ms, **figures}


def _accepted_all_confirmed(run: dict[str, Any]) -> bool:
    """Whether every order placed with a 201 is confirmed, and no other order is stored."""
    return bool(run["orders"] == {"confirmed": run["placing"]["statuses"].get("201", 0)})


def run(results_dir: Path | str = RESULTS_DIR) -> dict[str, Any]:
    """Both sell-outs; returns the figures and writes sellout.json into `results_dir`."""
    # One buyer places many orders: this measures settling, not the per-user limit.
    os.environ.setdefault("LIVEDROP_ORDER_RATE_LIMIT", "1000000")
    instant, slow = _sell_out(0), _sell_out(LATENCY_MS)
    difference = round(slow["seconds"] - instant["seconds"], 2)
    # Every order the front door accepted is settled; one it refused (a 503 under the rush's contention, which a
    # client retries) is counted apart: it was never an order.
    all_confirmed = all(_accepted_all_confirmed(run) for run in (instant, slow))
    refused = sum(n for run in (instant, slow) for status, n in run["placing"]["statuses"].items() if status != "201")
    result = {
        "benchmark": "sellout",
        "units": UNITS,
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "instant": instant,
        "slow": slow,
        "difference_s": difference,
        "target_s": TARGET_S,
        "summary": {
            f"{UNITS} units, instant charges: seconds to settle every order (accepted at orders/s)": (
                f"{instant['seconds']} ({instant['placing']['orders_per_s']}/s)"
            ),
            f"{UNITS} units, {LATENCY_MS} ms charges: seconds to settle every order (accepted at orders/s)": (
                f"{slow['seconds']} ({slow['placing']['orders_per_s']}/s)"
            ),
            f"{LATENCY_MS} ms charges minus instant, s (target <= {TARGET_S:g})": difference,
            "every accepted order confirmed, none left pending": all_confirmed,
            "orders refused for a retry (503), both runs": refused,
        },
    }
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sellout.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run()["summary"], indent=2))
