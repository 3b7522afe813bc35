"""What ``cost`` reports of tracing's memory, where few tasks are traced among many."""

from __future__ import annotations

import asyncio

from ..support.helpers import in_thread


def test_a_few_traced_tasks_among_thousands_are_measured() -> None:
    import aiomonitor

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with aiomonitor.start_monitor(loop, port=0, console_port=0) as monitor:
            forever = asyncio.Event()
            untraced = [asyncio.create_task(forever.wait()) for _ in range(20_000)]
            backend = monitor._backend
            await in_thread(backend.retrace, True, 0, False)  # tracing switched on late
            traced = [asyncio.create_task(forever.wait())]
            await asyncio.sleep(0)  # every task has started (nothing to wait for: one turn)
            memory = await in_thread(backend.tracing_memory)
            assert memory is not None
            assert memory.tasks == 1
            # A sample striding over 20,001 tasks (every 20th) would mostly miss it; it is found anyway.
            assert memory.per_task > 0
            forever.set()
            await asyncio.gather(*untraced, *traced)

    asyncio.run(scenario())
