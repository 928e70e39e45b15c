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
devstack.moto_dynamodb (rollback journal instead of whole-table copies, the contention model),
devstack.moto_messaging (long polls wait outside the serialization lock), periodic
`reset_model_data` in `SerializedApp` (bounded memory) and devstack.moto_server's
`KeepAliveRequestHandler` (HTTP/1.1 keep-alive, no access log).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from devstack import contention, heap, moto_dynamodb, moto_messaging
from devstack.contention import ItemGate
from devstack.identity import CREDENTIALS_ENV
from devstack.moto_dynamodb import held
from devstack.moto_server import SentEmails, cache_action_names, request_handler_class, shut_down_when_orphaned

# moto registers every model instance it ever creates (moto.core.model_instances) for its dashboard;
# forgetting them every so many requests keeps a long run's memory flat.
MODEL_RESET_EVERY = 1000


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
        held.arrived = time.monotonic()
        with self._lock:
            held.lock = self._lock
            try:
                return list(self._app(environ, start_response))
            finally:
                held.lock = None
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

    class Dispatcher(DomainDispatcherApplication):
        """moto's dispatcher, remembering which backend serves each host name: moto matches the name
        against every service's URL patterns on each request (6% of the messaging process's CPU)."""

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self._backend_of: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backend_of:
                if len(self._backend_of) >= 256:  # host names come from requests: keep the memory bounded
                    self._backend_of.clear()
                self._backend_of[host] = super().get_backend_for_host(host)
            return self._backend_of[host]

    # Inside the lock: a token's first request and its repeat never overlap.
    dispatcher: Any = TransactionRules(Dispatcher(create_app))
    if group is None or _serves(group, "s3"):
        # S3 refuses a browser upload its policy does not allow; moto would store it.
        dispatcher = PostPolicyCheck(dispatcher)
    if group is None or _serves(group, "ses"):
        return SerializedApp(SentEmails(dispatcher))
    return SerializedApp(dispatcher)


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
    moto_dynamodb.install(ItemGate(contention.parse(os.environ.get(contention.ENV_VAR))))
    moto_messaging.install()
    cache_action_names()
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
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=request_handler_class())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    shut_down_when_orphaned(server)
    try:
        print(f"LISTENING {server.server_address[1]}", flush=True)
    except BrokenPipeError:
        # The parent stopped waiting for us (Ctrl-C during start-up): nobody will use this process.
        # Leave at once: a normal exit would flush stdout into the closed pipe again and print a traceback.
        server.server_close()
        os._exit(0)
    # The parent stops reading stdout after LISTENING: anything printed later must not fill that pipe.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    heap.settle_survivors()  # full collections scan what came since the last, not every item stored
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    if data_dir:
        from devstack import persistence

        # Requests in flight finish first, and none runs after (kept-alive connections may still send
        # some): the lock stays held until the process exits, so the snapshot is the final state.
        # (The serialization lock itself: with faults on, `app` is the fault injector around it.)
        serialized._lock.acquire()
        persistence.save(data_dir, state_name, generation or persistence.new_generation(), names)


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
