"""HTTP/1.1 for the web dashboard: one connection's requests, on h11, with limits.

h11 parses and frames (it is a sans-I/O state machine, as our telnet
protocol is); this module does the I/O on our own :class:`ClientSocket`,
which reads only as fast as we parse, so a client sending faster than we
answer is held back by TCP instead of filling our memory.  The handler
(``_web``) is an async function from :class:`Request` to :class:`Response`;
it never sees h11.

Limits, each a one-line answer rather than a hang:

* a request's head and body must arrive within ``request_timeout`` of the
  connection becoming idle (a slowloris client holds a descriptor for at
  most that long), the head within ``MAX_HEAD`` bytes (431) and a body
  within ``MAX_BODY`` (413);
* an answer that the client does not read for ``write_timeout`` drops it;
* methods other than GET and POST get 405.  HEAD is not served: no page
  of ours needs it, and h11 would require a body-less reply path for it.

Server thread only.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import anyio
import h11

from .._server._socket_stream import ClientSocket

#: The request line and headers, at most (bytes).
MAX_HEAD = 16 * 1024
#: A request body, at most (bytes); our only body is a cancel's empty form.
MAX_BODY = 16 * 1024
#: Bytes asked of the socket per read.
READ_SIZE = 16 * 1024
#: A response body is sent in pieces of at most this size.
SEND_SIZE = 64 * 1024

SERVER_NAME = b"aiomonitor"


@dataclass(frozen=True)
class Request:
    method: str
    #: The path, percent-decoded, without the query.
    path: str
    #: Query parameters, the first value of each name.
    query: Mapping[str, str]
    #: Header names in lower case; a repeated header's values joined by ", ".
    headers: Mapping[str, str]
    body: bytes = b""
    #: Who sent it (``host:port``), for the audit trail.
    peer: str = ""

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


@dataclass
class Response:
    status: int
    #: The whole body, or its pieces (a big JSON document made in a worker).
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]


class ConnectionState:
    """What the server's connection cap reads: whether a connection waits for a request."""

    def __init__(self, peer: str = "") -> None:
        self.idle = True
        self.peer = peer


def parse_target(target: bytes) -> tuple[str, dict[str, str]]:
    """A request target as (decoded path, first value of each query parameter).

    Raises ValueError for a target that is not an origin-form path.
    """
    text = target.decode("ascii", "strict")
    if not text.startswith("/"):
        raise ValueError("the request target must be a path")
    raw_path, _, raw_query = text.partition("?")
    path = urllib.parse.unquote(raw_path, errors="strict")
    query: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True, errors="strict"):
        query.setdefault(name, value)
    return path, query


async def serve(
    stream: ClientSocket,
    handler: Handler,
    state: ConnectionState,
    *,
    request_timeout: float,
    write_timeout: float,
) -> None:
    """Answer requests on one connection until it closes, breaks or times out."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    while True:
        state.idle = True
        request: Request | None = None
        with anyio.move_on_after(request_timeout):
            try:
                request = await _read_request(stream, conn, state.peer)
            except _BadRequest as exc:
                state.idle = False
                await _send_error(stream, conn, exc.status, exc.message, write_timeout)
                return
            except (OSError, anyio.ClosedResourceError):  # broken, or closed by the connection cap
                return
        if request is None:  # closed between requests, or the deadline passed
            return
        state.idle = False
        response = await handler(request)
        try:
            await _send_response(stream, conn, response, write_timeout)
        except (OSError, TimeoutError, anyio.ClosedResourceError, h11.LocalProtocolError):
            return
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:  # the client's request body was not all read
            return


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _next_event(stream: ClientSocket, conn: h11.Connection) -> object:
    """The next h11 event (or the PAUSED sentinel), reading as needed."""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            raise _BadRequest(status, "request head too large" if status == 431 else f"bad request: {exc}") from exc
        if event is h11.NEED_DATA:
            data = await stream.receive(READ_SIZE)
            conn.receive_data(data)  # b"" marks the client's end
            continue
        return event


async def _read_request(stream: ClientSocket, conn: h11.Connection, peer: str = "") -> Request | None:
    event = await _next_event(stream, conn)
    if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
        return None
    if not isinstance(event, h11.Request):
        raise _BadRequest(400, "bad request")
    method = event.method.decode("ascii", "replace")
    if method not in ("GET", "POST"):
        raise _BadRequest(405, f"method {method} is not allowed here")
    try:
        path, query = parse_target(event.target)
    except (ValueError, UnicodeError) as exc:
        raise _BadRequest(400, f"bad request target: {exc}") from None
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("ascii", "replace").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    body = bytearray()
    while True:
        part = await _next_event(stream, conn)
        if isinstance(part, h11.Data):
            body += part.data
            if len(body) > MAX_BODY:
                raise _BadRequest(413, "request body too large")
        elif isinstance(part, h11.EndOfMessage):
            break
        else:
            return None  # closed mid-body
    return Request(method, path, query, headers, bytes(body), peer)


def _head(response: Response, length: int | None) -> h11.Response:
    headers: list[tuple[bytes, bytes]] = [
        (b"Server", SERVER_NAME),
        (b"Content-Type", response.content_type.encode()),
        (b"Cache-Control", b"no-store"),
        (b"X-Content-Type-Options", b"nosniff"),
        (b"Referrer-Policy", b"no-referrer"),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers),
    ]
    if length is not None:
        headers.append((b"Content-Length", str(length).encode()))
    return h11.Response(status_code=response.status, headers=headers)


async def _send_response(stream: ClientSocket, conn: h11.Connection, response: Response, idle_timeout: float) -> None:
    """Send *response*; ``TimeoutError`` once the client takes no byte for *idle_timeout*."""
    body = response.body
    if isinstance(body, bytes):
        await stream.send(conn.send(_head(response, len(body))) or b"", idle_timeout)
        for start in range(0, len(body), SEND_SIZE):
            await stream.send(conn.send(h11.Data(data=body[start : start + SEND_SIZE])) or b"", idle_timeout)
    else:  # pieces of unknown total: chunked
        await stream.send(conn.send(_head(response, None)) or b"", idle_timeout)
        for piece in body:
            if piece:
                await stream.send(conn.send(h11.Data(data=piece)) or b"", idle_timeout)
    await stream.send(conn.send(h11.EndOfMessage()) or b"", idle_timeout)


async def _send_error(stream: ClientSocket, conn: h11.Connection, status: int, message: str, timeout: float) -> None:
    """A one-line JSON error, then close (the connection's framing may be lost)."""
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = error_body(message)
    response = Response(status, body, headers=[("Connection", "close")])
    with contextlib.suppress(OSError, TimeoutError, anyio.ClosedResourceError, h11.LocalProtocolError):
        await _send_response(stream, conn, response, timeout)


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode() + b"\n"
