"""Every process of a service gets a monitor: the start-up hook behind ``aiomonitor run``.

``run`` puts its monitor settings in ``$AIOMONITOR_FOLLOW`` (and the service
in ``$AIOMONITOR_SERVICE``, see ``_registry.Service``); every process the
program starts inherits both.  A forked child needs nothing more: it carries
``run``'s hooks along (see ``_autostart``).  A spawned one is a fresh
interpreter (``uvicorn --workers``, hypercorn, ``multiprocessing`` spawn and
forkserver, ``subprocess.run([sys.executable, ...])``): for it, the wheel
installs ``aiomonitor-follow.pth`` into site-packages, whose one line calls
:func:`start_in_child` when the variable is set and does nothing else.

Cost contract: a process of the service that never runs a loop pays the
import of this module and ``_autostart`` (about 3 ms, no thread, no socket,
``benchmarks/follow.py``); the settings are parsed, and the monitor's
machinery imported, when a loop starts.  A process outside a service pays
one environment lookup.

The settings carry no secret: passwords travel in their own variables
(``$AIOMONITOR_PASSWORD``, ``$AIOMONITOR_CONTROL_PASSWORD``), as for ``run``.
"""

from __future__ import annotations

import os

from ._autostart import AutoMonitor, Launch

#: ``typing`` would cost a process more than all of this (see ``_autostart``).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..monitor import Monitor

#: The monitor settings of the service's processes (JSON; see ``export``).
FOLLOW_ENV = "AIOMONITOR_FOLLOW"

#: The hook's monitor in this process, if the hook started one: a process
#: has one start-up, so one hook.
_hooked: AutoMonitor | None = None


def export(options: dict[str, object], *, verbose: bool, otel: bool) -> None:
    """Have every process this one starts from now on monitored with *options*."""
    import json

    os.environ[FOLLOW_ENV] = json.dumps({"options": options, "verbose": verbose, "otel": otel})


def start_in_child() -> None:
    """The ``.pth`` hook: with ``$AIOMONITOR_FOLLOW`` set, watch for this process's first loop.

    Never raises: a start-up hook that fails would break every Python
    program of the service, which is far worse than one unmonitored worker.
    """
    global _hooked  # one start-up per process, so one hook
    if _hooked is not None or not os.environ.get(FOLLOW_ENV):
        return
    try:
        auto = AutoMonitor(_child_launch)
        auto.install()
    except Exception as exc:  # noqa: BLE001 - see above
        import sys

        print(f"aiomonitor: not following this process: {exc}", file=sys.stderr)
        return
    _hooked = auto


def stop_following() -> None:
    """This process and its children are not followed: the hook's monitor (if any) closes.

    For the programs that must never be monitored themselves although a
    service started them (the ``aiomonitor`` client), and for a nested ``run``.
    """
    from .._registry import SERVICE_ENV

    global _hooked
    os.environ.pop(FOLLOW_ENV, None)
    os.environ.pop(SERVICE_ENV, None)
    if _hooked is not None:
        _hooked.close()
        _hooked = None


def _child_launch() -> Launch:
    """The settings ``run`` exported, read once this process starts a loop."""
    import json

    settings = json.loads(os.environ.get(FOLLOW_ENV) or "{}")
    options = dict(settings.get("options") or {})
    options.update(launch_secrets())
    # Siblings start from the same settings: the first takes a fixed port, the others a free one.
    options["port_fallback"] = True
    return Launch(options, started_hook(verbose=bool(settings.get("verbose")), otel=bool(settings.get("otel"))))


def launch_secrets() -> dict[str, str | None]:
    """The passwords, from their own variables (never from the settings)."""
    from .._registry import CONTROL_PASSWORD_ENV, PASSWORD_ENV

    return {"password": os.environ.get(PASSWORD_ENV), "control_password": os.environ.get(CONTROL_PASSWORD_ENV)}


def started_hook(*, verbose: bool, otel: bool) -> Callable[[Monitor], None] | None:
    """What ``run`` does with each monitor once it runs: say where (``-v``), report to OpenTelemetry."""
    if not verbose and not otel:
        return None
    report: Callable[[Monitor], None] | None = None
    if otel:
        from ..otel import EnvironmentInstrumenter

        report = EnvironmentInstrumenter()

    def started(monitor: Monitor) -> None:
        if report is not None:
            report(monitor)
        if verbose:
            announce(monitor)

    return started


def announce(monitor: Monitor) -> None:
    """One line on stderr: where this process's monitor listens."""
    import sys

    console = f", console on port {monitor.console_port}" if monitor.console_port else ""
    web = f", web dashboard at {monitor.web_url}" if monitor.web_url else ""
    print(f"aiomonitor: pid {os.getpid()}: monitor on port {monitor.port}{console}{web}", file=sys.stderr, flush=True)
