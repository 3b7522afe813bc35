"""A pytest plugin: a test that hangs says where its tasks are stuck.

Registered through the ``pytest11`` entry point and inactive unless asked:

    pytest --aiomonitor-hang=30                 (or the ini option aiomonitor_hang)
    pytest --aiomonitor-hang=30 --aiomonitor-dump-dir=hangs

When a test (its setup, call or teardown) has run longer than that, the
event loops running in the test's process are shown on the terminal while
the test goes on: each loop's task tree and every task's stack, with what
it waits for; with a dump directory, a bundle of each loop too (``aiomonitor
open FILE`` reads it).  Once per test.  Ending the test stays
pytest-timeout's job: this never changes an outcome.

Which loops: asyncio and uvloop loops are seen when they start running
(as under ``aiomonitor run``), trio runs when they start (``trio.run`` and
guest runs, so anyio's and pytest-trio's too), from the moment the option is
given.  The report is written to a copy of the terminal's file descriptor
taken before pytest captures output, as pytest's own ``faulthandler_timeout``
does, so it shows while the test runs.

Installed but not asked for, the plugin costs one option lookup and imports
nothing.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from types import ModuleType

    from .backends import Backend

HANG_HELP = "seconds a test may run before aiomonitor shows its event loops' tasks (once per test)"
DUMP_HELP = "with --aiomonitor-hang: also write a bundle of each loop there (aiomonitor open FILE)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aiomonitor", "aiomonitor: hung async tests explain themselves")
    group.addoption("--aiomonitor-hang", type=float, default=None, metavar="SECONDS", help=HANG_HELP)
    group.addoption("--aiomonitor-dump-dir", default=None, metavar="DIR", help=DUMP_HELP)
    parser.addini("aiomonitor_hang", HANG_HELP, default="")
    parser.addini("aiomonitor_dump_dir", DUMP_HELP, default="")


def pytest_configure(config: pytest.Config) -> None:
    hang = config.getoption("aiomonitor_hang")
    if hang is None and config.getini("aiomonitor_hang"):
        try:
            hang = float(config.getini("aiomonitor_hang"))
        except ValueError:
            raise pytest.UsageError(
                f"aiomonitor_hang must be seconds, not {config.getini('aiomonitor_hang')!r}"
            ) from None
    if hang is None:
        return
    if not hang > 0:
        raise pytest.UsageError(f"--aiomonitor-hang must be more than 0 seconds, not {hang!r}")
    dump_dir = config.getoption("aiomonitor_dump_dir") or config.getini("aiomonitor_dump_dir") or None
    watch = HangWatch(hang, dump_dir)
    watch.install()
    config.pluginmanager.register(watch, "aiomonitor-hang")
    config.add_cleanup(watch.uninstall)


class HangWatch:
    """Times each test, and shows the process's loops when one runs too long."""

    def __init__(self, hang: float, dump_dir: str | None) -> None:
        self.hang = hang
        self.dump_dir = dump_dir
        self._loops = LoopTracker()
        # A copy of the terminal, taken before pytest captures output.
        self._out = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace", buffering=1)

    def install(self) -> None:
        self._loops.install()

    def uninstall(self) -> None:
        self._loops.uninstall()
        self._out.close()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        fired = threading.Event()
        timer = threading.Timer(self.hang, self._report, args=(item, fired))
        timer.name = "aiomonitor-hang"
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            if fired.is_set():
                timer.join()  # the report in progress finishes before the next test begins

    def _report(self, item: pytest.Item, fired: threading.Event) -> None:
        fired.set()
        try:
            text = hang_report(item.nodeid, self.hang, self._loops.running(), self.dump_dir)
        except Exception as exc:  # noqa: BLE001 - a report's trouble never changes a test
            text = f"\naiomonitor: {item.nodeid} runs past {self.hang:g} s; its loops could not be read: {exc!r}\n"
        self._out.write(text)
        self._out.flush()


