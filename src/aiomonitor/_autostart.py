"""A monitor for a program that never asked for one (``aiomonitor run``).

How it hooks in, and why there:

* **asyncio and uvloop.**  Every loop that starts running tells asyncio so,
  through ``asyncio._set_running_loop(loop)``: the standard loops call it
  from the ``asyncio.events`` module at run time, uvloop takes the function
  from ``asyncio`` when it is imported.  Both are replaced before the
  program runs, so the first loop that starts gets a Monitor, started in the
  loop's own thread just before its first callback.  ``asyncio.run``,
  ``Runner``, ``run_until_complete`` and ``run_forever`` all pass there; the
  cost is one comparison per ``run_forever`` call.
* **trio.**  trio has no such call, so ``trio.run`` is wrapped the moment
  trio is imported (an import hook that removes itself after that one
  import): the program's main function runs inside ``monitor_trio``, under
  its own name, so the task tree reads as it would without us.

One monitor at a time: the first loop to start is watched until it is
closed; a loop started after that (a second ``asyncio.run``) gets a fresh
monitor.  What is not seen: a loop that never calls ``_set_running_loop``
(a loop implemented in C that does not tell asyncio), trio's guest mode, and
a ``trio.run`` captured before we started (by ``sitecustomize``, say).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .monitor import Monitor, monitor_trio

log = logging.getLogger("aiomonitor")

#: The name every thread of the monitor's starts with.
OWN_THREADS = "aiomonitor"


class AutoMonitor:
    """Starts a :class:`Monitor` with *options* on the program's event loop."""

    def __init__(self, options: dict[str, Any], announce: Callable[[Monitor], None] | None = None) -> None:
        self._options = options
        self._announce = announce
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitor: Monitor | None = None
        self._original_set_running_loop: Callable[[Any], None] | None = None
        self._trio_runs: tuple[ModuleType, Callable[..., Any]] | None = None

    def install(self) -> None:
        """Hook asyncio now, and trio when (if) it is imported."""
        original = asyncio.events._set_running_loop
        self._original_set_running_loop = original

        def set_running_loop(loop: Any) -> None:
            original(loop)
            # The monitor's own threads (all named "aiomonitor-...") run loops
            # too: the server's, the calibration's.  Those are not the program's.
            if (
                loop is not None
                and loop is not self._loop
                and not threading.current_thread().name.startswith(OWN_THREADS)
            ):
                self._asyncio_loop_started(loop)

        asyncio.events._set_running_loop = set_running_loop
        asyncio._set_running_loop = set_running_loop  # what uvloop reads
        if "trio" in sys.modules:
            self._wrap_trio_run(sys.modules["trio"])
        else:
            sys.meta_path.insert(0, _AfterImport("trio", self._wrap_trio_run))

    def close(self) -> None:
        """Close the current monitor and take the asyncio hook out again."""
        with self._lock:
            if self._monitor is not None:
                self._monitor.close()
                self._monitor = None
        if self._original_set_running_loop is not None:
            asyncio.events._set_running_loop = self._original_set_running_loop
            asyncio._set_running_loop = self._original_set_running_loop
            self._original_set_running_loop = None
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _AfterImport)]
        if self._trio_runs is not None:
            trio, original_run = self._trio_runs
            setattr(trio, "run", original_run)  # noqa: B010 - typed as a module; it has run
            self._trio_runs = None

    def _asyncio_loop_started(self, loop: asyncio.AbstractEventLoop) -> None:
        # Runs inside the program's run_forever: nothing may escape from here.
        with self._lock:
            if self._monitor is not None:
                if self._loop is not None and not self._loop.is_closed():
                    return  # still watching the first loop; another thread runs its own
                self._monitor.close()
                self._monitor = None
            self._loop = loop  # tried once: a failure is logged, not repeated per run_forever
            try:
                monitor = Monitor(loop, **self._options)
                monitor.start()
            except Exception:
                log.exception("aiomonitor: could not start a monitor for this program")
                return
            self._monitor = monitor
        if self._announce is not None:
            self._announce(monitor)

    def _wrap_trio_run(self, trio: ModuleType) -> None:
        original_run: Callable[..., Any] = getattr(trio, "run")  # noqa: B009 - as above
        self._trio_runs = (trio, original_run)
        auto = self

        @functools.wraps(original_run)
        def run(async_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if auto._monitor is not None:  # a nested or concurrent run: watched already
                return original_run(async_fn, *args, **kwargs)

            @functools.wraps(async_fn)  # trio names the main task after this
            async def monitored(*inner: Any) -> Any:
                with monitor_trio(**auto._options) as monitor:
                    with auto._lock:
                        auto._monitor = monitor
                    if auto._announce is not None:
                        auto._announce(monitor)
                    try:
                        return await async_fn(*inner)
                    finally:
                        with auto._lock:
                            auto._monitor = None

            return original_run(monitored, *args, **kwargs)

        setattr(trio, "run", run)  # noqa: B010 - as above


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls *patch(module)* once *name* has been imported, then steps aside."""

    def __init__(self, name: str, patch: Callable[[ModuleType], None]) -> None:
        self._name = name
        self._patch = patch

    def find_spec(
        self, fullname: str, path: Any, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._name:
            return None
        sys.meta_path.remove(self)  # before finding, so the search below skips us
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _PatchingLoader(spec.loader, self._patch)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, patch: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:  # resources, code, is_package: the real loader's
        return getattr(self._loader, name)
