"""Opt-in persistence of the embedded AWS across restarts of the dev stack (`python -m devstack --data DIR`).

Each embedded-AWS process persists the moto backends it serves itself, in a file of its own
(`DIR/<group>.state`), so the state can be split over several processes:

- `restore(data_dir, group)` runs in the process before it serves its first request: it loads the
  file, if there is one, into moto's backends and makes it safe to use again (below);
- `save(data_dir, group, lock)` runs at the process's clean shutdown, after it stopped accepting
  requests, holding the lock that serializes requests so the snapshot is of whole requests (it drops
  the one-run-only state below from the live backends first: the process is stopping); it writes a
  new file and renames it over the old one, so a crash mid-save keeps the previous state.

A process that is killed saves nothing: the next start restores the last clean stop. (The embedded
AWS stops on its own when its parent is gone, and saves then like on any clean stop.)

What is not restored as it was:
- DynamoDB stream records: the stream pumps start at the end of each stream, so records from before
  the restart would never be read; they are dropped, and sequence numbers keep growing. An event
  whose record was not delivered before the stop is lost, as with a Lambda event source mapping
  disabled for longer than the stream's retention; the sweeper repairs what depends on it (an order
  left unpaid expires and gives its stock back, a drop whose schedule was missed starts or ends).
- Stream shard iterators and SQS receipt handles are handed out to the consumers of one run only:
  they are forgotten, and messages that were received but not deleted are visible again at once
  (SQS's at-least-once delivery; every consumer is idempotent).
- EventBridge Scheduler schedules are kept as they were: a one-time schedule whose time passed while
  the stack was down fires as soon as the schedule pump sees it.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

FORMAT = 1
# moto service module -> the name of its backend dictionary. Only the services this process has
# actually served (their module is imported and holds backends) are saved.
SERVICES = {
    "dynamodb": "dynamodb_backends",
    "sqs": "sqs_backends",
    "sns": "sns_backends",
    "cognitoidp": "cognitoidp_backends",
    "scheduler": "scheduler_backends",
    "events": "events_backends",
    "iam": "iam_backends",
    "lambda_": "lambda_backends",
    # The stage's VAPID key (its secret) and SES's verified identity and sent e-mails.
    "secretsmanager": "secretsmanager_backends",
    "ses": "ses_backends",
}


class PersistenceError(RuntimeError):
    """A data folder this version cannot restore (another format or moto version)."""


def state_file(data_dir: str | os.PathLike[str], group: str) -> Path:
    """Where the process serving `group` keeps its state."""
    return Path(data_dir) / f"{group}.state"


def save(data_dir: str | os.PathLike[str], group: str, lock: Any = None) -> Path | None:
    """Write this process's moto backends to `data_dir`; returns the file, or None if nothing was served."""
    backends = _served_backends()
    path = state_file(data_dir, group)
    if not backends:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with lock if lock is not None else nullcontext(), temporary.open("wb") as out:
            # This runs as the process stops: what only this run could use is dropped before writing.
            for (module, _), accounts in backends.items():
                for regions in accounts.values():
                    for backend in regions.values():
                        _made_safe(module, backend)
            _StatePickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(
                {"format": FORMAT, "moto": _moto_version(), "backends": backends}
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # only left over if writing failed: the old state stays
    return path


def restore(data_dir: str | os.PathLike[str], group: str) -> bool:
    """Load the state `save` wrote for `group`, if any, into moto's backends; True if there was one."""
    path = state_file(data_dir, group)
    if not path.exists():
        return False
    with path.open("rb") as source:
        try:
            # The folder is the developer's own, written by save() above: not data from elsewhere.
            state = pickle.load(source)  # noqa: S301
        except Exception as error:
            raise PersistenceError(f"{path} cannot be read ({error}); move it away to start empty") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("moto") != _moto_version():
        raise PersistenceError(
            f"{path} was saved by another version of the dev stack (moto {state.get('moto')!r}, "
            f"this is {_moto_version()}); move it away to start empty"
        )
    for (module, attribute), accounts in state["backends"].items():
        registry = getattr(importlib.import_module(f"moto.{module}.models"), attribute)
        for account_id, regions in accounts.items():
            for region, backend in regions.items():
                _made_safe(module, backend)
                registry[account_id][region] = backend
    return True


# --- what is saved --------------------------------------------------------------------------------
def _served_backends() -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for module, attribute in SERVICES.items():
        loaded = sys.modules.get(f"moto.{module}.models")
        registry = getattr(loaded, attribute, None) if loaded is not None else None
        if registry is None:
            continue
        accounts = {account_id: dict(regions.items()) for account_id, regions in list(registry.items()) if len(regions)}
        if accounts and _has_state(module, accounts):
            found[(module, attribute)] = accounts
    return found


def _has_state(module: str, accounts: dict[str, dict[str, Any]]) -> bool:
    # IAM and Events create default resources on first touch; saving those alone would be noise.
    if module not in ("iam", "events"):
        return True
    return any(
        getattr(backend, "roles", None) or len(getattr(backend, "event_buses", {}) or {}) > 1
        for regions in accounts.values()
        for backend in regions.values()
    )


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


class _StatePickler(pickle.Pickler):
    """Pickles moto's objects, including the few members plain pickle refuses: locks (saved as
    new, unheld locks) and RSA keys (saved as PEM)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK_TYPES):
            return _new_lock, (type(obj) is _RLOCK,)
        from cryptography.hazmat.primitives.asymmetric import rsa

        if isinstance(obj, rsa.RSAPrivateKey):
            from cryptography.hazmat.primitives import serialization

            pem = obj.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            return _load_private_key, (pem,)
        if isinstance(obj, rsa.RSAPublicKey):
            from cryptography.hazmat.primitives import serialization

            pem = obj.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            return _load_public_key, (pem,)
        return NotImplemented


_RLOCK = type(threading.RLock())
_LOCK_TYPES = (type(threading.Lock()), _RLOCK)


def _new_lock(reentrant: bool) -> Any:
    return threading.RLock() if reentrant else threading.Lock()


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


def _load_public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_public_key(pem)


# --- what is made safe on restore -----------------------------------------------------------------
def _made_safe(module: str, backend: Any) -> None:
    if module == "dynamodb":
        for table in list(getattr(backend, "tables", {}).values()):
            shard = getattr(table, "stream_shard", None)
            if shard is not None and shard.items:
                # New records keep numbering after the dropped ones (a reader may remember the last one).
                shard.starting_sequence_number += len(shard.items)
                shard.items = []
    elif module == "sqs":
        for queue in list(getattr(backend, "queues", {}).values()):
            queue._messages_lock = threading.Condition()
            queue._pending_messages = set()
            queue.deleted_messages = set()
            for message in queue._messages:
                # In flight when the stack stopped: its receipt handle died with that run.
                message.receipt_handle = None
                message._old_receipt_handles = []
                message.visible_at = 0.0


# --- on the stack's side: a restored table from an older schema -------------------------------------
def add_missing_indexes(dynamodb: Any) -> list[str]:
    """Add the global secondary indexes the models define but a restored table lacks (a data folder
    saved before the schema gained them); returns `table/index` for each one added."""
    from chalicelib.models import ALL_MODELS, table_spec

    added = []
    for model in ALL_MODELS:
        create = table_spec(model)["create"]
        try:
            described = dynamodb.describe_table(TableName=create["TableName"])["Table"]
        except dynamodb.exceptions.ResourceNotFoundException:
            continue
        present = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
        for index in create.get("GlobalSecondaryIndexes", []):
            if index["IndexName"] in present:
                continue
            dynamodb.update_table(
                TableName=create["TableName"],
                AttributeDefinitions=create["AttributeDefinitions"],
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
            added.append(f"{create['TableName']}/{index['IndexName']}")
    return added
