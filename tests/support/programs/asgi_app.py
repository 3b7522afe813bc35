"""A plain ASGI app (no framework, no aiomonitor) for real servers to serve.

``GET /slow`` answers after a minute, in ``slow_request``: while it waits,
it is one in-flight request a monitor should show.  Any other path answers
at once with the serving process's pid.  It runs on asyncio, uvloop and trio
(through anyio, which picks the running one).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def slow_request() -> None:
    await anyio.sleep(60)


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await slow_request()
    body = f"pid {os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