class LoopTracker:
    """The event loops running now, by thread: asyncio's as they start, trio's as its runs begin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[str, Any]] = {}
        self._undo: list[Callable[[], None]] = []

    def running(self) -> list[Backend]:
        """A backend for each loop running now (asyncio loops not closed, trio runs not ended)."""
        from .backends import asyncio_backend

        with self._lock:
            found = list(self._running.values())
        backends: list[Backend] = []
        for kind, handle in found:
            if kind == "asyncio":
                if not handle.is_closed():
                    backends.append(asyncio_backend(handle))
            else:
                backends.append(handle)
        return backends

    def install(self) -> None:
        import sys

        from ._launch._autostart import _AfterImport

        for name, hook in (("asyncio", self._hook_asyncio), ("trio", self._hook_trio)):
            if name in sys.modules:
                hook(sys.modules[name])
            else:
                finder = _AfterImport(name, hook)
                sys.meta_path.insert(0, finder)
                self._undo.append(functools.partial(_withdraw, finder))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _patch(self, module: ModuleType, name: str, value: Any) -> None:
        original = getattr(module, name)
        setattr(module, name, value)
        self._undo.append(lambda: setattr(module, name, original))

    def _hook_asyncio(self, asyncio_module: ModuleType) -> None:
        original = asyncio_module.events._set_running_loop

        def set_running_loop(loop: Any) -> None:
            original(loop)
            with self._lock:
                if loop is None:
                    self._running.pop(threading.get_ident(), None)
                else:
                    self._running[threading.get_ident()] = ("asyncio", loop)

        self._patch(asyncio_module.events, "_set_running_loop", set_running_loop)
        self._patch(asyncio_module, "_set_running_loop", set_running_loop)

    def _hook_trio(self, trio: ModuleType) -> None:
        tracker = self

        def watched(async_fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(async_fn)
            async def main(*args: Any) -> Any:
                from .backends import trio_backend

                ident = threading.get_ident()
                with tracker._lock:
                    tracker._running[ident] = ("trio", trio_backend(cancellable_tasks=False))
                try:
                    return await async_fn(*args)
                finally:
                    with tracker._lock:
                        tracker._running.pop(ident, None)

            return main

        run, guest_run = trio.run, trio.lowlevel.start_guest_run

        def traced_run(async_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return run(watched(async_fn), *args, **kwargs)

        def traced_guest_run(async_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return guest_run(watched(async_fn), *args, **kwargs)

        self._patch(trio, "run", functools.wraps(run)(traced_run))
        self._patch(trio.lowlevel, "start_guest_run", functools.wraps(guest_run)(traced_guest_run))


def _withdraw(finder: object) -> None:
    import sys

    if finder in sys.meta_path:
        sys.meta_path.remove(finder)


def hang_report(nodeid: str, hang: float, backends: list[Backend], dump_dir: str | None) -> str:
    """What a hung test's loops are doing: each one's task tree, then each task's stack and wait."""
    from ._gil._heavy import heavy_section

    lines = [f"\n{'=' * 20} aiomonitor: {nodeid} has run {hang:g} s {'=' * 20}\n"]
    if not backends:
        lines.append("No event loop runs in this process now (the test is not waiting on one).\n")
    for number, backend in enumerate(backends, 1):
        with heavy_section():
            lines.append(_loop_report(number, backend))
        if dump_dir is not None:
            lines.append(_dump(backend, dump_dir))
    lines.append(f"{'=' * 20} the test goes on {'=' * 20}\n")
    return "".join(lines)


def _loop_report(number: int, backend: Backend) -> str:
    from ._query import _queries as _query
    from ._render import _format, _graph

    tree = _query.await_tree(backend)
    try:
        labels = _graph.labels(tree.names, tree.coros)
        tree_lines, _ = _graph.tree_lines(labels, tree.edges, tree.creators, None)
    finally:
        tree.release()
    waits = {wait.task_id: wait for wait in backend.waits()}
    names = {task.id: task.name for task in backend.snapshot()}
    details = list(backend.details())
    qualified = _qualified_names()  # after the walk, which saw every frame
    parts = [
        f"Loop {number} ({backend.framework}): {_format.plural(len(names), 'task')}\n",
        *_format.batched_text(tree_lines),
        "\n",
    ]
    for task_id, stack, _, _ in details:
        parts.append(f"Task {names.get(task_id, '?')!r} ({task_id}):\n")
        for frame in stack:
            parts.append(f"  {frame.filename}:{frame.lineno} in {qualified.get(frame, frame.name)}\n")
        wait = waits.get(task_id)
        if wait is not None:
            parts.append(f"  {_format.wait_lines(wait, names).strip()}\n")
    return "".join(parts)


def _qualified_names() -> dict[Any, str]:
    """Each frame seen lately -> its function with its class (``Event.wait``),
    where Python keeps that (3.11+; 3.10 has the bare name)."""
    from .backends._records import FRAME_INFO_CACHE

    return {info: getattr(code, "co_qualname", info.name) for code, info in list(FRAME_INFO_CACHE.values())}


def _dump(backend: Backend, dump_dir: str) -> str:
    from ._dump._bundle import BundleSource, bundle_text
    from ._dump._files import DumpDirectory
    from ._query._doctor_query import CancelMemory
    from ._query._stalls import StallRecorder
    from ._query._watchdog import LoopWatchdog

    source = BundleSource(
        backend, StallRecorder(backend), False, LoopWatchdog(backend), CancelMemory(), {"pytest": True}
    )
    path = DumpDirectory(dump_dir, max_dumps=1000).write(bundle_text(source))
    return f"A bundle of it: {path} (aiomonitor open {path})\n" if path else "(no bundle: see the log)\n"
