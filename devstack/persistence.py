"""Opt-in persistence of the embedded AWS across restarts of the dev stack (`python -m devstack --data DIR`).

Each embedded-AWS process persists the moto backends it serves itself, in a file of its own, and the
files of one stop are one snapshot: all of them are restored together, or none.

- A run is a generation (`new_generation()`, chosen by the parent at start). At its clean shutdown each
  process writes `DIR/<name>.<generation>.state` (to a temporary file, fsynced, then renamed), after it
  stopped accepting requests and holding the lock that serializes requests, so the snapshot is of whole
  requests (it drops the one-run-only state below from the live backends first: the process is stopping).
- The process that finds every name's file of its generation written renames `DIR/manifest.json`,
  naming the generation and its files, into place: that rename is what makes a snapshot current. A
  process killed before it saved leaves the generation incomplete, so the manifest keeps naming the
  last complete one and the files the others wrote are ignored (and removed after the next complete save).
- `restore(data_dir, name, names)` runs in each process before it serves its first request and loads
  the file the manifest names for it; `snapshot_files` is the same check, made by the parent before it
  starts the processes. A manifest naming a missing file, a file of another generation or name, a
  corrupt file or one of the wrong shape is refused with a one-line PersistenceError naming the file.
  (A folder saved before manifests, with `DIR/<name>.state` files, is restored when every file is there.)

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
import json
import os
import pickle
import sys
import threading
import time
from collections.abc import Iterable
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
    """A data folder this version cannot restore: its message is one line naming the file."""


MANIFEST = "manifest.json"


def new_generation() -> str:
    """A fresh snapshot generation for one run of the embedded AWS."""
    return f"{time.time_ns():x}-{os.getpid()}"


def state_file(data_dir: str | os.PathLike[str], name: str, generation: str | None = None) -> Path:
    """Where the process keeping state `name` writes it for `generation` (None: a folder saved before manifests)."""
    return Path(data_dir) / (f"{name}.state" if generation is None else f"{name}.{generation}.state")


def snapshot_files(data_dir: str | os.PathLike[str], names: Iterable[str]) -> dict[str, tuple[Path, str | None]]:
    """Each name's file of the current snapshot and its generation ({} for a folder with none yet), or
    PersistenceError naming what is missing, mismatched or not a file."""
    folder, names = Path(data_dir), sorted(names)
    if folder.exists() and not folder.is_dir():
        raise PersistenceError(f"{folder} is not a folder; give --data a folder (or a new name)")
    manifest = folder / MANIFEST
    if manifest.exists() or manifest.is_symlink():
        generation, files = _read_manifest(manifest)
        if sorted(files) != names:
            raise PersistenceError(f"{manifest} names {', '.join(sorted(files)) or 'no'} state, not {', '.join(names)}")
        found: dict[str, tuple[Path, str | None]] = {name: (folder / files[name], generation) for name in names}
        for name, (path, _) in found.items():
            if path.name != state_file(folder, name, generation).name:
                raise PersistenceError(f"{manifest} names {path.name} for {name}; it was edited, move {folder} away")
    else:
        found = {name: (state_file(folder, name), None) for name in names}
        if not any(path.exists() or path.is_symlink() for path, _ in found.values()):
            return {}
    for path, _ in found.values():
        if not path.exists():
            raise PersistenceError(f"{path} is missing: the snapshot is incomplete; move {folder} away to start empty")
        if not path.is_file():
            raise PersistenceError(f"{path} is not a file; move it away to start empty")
    return found


def _read_manifest(manifest: Path) -> tuple[str, dict[str, str]]:
    try:
        loaded = json.loads(manifest.read_text())
    except (OSError, ValueError) as error:
        raise PersistenceError(f"{manifest} cannot be read ({_reason(error)}); move it away to start empty") from None
    generation, files = (loaded.get("generation"), loaded.get("files")) if isinstance(loaded, dict) else (None, None)
    if (
        not isinstance(generation, str)
        or not isinstance(files, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise PersistenceError(f"{manifest} is not a dev stack manifest; move it away to start empty")
    return generation, files


def save(data_dir: str | os.PathLike[str], name: str, generation: str, names: Iterable[str], lock: Any = None) -> Path:
    """Write this process's moto backends as `name`'s file of `generation`, then make the generation the
    current snapshot if every one of `names` has written its file; returns the file written."""
    backends = _served_backends()
    path = state_file(data_dir, name, generation)
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock if lock is not None else nullcontext():
        # This runs as the process stops: what only this run could use is dropped before writing.
        for (module, _), accounts in backends.items():
            for regions in accounts.values():
                for backend in regions.values():
                    _made_safe(module, backend)
        state = {"format": FORMAT, "moto": _moto_version(), "name": name, "generation": generation}
        _write_atomically(path, lambda out: _StatePickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(
            {**state, "backends": backends}
        ))  # fmt: skip
    _complete(Path(data_dir), generation, sorted(names))
    return path


def _complete(folder: Path, generation: str, names: list[str]) -> None:
    files = {name: state_file(folder, name, generation).name for name in names}
    if not all((folder / file).is_file() for file in files.values()):
        return  # another process of this generation has not saved (yet, or ever: then this one is ignored)
    body = json.dumps({"format": FORMAT, "generation": generation, "files": files}, indent=1).encode()
    _write_atomically(folder / MANIFEST, lambda out: out.write(body))
    # Files of other generations (incomplete ones, the previous snapshot, a pre-manifest folder's) are done.
    keep = set(files.values())
    for name in names:
        for stale in [*folder.glob(f"{name}.*.state"), folder / f"{name}.state"]:
            if stale.name not in keep and stale.name.removeprefix(f"{name}.").count(".") <= 1:
                stale.unlink(missing_ok=True)


def _write_atomically(path: Path, write: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # only left over if writing failed: the old file stays
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)


def restore(data_dir: str | os.PathLike[str], name: str, names: Iterable[str]) -> bool:
    """Load `name`'s file of the current snapshot into moto's backends; False if there is no snapshot."""
    found = snapshot_files(data_dir, names)
    if not found:
        return False
    path, generation = found[name]
    state = _load(path)
    if generation is not None and (state.get("generation"), state.get("name")) != (generation, name):
        raise PersistenceError(
            f"{path} belongs to another snapshot than {Path(data_dir) / MANIFEST} names; move {data_dir} away"
        )
    try:
        for (module, attribute), accounts in state["backends"].items():
            if (module, attribute) not in SERVICES.items():
                raise ValueError(module)
            registry = getattr(importlib.import_module(f"moto.{module}.models"), attribute)
            for account_id, regions in accounts.items():
                for region, backend in regions.items():
                    _made_safe(module, backend)
                    registry[account_id][region] = backend
    except Exception:
        raise PersistenceError(
            f"{path} has the wrong shape for a dev stack state; move it away to start empty"
        ) from None
    return True


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as source:
            # The folder is the developer's own, written by save() above: not data from elsewhere.
            state = pickle.load(source)  # noqa: S301
    except Exception as error:
        raise PersistenceError(f"{path} cannot be read ({_reason(error)}); move it away to start empty") from None
    if not isinstance(state, dict) or not isinstance(state.get("backends"), dict):
        raise PersistenceError(f"{path} has the wrong shape for a dev stack state; move it away to start empty")
    if state.get("format") != FORMAT or state.get("moto") != _moto_version():
        raise PersistenceError(
            f"{path} was saved by another version of the dev stack (moto {str(state.get('moto'))[:40]!r}, "
            f"this is {_moto_version()}); move it away to start empty"
        )
    return state


def _reason(error: BaseException) -> str:
    # One line whatever the error says.
    text = " ".join(str(error).split())[:120]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
    from chalicelib.schema.models import ALL_MODELS, table_spec

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
