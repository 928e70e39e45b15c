"""Multi-step writes are all-or-nothing from the user's side: a sign-up that fails at any step leaves
no half account (and a log-in repairs one that a double failure left), a drop is stored only with
its schedules. The failures are AWS error responses injected at the SDK's edge of the running app:
into the clients of every copy of the app the dev stack runs (each function imports its own)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.schema import models
from tests.support import iso, open_shop


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.text = ""


@contextlib.contextmanager
def aws_fails(
    clients: list[Any], event: str, when: Callable[[str], bool], code: str = "InternalServerError"
) -> Iterator[list[str]]:
    """While inside, calls named by `event` (`before-call.<service>.<Operation>`) whose request (its
    path and body as text) matches `when` get a 500 `code` from AWS instead of being sent; yields the
    requests refused."""
    refused: list[str] = []

    def answer(params: dict[str, Any], **_: Any) -> Any:
        request = f"{params.get('url_path', '')} {params.get('body', '')!r}"
        if not when(request):
            return None
        refused.append(request)
        return _Response(500), {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }

    unique = f"fail-{uuid.uuid4().hex}"
    for client in clients:
        client.meta.events.register_first(event, _adapt(answer), unique_id=unique)
    try:
        yield refused
    finally:
        for client in clients:
            client.meta.events.unregister(event, unique_id=unique)


def _adapt(answer: Callable[..., Any]) -> Callable[..., Any]:
    def handler(params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return answer(params or {}, **kwargs)

    return handler


@pytest.fixture(autouse=True)
def api_copy_loaded(api: Any) -> None:
    """The api function has imported its copy of the app (at its first invocation) before a test hooks
    that copy's clients."""
    assert api.get("/health").status_code in (200, 503)


def cognito() -> Any:
    return aws.client("cognito-idp")


def app_clients(stack: Any, service: str) -> list[Any]:
    """The `service` client of every copy of the app (the functions' and the stack's own)."""
    return [module.client(service) for module in stack.modules("chalicelib.core.aws")]


def dynamodb_clients(stack: Any) -> list[Any]:
    """The DynamoDB clients of every model and of the transactions, in every copy of the app."""
    clients: dict[int, Any] = {}
    for copy_models, copy_db in zip(
        stack.modules("chalicelib.schema.models"), stack.modules("chalicelib.schema.db"), strict=True
    ):
        for model in copy_models.ALL_MODELS:
            client = model._get_connection().connection.client
            clients[id(client)] = client
        client = copy_db.connection().client
        clients[id(client)] = client
    return list(clients.values())


def identity_exists(email: str) -> bool:
    try:
        cognito().admin_get_user(UserPoolId=get_settings().user_pool_id, Username=email)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "UserNotFoundException"
        return False
    return True


def credentials(body: dict[str, str]) -> dict[str, str]:
    return {"email": body["email"], "password": body["password"]}


def signup_body() -> dict[str, str]:
    return {"email": f"atomic-{uuid.uuid4().hex[:12]}@example.com", "password": "Passw0rd!atomic", "name": "Atomic"}


def is_users_put(email: str) -> Callable[[str], bool]:
    return lambda request: "Users" in request and email in request


@pytest.mark.parametrize(
    "step",
    ["cognito SignUp", "cognito AdminConfirmSignUp", "Users row"],
)
def test_a_sign_up_failing_at_any_step_leaves_no_account_and_can_be_repeated(api, stack, step) -> None:
    body = signup_body()
    if step == "Users row":
        failing = aws_fails(dynamodb_clients(stack), "before-call.dynamodb.PutItem", is_users_put(body["email"]))
    else:
        operation = step.split()[1]
        event = f"before-call.cognito-identity-provider.{operation}"
        failing = aws_fails(app_clients(stack, "cognito-idp"), event, lambda p: True)
    with failing as refused:
        response = api.post("/auth/signup", json=body)
    assert refused, "the step was reached and failed"
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json()["error"]["code"] == "try_again"
    assert not identity_exists(body["email"])
    assert api.post("/auth/login", json=credentials(body)).status_code == 401
    # Nothing is left in the way: the same sign-up simply works now.
    assert api.post("/auth/signup", json=body).status_code == 201
    token = api.post("/auth/login", json=credentials(body)).json()["id_token"]
    assert api.get("/me", token).json()["email"] == body["email"]


def test_a_half_account_left_by_a_double_failure_is_repaired_by_logging_in(api, stack) -> None:
    body = signup_body()
    cognitos = app_clients(stack, "cognito-idp")
    with (
        aws_fails(dynamodb_clients(stack), "before-call.dynamodb.PutItem", is_users_put(body["email"])),
        aws_fails(cognitos, "before-call.cognito-identity-provider.AdminDeleteUser", lambda p: True) as undo,
    ):
        assert api.post("/auth/signup", json=body).status_code == 503
    assert undo, "the undo was tried"
    assert identity_exists(body["email"])  # the half account the undo could not remove
    tokens = api.post("/auth/login", json=credentials(body))
    assert tokens.status_code == 200
    me = api.get("/me", tokens.json()["id_token"])
    assert me.status_code == 200 and me.json()["name"] == body["name"]


@pytest.fixture(scope="module")
def drop_shop(api, new_user_factory):
    owner = new_user_factory(name="Atomic owner", creator=True)
    creator_id, product = open_shop(api, owner, "Atomic tee", 1500)
    return owner, creator_id, product


def schedule_exists(name: str) -> bool:
    settings = get_settings()
    try:
        aws.client("scheduler").get_schedule(Name=name, GroupName=settings.scheduler_group)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return False
    return True


@pytest.mark.parametrize("step", ["start schedule", "end schedule", "drop transaction"])
def test_a_drop_is_stored_only_with_its_schedules(api, stack, drop_shop, step) -> None:
    owner, creator_id, product = drop_shop
    before = {d.drop_id for d in models.Drop.by_creator.query(creator_id)}
    created: list[str] = []

    def schedule_call(request: str) -> bool:
        name = request.split()[0].rsplit("/", 1)[-1]  # CreateSchedule is POST /schedules/{Name}
        created.append(name)
        return step.startswith(name.rsplit("-", 1)[-1])

    watch = aws_fails(app_clients(stack, "scheduler"), "before-call.scheduler.CreateSchedule", schedule_call)
    failing: Any = contextlib.nullcontext(["no other failure"])
    if step == "drop transaction":
        failing = aws_fails(
            dynamodb_clients(stack), "before-call.dynamodb.TransactWriteItems", lambda b: "Drops" in str(b)
        )
    body = {"product_id": product["product_id"], "start_time": iso(30), "end_time": iso(3600), "stock": 10}
    with watch, failing as refused:
        response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body)
    assert refused
    assert response.status_code == 503 and response.json()["error"]["code"] == "try_again"
    assert {d.drop_id for d in models.Drop.by_creator.query(creator_id)} == before
    assert created and not any(schedule_exists(name) for name in created)
    # And with nothing failing, the same request stores the drop and both schedules.
    made = api.post(f"/creators/{creator_id}/drops", owner.token, json=body)
    assert made.status_code == 201
    drop_id = made.json()["drop_id"]
    assert schedule_exists(f"{drop_id}-start") and schedule_exists(f"{drop_id}-end")
