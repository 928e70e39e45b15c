"""`python -m devstack`: the whole LiveDrop stack on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import signal
import sys

if __name__ == "__main__":
    # Ctrl-C or SIGTERM while the modules below load: leave at once, quietly (main() installs the real
    # handlers). Before this line only the interpreter's own start-up can be interrupted.
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

import argparse  # noqa: E402 - after the handler above, so a Ctrl-C here is quiet too
import errno  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
from types import FrameType

from devstack import contention, faults  # noqa: E402
from devstack.persistence import PersistenceError  # noqa: E402

READY_LINE = "LiveDrop dev stack ready"
WATCH_SECONDS = 0.1  # how often the embedded AWS child is checked for life (a cheap waitpid)


class _Interrupts:
    """Ctrl-C and SIGTERM: a start-up is abandoned at once, a running stack stops, repeats are ignored."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.starting = True

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.starting:
            # Unwinds whatever start-up step is running; main() stops what was started.
            raise KeyboardInterrupt

    def unraisable(self, unraisable: sys.UnraisableHookArgs) -> None:
        """sys.unraisablehook: our KeyboardInterrupt landed where Python cannot raise (a weakref callback, a
        __del__) and prints it as "Exception ignored". Start-up then runs on; the loop in main() sees
        `stopping` and stops, so there is nothing to tell the user."""
        if unraisable.exc_type is KeyboardInterrupt and self.stopping.is_set():
            return
        sys.__unraisablehook__(unraisable)


def main(argv: list[str] | None = None) -> int:
    interrupts = _Interrupts()
    signal.signal(signal.SIGINT, interrupts)
    signal.signal(signal.SIGTERM, interrupts)
    sys.unraisablehook = interrupts.unraisable
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000, help="REST gateway and web page (default 8000)")
    parser.add_argument("--ws-port", type=int, default=8001, help="WebSocket gateway (default 8001)")
    parser.add_argument("--no-demo", action="store_true", help="start with empty tables")
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="keep the embedded AWS's data in DIR across restarts (saved on a clean stop, restored at start)",
    )
    parser.add_argument("--faults", metavar="SPEC", help=faults.CLI_HELP)
    parser.add_argument(
        "--timeout-scale",
        metavar="F",
        type=_positive_float,
        default=1.0,
        help="multiply every function's timeout and every queue's visibility timeout by F (default 1)",
    )
    parser.add_argument("--contention", metavar="SPEC", help=contention.CLI_HELP)
    parser.add_argument(
        "--payment-latency-ms",
        metavar="N",
        type=_latency_ms,
        default=300,
        help="how long the fake payment provider takes per charge, 0-60000 ms (default 300, as Stripe)",
    )
    args = parser.parse_args(argv)
    plan = faults.configure(args.faults, parser.error)
    contended = contention.configure(args.contention, parser.error)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    refused = _unusable_port(args.http_port, args.ws_port)
    if refused:
        print(refused, file=sys.stderr, flush=True)
        return 2

    stack = None
    try:
        from devstack.stack import DevStack

        stack = DevStack(
            http_port=args.http_port,
            ws_port=args.ws_port,
            data_dir=args.data,
            timeout_scale=args.timeout_scale,
            payment_latency_ms=args.payment_latency_ms,
        )
        stack.start()
        accounts = []
        if not args.no_demo:
            from devstack.demo import seed_demo

            accounts = seed_demo(stack)
        print(f"REST API:   {stack.rest_url}", flush=True)
        print(f"WebSocket:  {stack.ws_url}", flush=True)
        print(f"Web page:   {stack.web_url}", flush=True)
        print(f"Local AWS:  {stack.aws.endpoint} (DynamoDB), {stack.aws.messaging_endpoint} (the rest)", flush=True)
        if plan.active:
            print(f"Faults:     {plan.describe()}", flush=True)
        if args.timeout_scale != 1:
            print(f"Timeouts:   x{args.timeout_scale:g} (every function's timeout and queue visibility)", flush=True)
        print(f"Contention: {contended.describe()}; card charges take {args.payment_latency_ms} ms", flush=True)
        for account in accounts:
            print(f"Demo user:  {account['email']} / {account['password']} ({account['role']})", flush=True)
        print(READY_LINE, flush=True)
        interrupts.starting = False
        while not interrupts.stopping.wait(WATCH_SECONDS):
            failure = stack.failure()
            if failure:
                print(f"error: {failure}; stopping", file=sys.stderr, flush=True)
                logging.disable(logging.CRITICAL)  # what fails while stopping only buries that line
                return 1
        print("stopping…", flush=True)
    except KeyboardInterrupt:
        print("stopping…", flush=True)
    except PersistenceError as error:
        # A data folder that cannot be restored: its one line, no traceback (the folder is left as it is).
        print(f"devstack: {error}", file=sys.stderr, flush=True)
        return 1
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        # Taken between the check above and the bind: still one line, not a traceback.
        print(f"devstack: a port is already in use ({error.strerror}); {_PORT_HINT}", file=sys.stderr, flush=True)
        return 2
    finally:
        interrupts.stopping.set()
        if stack is not None:
            _quiet_from_now_on()
            stack.stop()
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _latency_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds") from None
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 60000")
    return value


_PORT_HINT = "choose others with `make dev HTTP_PORT=9000 WS_PORT=9001` (or --http-port/--ws-port)"


def _unusable_port(http_port: int, ws_port: int) -> str | None:
    """One line saying which asked-for port cannot be bound and how to choose another; None if all can."""
    if http_port and http_port == ws_port:
        return f"devstack: --http-port and --ws-port are both {http_port}; {_PORT_HINT}"
    for port, what, variable in ((http_port, "REST API", "HTTP_PORT"), (ws_port, "WebSocket", "WS_PORT")):
        if port == 0:
            continue
        problem = _bind_problem(port)
        if problem is None:
            continue
        flag = "--http-port" if variable == "HTTP_PORT" else "--ws-port"
        other = _free_port_after(port, {http_port, ws_port}) or "PORT"
        hint = f"choose another with `make dev {variable}={other}` (or {flag} {other})"
        return f"devstack: port {port} ({what}) {problem}; {hint}"
    return None


def _free_port_after(port: int, taken: set[int]) -> int | None:
    """A port just above `port` that can be bound now, to suggest (None if none of the next few can)."""
    return next((p for p in range(port + 1, min(port + 50, 65536)) if p not in taken and not _bind_problem(p)), None)


def _bind_problem(port: int) -> str | None:
    # SO_REUSEADDR as the gateways' servers use it: a port left in TIME_WAIT by a previous run is free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OverflowError:
            return "is not a port number"
        except OSError as error:
            return "is already in use" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
    return None


def _quiet_from_now_on() -> None:
    """While the stack stops, a thread caught mid-call by the teardown has nothing to tell the user."""
    logging.disable(logging.CRITICAL)
    threading.excepthook = lambda args: None


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Ctrl-C before main() installed its handler: nothing was started yet.
        sys.exit(0)
