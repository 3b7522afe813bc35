"""``doctor``: every check of ``_diagnosis`` over what the monitor knows,
ranked, with evidence.  A thin renderer over ``_doctor_query.diagnose``; it runs in
a worker thread and never enters the monitored loop, so a deadlocked or
blocked app is diagnosed rather than waited for."""

from __future__ import annotations

import json

from .._query import _diagnosis, _doctor_query
from .._render import _json
from ..utils import alt_names, readonly
from ._context import CommandBase

#: The colour of each severity's tag.
_TAGS = {"critical": "warning", "error": "warning", "warning": "warning", "info": "source"}


class DoctorCommands(CommandBase):
    """``doctor``."""

    @alt_names("dr")
    @readonly
    def do_doctor(self, *args: str) -> None:
        """Find what is wrong: deadlocks, stalls, lost wake-ups, leaks

        Usage: doctor [-j]: runs every check (read-only, without entering the
        loop) and lists the problems found, most urgent first, each with the
        tasks involved, the evidence and why it matters; -j prints them as
        one JSON object.
        """
        unknown = [a for a in args if a not in ("-j", "--json")]
        if unknown:
            self._sout.write(f"doctor takes only -j, not {unknown[0]!r}\n")
            return
        context = self._context
        result = _doctor_query.diagnose_settled(
            self._compute, context.backend, context.stall_recorder, context.cancel_memory, context.trend
        )
        if args:
            self._sout.write(json.dumps(_json.diagnosis(result)) + "\n")
            return
        if not result.findings:
            self._sout.write(f"No problems found in {result.tasks} tasks.\n")
            self._write_blind_spots()
            return
        counts = ", ".join(
            f"{n} {severity}"
            for severity in _diagnosis.SEVERITIES
            if (n := sum(1 for f in result.findings if f.severity == severity))
        )
        problems = "1 problem" if len(result.findings) == 1 else f"{len(result.findings)} problems"
        self._sout.write(f"{problems} found in {result.tasks} tasks ({counts}), most urgent first.\n")
        for item in result.findings:
            tag = getattr(self._style, _TAGS[item.severity])(f"[{item.severity}]")
            self._sout.write(f"\n{tag} {item.title}\n")
            for line in item.evidence:
                self._sout.write(f"  {line}\n")
            self._sout.write(f"  Why it matters: {item.why}\n")
        self._write_blind_spots()

    def _write_blind_spots(self) -> None:
        """Say which checks could not run, so "no problems" is not read as more than it is."""
        backend = self._context.backend
        off = []
        if self._context.stall_recorder.started_at is None:
            off.append("stalls (stall_threshold=None)")
        if not backend.traced:
            off.append("task leaks (trace_tasks)")
        if not backend.keeps_history:
            off.append("unretrieved exceptions (max_termination_history)")
        if not backend.timed:
            off.append("slow steps (trace_timing)")
        if off:
            self._sout.write(f"Not checked, as the monitor was started: {'; '.join(off)}.\n")
