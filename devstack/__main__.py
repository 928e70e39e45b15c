"""`python -m devstack`: the whole LiveDrop stack on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

READY_LINE = "LiveDrop dev stack ready"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--http-port", type=int, default=8000, help="REST gateway and web page (default 8000)")
    parser.add_argument("--ws-port", type=int, default=8001, help="WebSocket gateway (default 8001)")
    parser.add_argument("--no-demo", action="store_true", help="start with empty tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from devstack.stack import DevStack

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    stack = DevStack(http_port=args.http_port, ws_port=args.ws_port)
    try:
        stack.start()
        accounts = []
        if not args.no_demo:
            from devstack.demo import seed_demo

            accounts = seed_demo(stack)
        print(f"REST API:   {stack.rest_url}", flush=True)
        print(f"WebSocket:  {stack.ws_url}", flush=True)
        print(f"Web page:   {stack.web_url}", flush=True)
        print(f"Local AWS:  {stack.aws.endpoint} (DynamoDB), {stack.aws.messaging_endpoint} (the rest)", flush=True)
        for account in accounts:
            print(f"Demo user:  {account['email']} / {account['password']} ({account['role']})", flush=True)
        print(READY_LINE, flush=True)
        stopping.wait()
        print("stopping…", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
