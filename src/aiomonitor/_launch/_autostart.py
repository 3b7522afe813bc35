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
monitor.  A forked child forgets its parent's monitor (which closed itself
there) and gets its own when it starts a loop, on a free port if the one
asked for is its parent's (``port_fallback``).

Installing costs next to nothing, so that a process that never runs a loop
pays nothing visible (``_follow`` installs this in every process of a
service): asyncio is hooked once the program imports it, trio likewise, and
the monitor's own machinery is imported when the first loop starts.

What is not seen: a loop that never calls ``_set_running_loop`` (a loop
implemented in C that does not tell asyncio), trio's guest mode, and a
``trio.run`` captured before we started (by ``sitecustomize``, say).
"""

from __future__ import annotations

import _thread
import os
import sys
from _weakref import ref

#: Only what a process that never runs a loop needs is imported at run time
#: (``typing`` and ``dataclasses`` alone would cost it ~20 ms); type checkers
#: treat this name as true wherever it comes from.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import importlib.abc
    import importlib.machinery
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from ..monitor import Monitor

#: The name every thread of the monitor's starts with.
OWN_THREADS = "aiomonitor"


class Launch:
    """How to start a monitor: the ``Monitor`` options, and what to do once it runs."""

    def __init__(self, options: dict[str, Any], on_start: Callable[[Monitor], None] | None = None) -> None:
        self.options = options
        self.on_start = on_start
        #: What a forked child changes: its parent's port is taken, by its parent.
        self.in_child: dict[str, Any] = {"port_fallback": True}


class AutoMonitor:
    """Starts a monitor on the program's event loop, as *launch()* says.

    *launch* is called once, when the first loop starts (parsing settings
    is not paid by processes that never run one).
    """

    def __init__(self, launch: Callable[[], Launch]) -> None:
        self._launch = launch
        self._settings: Launch | None = None
        self._forked = False
        self._lock = _thread.allocate_lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitor: Monitor | None = None
        self._asyncio_hooked: tuple[ModuleType, Callable[[Any], None]] | None = None
        self._trio_runs: tuple[ModuleType, Callable[..., Any]] | None = None
        self._installed = False

    def install(self) -> None:
        """Hook asyncio and trio now, or when (if) the program imports them."""
        self._installed = True
        for name, hook in (("asyncio", self._hook_asyncio), ("trio", self._wrap_trio_run)):
            if name in sys.modules:
                hook(sys.modules[name])
            else:
                sys.meta_path.insert(0, _AfterImport(name, hook))
        # Weakly, like the Monitor's: the hook can't be unregistered, and is a no-op once we are gone.
        auto = ref(self)
        os.register_at_fork(after_in_child=lambda: _forget_in_child(auto()))

    def close(self) -> None:
        """Close the current monitor and take the hooks out again."""
        with self._lock:
            if self._monitor is not None:
                self._monitor.close()
                self._monitor = None
        self._installed = False
        if self._asyncio_hooked is not None:
            asyncio_module, original = self._asyncio_hooked
            setattr(asyncio_module.events, "_set_running_loop", original)  # noqa: B010 - a module
            setattr(asyncio_module, "_set_running_loop", original)  # noqa: B010 - as above
            self._asyncio_hooked = None
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _AfterImport)]
        if self._trio_runs is not None:
            trio, original_run = self._trio_runs
            setattr(trio, "run", original_run)  # noqa: B010 - typed as a module; it has run
            self._trio_runs = None

    def _forget_parent_monitor(self) -> None:
        """In a forked child: the parent's monitor closed itself; the next loop gets a new one."""
        self._forked = True
        self._monitor = None
        self._loop = None
        self._lock = _thread.allocate_lock()  # the parent's may have been held by a thread that did not come along

    def _options(self) -> dict[str, Any]:
        if self._settings is None:
            self._settings = self._launch()
        settings = self._settings
        return {**settings.options, **settings.in_child} if self._forked else settings.options

    def _started(self, monitor: Monitor) -> None:
        assert self._settings is not None
        if self._settings.on_start is not None:
            self._settings.on_start(monitor)

    def _hook_asyncio(self, asyncio_module: ModuleType) -> None:
        """Every loop that starts running tells asyncio so (see the module's notes)."""
        events = asyncio_module.events
        original: Callable[[Any], None] = events._set_running_loop
        self._asyncio_hooked = (asyncio_module, original)

        def set_running_loop(loop: Any) -> None:
            original(loop)
            # The monitor's own threads (all named "aiomonitor-...") run loops
            # too: the server's, the calibration's.  Those are not the program's.
            if loop is not None and loop is not self._loop:
                import threading

                if not threading.current_thread().name.startswith(OWN_THREADS):
                    self._asyncio_loop_started(loop)

        setattr(events, "_set_running_loop", set_running_loop)  # noqa: B010 - a module
        setattr(asyncio_module, "_set_running_loop", set_running_loop)  # noqa: B010 - what uvloop reads

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
                from ..monitor import Monitor

                monitor = Monitor(loop, **self._options())
                monitor.start()
            except Exception:  # noqa: BLE001 - the program runs on, unmonitored, and the log says why
                _log_failure()
                return
            self._monitor = monitor
        self._started(monitor)

    def _wrap_trio_run(self, trio: ModuleType) -> None:
        import contextlib
        import functools

        original_run: Callable[..., Any] = getattr(trio, "run")  # noqa: B009 - as above
        self._trio_runs = (trio, original_run)
        auto = self

        @functools.wraps(original_run)
        def run(async_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if auto._monitor is not None or not auto._installed:  # nested, concurrent, or no longer ours
                return original_run(async_fn, *args, **kwargs)

            named = async_fn  # trio names the main task after the function, through partials
            while isinstance(named, functools.partial):
                named = named.func

            @functools.wraps(named)
            async def monitored(*inner: Any) -> Any:
                from ..monitor import monitor_trio

                with contextlib.ExitStack() as watching:
                    try:
                        monitor = watching.enter_context(monitor_trio(**auto._options()))
                    except Exception:  # noqa: BLE001 - as for asyncio
                        _log_failure()
                        return await async_fn(*inner)
                    with auto._lock:
                        auto._monitor = monitor
                    try:
                        auto._started(monitor)
                        return await async_fn(*inner)
                    finally:
                        with auto._lock:
                            auto._monitor = None

            return original_run(monitored, *args, **kwargs)

        setattr(trio, "run", run)  # noqa: B010 - as above


def _forget_in_child(auto: AutoMonitor | None) -> None:
    if auto is not None:
        auto._forget_parent_monitor()


def _log_failure() -> None:
    import logging

    logging.getLogger("aiomonitor").exception("aiomonitor: could not start a monitor for this program")


class _AfterImport:
    """Calls *patch(module)* once *name* has been imported, then steps aside.

    A meta path finder by its methods alone: ``importlib.abc`` would cost
    every process 30 ms of imports.
    """

    def __init__(self, name: str, patch: Callable[[ModuleType], None]) -> None:
        self._name = name
        self._patch = patch

    def find_spec(
        self, fullname: str, path: Any, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._name:
            return None
        sys.meta_path.remove(self)  # before finding, so the search below skips us
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target) if find_spec else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, self._patch)  # type: ignore[assignment]
                return spec
        return None


class _PatchingLoader:
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
