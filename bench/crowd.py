"""WebSocket clients in a process of their own, so that reading 1,000 sockets does not compete with the
dev stack for its interpreter: each socket records when frames of one type arrive.

    with Crowd(ws_url, tokens, "drop_started") as crowd:   # sockets open when this returns
        ...                                                  # make the event happen
        times = crowd.first_per_socket(timeout=120)          # arrival time of each socket's first frame
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any


def _run(url: str, tokens: list[str], kind: str, conn: Connection) -> None:
    asyncio.run(_main(url, tokens, kind, conn))


async def _main(url: str, tokens: list[str], kind: str, conn: Connection) -> None:
    from websockets.asyncio.client import connect

    arrivals: list[list[tuple[float, dict[str, Any]]]] = [[] for _ in tokens]
    gate = asyncio.Semaphore(16)
    sockets: list[Any] = []

    async def reader(ws: Any, sink: list[tuple[float, dict[str, Any]]]) -> None:
        try:
            async for message in ws:
                frame = json.loads(message)
                if frame.get("type") == kind:
                    sink.append((time.time(), frame.get("data") or {}))
        except Exception:  # noqa: BLE001 - a closed socket ends its reader
            return

    async def open_one(index: int, token: str) -> None:
        async with gate:
            ws = await connect(f"{url}?token={token}", max_size=None, ping_interval=None, open_timeout=60)
        sockets.append(ws)
        asyncio.ensure_future(reader(ws, arrivals[index]))

    await asyncio.gather(*(open_one(i, t) for i, t in enumerate(tokens)))
    conn.send("ready")
    loop = asyncio.get_running_loop()
    # The parent's one request: ("first", deadline) or ("ids", field, wanted ids, deadline).
    request = await loop.run_in_executor(None, conn.recv)
    deadline = request[-1]
    while time.time() < deadline:
        if request[0] == "first" and all(arrivals):
            break
        if request[0] == "ids":
            seen = {data.get(request[1]) for sink in arrivals for _, data in sink}
            if set(request[2]) <= seen:
                break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # late duplicates, if any, are counted too
    conn.send(arrivals)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


class Crowd:
    """Sockets for `tokens` at `url`, recording frames of type `kind`, in a child process."""

    def __init__(self, url: str, tokens: list[str], kind: str) -> None:
        self._parent, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_run, args=(url, tokens, kind, child), daemon=True
        )

    def __enter__(self) -> Crowd:
        self._process.start()
        if not self._parent.poll(300) or self._parent.recv() != "ready":
            raise RuntimeError("the crowd's sockets did not open")
        return self

    def first_per_socket(self, timeout: float) -> list[list[tuple[float, dict[str, Any]]]]:
        """Wait until every socket has a frame (or `timeout`); every socket's frames with arrival times."""
        self._parent.send(("first", time.time() + timeout))
        return self._collect(timeout)

    def until_ids(self, field: str, ids: set[str], timeout: float) -> list[list[tuple[float, dict[str, Any]]]]:
        """Wait until frames carrying each of `ids` in data.`field` arrived (or `timeout`)."""
        self._parent.send(("ids", field, sorted(ids), time.time() + timeout))
        return self._collect(timeout)

    def _collect(self, timeout: float) -> list[list[tuple[float, dict[str, Any]]]]:
        if not self._parent.poll(timeout + 60):
            raise RuntimeError("the crowd did not report")
        arrivals: list[list[tuple[float, dict[str, Any]]]] = self._parent.recv()
        return arrivals

    def __exit__(self, *exc: object) -> None:
        self._process.join(30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
