"""An app whose audit log goes to stderr: ``python audited.py``.

Prints ``monitor on PORT CONSOLE_PORT``; its tasks: ``victim`` (to be
cancelled) and ``bystander``.  Runs until stdin closes.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import aiomonitor


async def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s %(message)s")
    logging.getLogger("aiomonitor.audit").setLevel(logging.INFO)
    loop = asyncio.get_running_loop()
    with aiomonitor.start_monitor(loop, port=0, console_port=0) as monitor:
        tasks = [asyncio.create_task(asyncio.sleep(3600), name=name) for name in ("victim", "bystander")]
        print(f"monitor on {monitor.port} {monitor.console_port}", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
