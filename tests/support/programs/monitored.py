"""An asyncio app with a monitor on free ports and one task only it has.

``python monitored.py TAG [unix-socket-path]``; the password, if any, comes
from ``APP_PASSWORD``, the control password from ``APP_CONTROL_PASSWORD``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import aiomonitor


async def main(tag: str, path: str | None) -> None:
    options: dict[str, Any] = {"path": path} if path else {}
    with aiomonitor.start_monitor(
        asyncio.get_running_loop(),
        port=0,
        console_port=0,
        password=os.environ.get("APP_PASSWORD"),
        control_password=os.environ.get("APP_CONTROL_PASSWORD"),
        **options,
    ) as monitor:
        parked = asyncio.create_task(asyncio.sleep(3600), name=f"only-in-{tag}")
        print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)
        await parked


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
