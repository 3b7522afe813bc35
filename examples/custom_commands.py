"""Custom commands as the classic aiomonitor tutorial writes them.

``hello [name]``, ``add a b`` (typed arguments), and an alias via ``alt_names``.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiomonitor
from aiomonitor.utils import alt_names


class MyMonitor(aiomonitor.Monitor):
    @alt_names("hi")
    def do_hello(self, name: str = "world") -> None:
        """Greet someone

        An optional argument, NAME, says who.
        """
        self._sout.write(f"Hello, {name}!\n")

    def do_add(self, a: int, b: int) -> None:
        """Add two integers"""
        self._sout.write(f"{a} + {b} = {a + b}\n")


def main() -> None:
    loop = asyncio.new_event_loop()
    with aiomonitor.start_monitor(loop, monitor=MyMonitor):
        print("Connect with: nc 127.0.0.1 50101, then try: hello Ada, add 2 3, hi", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            loop.run_forever()
    loop.close()


if __name__ == "__main__":
    main()
