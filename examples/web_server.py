"""A tiny HTTP server on asyncio streams, one task per connection, monitored.

No web framework needed: the same applies to aiohttp or FastAPI apps.
``curl localhost:8080/slow`` leaves a request task sitting in ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import aiomonitor
from aiomonitor.utils import alt_names

served = {"requests": 0}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readline()
    path = request.split()[1].decode() if len(request.split()) > 1 else "/"
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass
    if path == "/slow":
        await asyncio.sleep(60)
    served["requests"] += 1
    body = f"hello from {path}\n".encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


class WebMonitor(aiomonitor.Monitor):
    @alt_names("r")
    def do_requests(self) -> None:
        """How many requests were served"""
        self._sout.write(f"{served['requests']} requests served\n")


async def main(http_port: int, port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", http_port)
    http_port = server.sockets[0].getsockname()[1]
    with aiomonitor.start_monitor(asyncio.get_running_loop(), monitor=WebMonitor, port=port, console_port=0) as monitor:
        print(f"HTTP on 127.0.0.1:{http_port}; monitor on 127.0.0.1:{monitor.port}", flush=True)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("-p", "--port", type=int, default=aiomonitor.MONITOR_PORT)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.http_port, args.port))
