"""`make scale`: the big-work stages at full size on a fresh dev stack, with the proof that they finish.

Three stages, each timed and counted:
- a waiting room of WAITING_ROOM people, placed at the start by slices on the lines queue;
- a draw of DRAW_ENTRIES entries: placed, the winners admitted, and closed at the drop's end;
- a first-come sell-out of SELL_OUT units on sharded stock, every order charged and settled.

For each stage it prints the completion time, the functions' invocations (from the dev stack's own
counters), timeouts, duplicate notices (pushes seen twice by a sample of sockets, inbox rows written
twice) and messages in the dead-letter queues; the last three must be 0. The dev stack is started with
enforced timeouts, at TIMEOUT_SCALE (--timeout-scale) for the waiting room and the draw and at
SELL_OUT_TIMEOUT_SCALE (--sell-out-timeout-scale) for the sell-out, and PAYMENT_LATENCY_MS charges; stages
of different timeout scales run on dev stacks of their own. Entrants are
written straight into the tables (as their joins would write them), so the figures are those of serving
the line, not of signing up users.

`python -m bench.scale` runs at full size; `python -m bench.scale --small` at a few hundred.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

WAITING_ROOM, DRAW_ENTRIES, DRAW_STOCK, SELL_OUT, SHARDS = 20_000, 20_000, 1_000, 5_000, 8
TIMEOUT_SCALE, PAYMENT_LATENCY_MS = 0.05, 300
# The sell-out runs under Lambda's own timeouts: it proves the charges keep up, 300 ms each, while the
# waiting room and the draw prove their slices fit a timeout cut to a twentieth.
SELL_OUT_TIMEOUT_SCALE = 1.0
SOCKETS = 50  # signed-up entrants with an open WebSocket: the sample whose pushes are checked for repeats
BUYERS = 32
PROVISIONED = 4  # warm environments per function before the stages start
RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Counters:
    """Invocations and timeouts of every function since the last `take` (the pools' own counters)."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.last = self._now()

    FIELDS = ("invocations", "timeouts", "busy_ms", "cpu_ms")

    def _now(self) -> dict[str, tuple[float, ...]]:
        return {
            name: tuple(float(s.get(field, 0)) for field in self.FIELDS)
            for name, s in ((name, pool.stats()) for name, pool in self.stack.pools.items())
        }

    def take(self) -> dict[str, Any]:
        now = self._now()
        zero = (0.0,) * len(self.FIELDS)
        delta = {n: [a - b for a, b in zip(v, self.last.get(n, zero), strict=True)] for n, v in now.items()}
        self.last = now
        ran = {n: d for n, d in sorted(delta.items()) if d[0]}
        return {
            "invocations": {n: int(d[0]) for n, d in ran.items()},
            "timeouts": int(sum(d[1] for d in delta.values())),
            "timeouts_by_function": {n: int(d[1]) for n, d in ran.items() if d[1]},
            # Wall and CPU time in the functions, per invocation: a function that waited for the
            # interpreter (the stack's functions share one process) shows wall time far above its CPU time.
            "ms_per_invocation": {n: {"wall": round(d[2] / d[0]), "cpu": round(d[3] / d[0])} for n, d in ran.items()},
        }


def dlq_messages() -> int:
    """Messages in every dead-letter queue (visible and in flight)."""
    from chalicelib.core import aws
    from chalicelib.core.config import get_settings
    from chalicelib.schema import topology

    sqs, total = aws.client("sqs"), 0
    for spec in topology.QUEUES:
        url = get_settings().queue_url(spec.dlq_name)
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        total += sum(int(attributes.get(name, 0)) for name in names)
    return total


def say(text: str) -> None:
    """Progress on stderr (stdout carries the report)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def wait_for(done: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {timeout:.0f} s")
        time.sleep(every)


def seed_line(drop_id: str, users: list[str], at_ms: int) -> None:
    """Early entries for `users`, as their joins would have written them, and the line's count of them."""
    from chalicelib.domain import lines
    from chalicelib.schema.models import Admission, Drop, Line

    drop = Drop.get(drop_id, consistent_read=True)
    with Admission.batch_write() as batch:
        for user in users:
            batch.save(lines.early_entry(drop, user, at_ms))
    Line(drop_id=drop_id).update(actions=[Line.early_count.add(len(users)), Line.active.remove()])


def inbox_repeats(drop_id: str) -> tuple[Counter[str], int]:
    """The drop's inbox rows by type, and how many (user, type) pairs have more than one row."""
    from chalicelib.schema.models import Notification

    rows = Counter((row.user_id, row.event_type) for row in Notification.scan(Notification.drop_id == drop_id))
    return Counter(kind for _, kind in rows.elements()), sum(n - 1 for n in rows.values() if n > 1)


def push_repeats(arrivals: list[list[tuple[float, dict[str, Any]]]]) -> int:
    """Frames a socket received more than once (the same event id)."""
    return sum(len(frames) - len({f.get("event_id") for _, f in frames}) for frames in arrivals)


class Scale:
    def __init__(self, stack: Any, sizes: dict[str, int]) -> None:
        from chalicelib.schema.topology import Fn
        from devstack.pollers import PeriodicPump
        from tests.support import Api, open_shop, sign_up_user

        self.stack, self.sizes, self.api = stack, sizes, Api(stack.rest_url)
        self.counters = Counters(stack)
        owner = sign_up_user(self.api, "Maker", creator=True)
        self.shop = (owner, *open_shop(self.api, owner, "Scale", 1000))
        self.fans = [sign_up_user(self.api) for _ in range(min(sizes["sockets"], sizes["waiting_room"]))]
        # Provisioned concurrency, as for a drop known in advance: the stage's first bursts find warm
        # environments (devstack.environments.FunctionPool.provision).
        for pool in stack.pools.values():
            pool.provision(PROVISIONED)
        # The stages' lines start ten minutes ahead and the bench ticks them itself on their drop's clock
        # (serving.advance). The stack's own tick would find no started line, and runs at most once at a
        # time in AWS (reserved concurrency 1): it is stopped rather than run beside the bench's.
        for pump in stack.pumps:
            if isinstance(pump, PeriodicPump) and pump.function_name == Fn.ADMISSIONS:
                pump.stop()

    def _drop(self, mode: str, start: float, stock: int, **extra: Any) -> tuple[str, int]:
        from chalicelib.core.validation import parse_time
        from tests.support import sale_drop

        drop = sale_drop(self.api, self.shop, mode, start, stock, **extra)
        return drop["drop_id"], parse_time("start_time", drop["start_time"])

    def _finish(self, began: float, **figures: Any) -> dict[str, Any]:
        return {"seconds": round(time.monotonic() - began, 2), **self.counters.take(), **figures, "dlq": dlq_messages()}

    def waiting_room(self) -> dict[str, Any]:
        from bench.crowd import Crowd
        from chalicelib.delivery import serving
        from chalicelib.schema.models import Line

        size = self.sizes["waiting_room"]
        drop_id, start = self._drop("queue", 600, 100)
        fans = [fan.user_id for fan in self.fans]
        seed_line(drop_id, fans + [f"u_{uuid.uuid4().hex}" for _ in range(size - len(fans))], start - 1000)
        say(f"{size} entries written; opening {len(fans)} sockets")
        with Crowd(self.stack.ws_url, [fan.token for fan in self.fans], "queue_position") as crowd:
            self.counters.take()
            began = time.monotonic()
            serving.advance(drop_id, start)
            wait_for(lambda: bool(Line.get(drop_id, consistent_read=True).placed), 1800, "placing the waiting room")
            figures = self._finish(began, people=size)
            figures["duplicate_notices"] = push_repeats(crowd.first_per_socket(60))
        return figures

    def draw(self) -> dict[str, Any]:
        from chalicelib.core.config import get_settings
        from chalicelib.delivery import serving
        from chalicelib.schema.models import Line

        size, stock = self.sizes["draw_entries"], self.sizes["draw_stock"]
        drop_id, start = self._drop("draw", 600, stock, purchase_window_seconds=60)
        seed_line(drop_id, [f"u_{uuid.uuid4().hex}" for _ in range(size)], start - 1000)
        self.counters.take()
        began = time.monotonic()
        serving.advance(drop_id, start)
        wait_for(lambda: bool(Line.get(drop_id, consistent_read=True).placed), 1800, "placing the draw")
        say("draw placed; admitting the winners")
        # The tick, at the admissions function's pace: a step within its deadline, then a pause (run back
        # to back, its bursts of admissions left the stack's other functions no interpreter time).
        every = get_settings().admission_tick_seconds
        while int(Line.get(drop_id, consistent_read=True).serving) < min(stock, size):
            serving.advance(drop_id, start + 1, deadline=time.monotonic() + every * 5)
            time.sleep(every)
        say("winners admitted; closing the draw")
        end = start + 3_600_000
        serving.advance(drop_id, end)  # the drop's end: the losers are told, in slices

        def closed() -> bool:
            return int(Line.get(drop_id, consistent_read=True).closed_upto or 0) >= size

        wait_for(closed, 1800, "closing the draw")
        told, repeats = inbox_repeats(drop_id)
        return self._finish(began, entries=size, inbox=dict(told), duplicate_notices=repeats)

    def sell_out(self) -> dict[str, Any]:
        from bench.load import rush
        from chalicelib.core.statuses import OrderStatus
        from chalicelib.schema.models import Order
        from tests.support import sign_up_user

        units = self.sizes["sell_out"]
        drop_id, start = self._drop("first_come", 2, units, stock_shards=min(SHARDS, units))
        tokens = [sign_up_user(self.api).token for _ in range(min(BUYERS, units))]
        say(f"{len(tokens)} buyers signed up")
        while time.time() * 1000 < start:
            time.sleep(0.05)
        self.counters.take()
        began = time.monotonic()
        placed = rush(self.stack.rest_url, drop_id, tokens, units)
        rushed = time.monotonic()

        def statuses() -> Counter[str]:
            # The index holds keys only: the statuses are read from the orders themselves.
            keys = [o.order_id for o in Order.by_drop.query(drop_id)]
            return Counter(str(o.status) for o in Order.batch_get(keys, attributes_to_get=["order_id", "status"]))

        def settled() -> bool:
            found = statuses()
            return sum(found.values()) >= placed["statuses"].get("201", 0) and not found[OrderStatus.PENDING_PAYMENT]

        wait_for(settled, 1800, "charging the sell-out", every=1.0)
        # How far the back office trails the front door: from the last order accepted to every one settled.
        behind = round(time.monotonic() - rushed, 2)
        orders = dict(statuses())
        figures = {"orders": orders, "duplicate_notices": 0, "placing": placed, "settled_after": behind}
        return self._finish(began, units=units, **figures)


STAGES = ("waiting_room", "draw", "sell_out")


@contextlib.contextmanager
def stage_stack(timeout_scale: float, payment_latency_ms: int = PAYMENT_LATENCY_MS) -> Iterator[Any]:
    """A fresh dev stack for stages, with these timeouts and card charges, stopped after the block; what the
    block prints to stdout is held back (Powertools' EMF lines are not measured here)."""
    from devstack.stack import DevStack

    stack = DevStack(
        http_port=0, ws_port=0, stage="bench", timeout_scale=timeout_scale, payment_latency_ms=payment_latency_ms
    )
    stack.start()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield stack
    finally:
        stack.stop()


def run(
    sizes: dict[str, int],
    results_dir: Path | str = RESULTS_DIR,
    timeout_scale: float = TIMEOUT_SCALE,
    only: tuple[str, ...] = STAGES,
    sell_out_timeout_scale: float = SELL_OUT_TIMEOUT_SCALE,
) -> dict[str, Any]:
    """Every stage, each group of stages with the same timeout scale on a fresh dev stack of its own;
    returns the figures and writes scale.json."""
    # One buyer places many orders in the sell-out: this measures settling, not the per-user limit.
    os.environ.setdefault("LIVEDROP_ORDER_RATE_LIMIT", "1000000")
    scales = {name: sell_out_timeout_scale if name == "sell_out" else timeout_scale for name in only}
    stages: dict[str, Any] = {}
    for scale_of_group in dict.fromkeys(scales.values()):
        with stage_stack(scale_of_group) as stack:
            say(f"dev stack up (timeout scale {scale_of_group}); signing up users")
            scale = Scale(stack, sizes)
            for name in (n for n in only if scales[n] == scale_of_group):
                say(f"stage {name}")
                stages[name] = {"timeout_scale": scale_of_group, **getattr(scale, name)()}
                say(f"stage {name} done: {stages[name]}")
    result = {"benchmark": "scale", "sizes": sizes, "stack_options": {"payment_latency_ms": PAYMENT_LATENCY_MS}}
    result["stages"] = stages
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(result: dict[str, Any]) -> str:
    lines = [f"dev stack options: {result['stack_options']}"]
    columns = "stage | size | timeout scale | seconds | invocations | timeouts | duplicate notices | DLQ messages"
    lines.append(f"| {columns} |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for name, stage in result["stages"].items():
        size = result["sizes"]["draw_entries" if name == "draw" else name]
        calls = ", ".join(f"{fn} {n}" for fn, n in stage["invocations"].items())
        lines.append(
            f"| {name} | {size} | {stage['timeout_scale']} | {stage['seconds']} | {calls} | {stage['timeouts']} "
            f"| {stage['duplicate_notices']} | {stage['dlq']} |"
        )
    return "\n".join(lines)


FULL = {
    "waiting_room": WAITING_ROOM,
    "draw_entries": DRAW_ENTRIES,
    "draw_stock": DRAW_STOCK,
    "sell_out": SELL_OUT,
    "sockets": SOCKETS,
}
# Still more than one slice (line_slices.SLICE_ENTRIES) of a line, and a draw with more losers than winners.
SMALL = {"waiting_room": 200, "draw_entries": 200, "draw_stock": 20, "sell_out": 60, "sockets": 10}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a few hundred per stage instead of the full sizes")
    parser.add_argument("--results", default=str(RESULTS_DIR), help="where scale.json goes (default bench/results)")
    parser.add_argument(
        "--timeout-scale",
        type=float,
        default=TIMEOUT_SCALE,
        help=f"every function's timeout times this in the waiting room and the draw (default {TIMEOUT_SCALE})",
    )
    parser.add_argument(
        "--sell-out-timeout-scale",
        type=float,
        default=SELL_OUT_TIMEOUT_SCALE,
        help=f"every function's timeout times this in the sell-out (default {SELL_OUT_TIMEOUT_SCALE})",
    )
    parser.add_argument("--stage", action="append", choices=STAGES, help="run only this stage (repeatable)")
    args = parser.parse_args(argv)
    sizes = SMALL if args.small else FULL
    result = run(sizes, args.results, args.timeout_scale, tuple(args.stage or STAGES), args.sell_out_timeout_scale)
    print(report(result))
    clean = all(s["timeouts"] == 0 and s["duplicate_notices"] == 0 and s["dlq"] == 0 for s in result["stages"].values())
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
