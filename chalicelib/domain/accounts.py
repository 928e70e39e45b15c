"""Sign-up and log-in through Cognito, the Users rows beside it, and creator profiles."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import jwt
from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.errors import (
    AlreadyCreatorError,
    CreatorNotFoundError,
    ForbiddenError,
    InvalidCredentialsError,
    InvalidRequestError,
    UserExistsError,
    UserNotFoundError,
)
from chalicelib.schema import responses
from chalicelib.schema.commands import Confirm, LogIn, NewCreator, Refresh, SignUp
from chalicelib.schema.db import Transaction, TransactionCancelledError, new_id, now_ms
from chalicelib.schema.models import Creator, User

log = logging.getLogger("livedrop.accounts")


def _cognito() -> Any:
    return aws.client("cognito-idp")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def sign_up(new: SignUp) -> dict[str, Any]:
    """Register a Cognito user (confirmed at once where the stage auto-confirms) and its Users row:
    both or neither (a failed step deletes the Cognito user again; log_in repairs what that misses)."""
    email, password, name = new.email, new.password, new.name
    settings = get_settings()
    try:
        result = _cognito().sign_up(
            ClientId=settings.user_pool_client_id,
            Username=email,
            Password=password,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": name}],
        )
    except ClientError as error:
        code = _code(error)
        if code == "UsernameExistsException":
            raise UserExistsError("an account with this email exists") from None
        if code in ("InvalidPasswordException", "InvalidParameterException"):
            raise InvalidRequestError(f"password: {error.response['Error'].get('Message', 'not accepted')}") from None
        raise
    user_id = result["UserSub"]
    try:
        if settings.auto_confirm:
            _cognito().admin_confirm_sign_up(UserPoolId=settings.user_pool_id, Username=email)
        User(user_id=user_id, email=email, name=name, created_at=now_ms()).save()
    except Exception:
        _undo_sign_up(email)
        raise
    return {"user_id": user_id, "email": email, "name": name}


def _undo_sign_up(email: str) -> None:
    """Delete the Cognito user of a sign-up that failed after Cognito accepted it, so the email is free
    again; if that fails too, the identity stays and log_in writes its missing Users row."""
    try:
        _cognito().admin_delete_user(UserPoolId=get_settings().user_pool_id, Username=email)
    except Exception:
        log.exception("could not undo the sign-up of a user whose Users row was not written")


def confirm(request: Confirm) -> None:
    """Confirm a sign-up with the code Cognito sent."""
    client_id = get_settings().user_pool_client_id
    try:
        _cognito().confirm_sign_up(ClientId=client_id, Username=request.email, ConfirmationCode=request.code)
    except ClientError as error:
        if _code(error) in ("CodeMismatchException", "ExpiredCodeException", "UserNotFoundException"):
            raise InvalidRequestError("code is wrong or expired") from None
        if _code(error) == "NotAuthorizedException":
            return  # already confirmed: confirming again changes nothing
        raise


def log_in(request: LogIn) -> dict[str, Any]:
    """Tokens for a correct email and password; InvalidCredentialsError otherwise."""
    auth = _initiate("USER_PASSWORD_AUTH", {"USERNAME": request.email, "PASSWORD": request.password})
    _ensure_user_row(auth["IdToken"], request.email)
    return {
        "id_token": auth["IdToken"],
        "access_token": auth["AccessToken"],
        "refresh_token": auth["RefreshToken"],
        "expires_in": auth["ExpiresIn"],
    }


def _ensure_user_row(id_token: str, email: str) -> None:
    """Re-create a Users row lost between Cognito's sign-up and our write (a crash in between)."""
    # The token came straight from Cognito over TLS: reading its subject needs no verification.
    user_id = str(jwt.decode(id_token, options={"verify_signature": False})["sub"])
    if User.count(user_id, limit=1):
        return
    settings = get_settings()
    cognito_user = _cognito().admin_get_user(UserPoolId=settings.user_pool_id, Username=email)
    attributes = {a["Name"]: a["Value"] for a in cognito_user.get("UserAttributes", [])}
    row = User(user_id=user_id, email=email, name=attributes.get("name", ""), created_at=now_ms())
    with contextlib.suppress(PutError):  # a concurrent log-in wrote it first
        row.save(User.user_id.does_not_exist())


def refresh(request: Refresh) -> dict[str, Any]:
    """New id and access tokens for a refresh token."""
    auth = _initiate("REFRESH_TOKEN_AUTH", {"REFRESH_TOKEN": request.refresh_token})
    return {"id_token": auth["IdToken"], "access_token": auth["AccessToken"], "expires_in": auth["ExpiresIn"]}


def _initiate(flow: str, parameters: dict[str, str]) -> dict[str, Any]:
    try:
        result = _cognito().initiate_auth(
            AuthFlow=flow, ClientId=get_settings().user_pool_client_id, AuthParameters=parameters
        )
    except ClientError as error:
        code = _code(error)
        if code in ("NotAuthorizedException", "UserNotFoundException", "InvalidParameterException"):
            raise InvalidCredentialsError("email or password is wrong") from None
        if code == "UserNotConfirmedException":
            raise ForbiddenError("confirm the account first") from None
        raise
    if "AuthenticationResult" not in result:
        raise InvalidCredentialsError("this account needs another sign-in step")
    return dict(result["AuthenticationResult"])


def get_user(user_id: str) -> User:
    """The Users row of a signed-in user."""
    try:
        return User.get(user_id)
    except DoesNotExist:
        raise UserNotFoundError("no such user") from None


def me(user_id: str) -> responses.Me:
    """GET /me."""
    user = get_user(user_id)
    return {"user_id": user.user_id, "email": user.email, "name": user.name, "creator_id": user.creator_id}


def creator_view(creator: Creator) -> responses.Creator:
    return {
        "creator_id": creator.creator_id,
        "name": creator.name,
        "profile": creator.profile,
        "follower_count": int(creator.follower_count),
    }


def search_key(text: str) -> str:
    """A name as GET /creators?query= matches it: case-folded, its runs of spaces made one."""
    return " ".join(text.casefold().split())


def become_creator(user_id: str, new: NewCreator) -> responses.Creator:
    """Create the caller's creator profile; one per user (AlreadyCreatorError)."""
    creator = Creator(
        creator_id=new_id("cr"),
        owner_user_id=user_id,
        name=new.name,
        profile=new.profile or "",
        follower_count=0,
        created_at=now_ms(),
        search_name=search_key(new.name),
    )
    tx = Transaction()
    tx.put("creator", creator, Creator.creator_id.does_not_exist())
    tx.update(
        "user",
        User(user_id=user_id),
        [User.creator_id.set(creator.creator_id)],
        User.user_id.exists() & User.creator_id.does_not_exist(),
    )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("user"):
            get_user(user_id)
            raise AlreadyCreatorError("you already have a creator profile") from None
        raise
    return creator_view(creator)


def get_creator(creator_id: str) -> Creator:
    """The creator, or CreatorNotFoundError."""
    try:
        return Creator.get(creator_id)
    except DoesNotExist:
        raise CreatorNotFoundError("no such creator") from None


def owned_creator(creator_id: str, user_id: str) -> Creator:
    """The creator if `user_id` owns it: CreatorNotFoundError if it does not exist, ForbiddenError if
    someone else owns it."""
    creator = get_creator(creator_id)
    if creator.owner_user_id != user_id:
        raise ForbiddenError("only the creator's owner may do this")
    return creator
