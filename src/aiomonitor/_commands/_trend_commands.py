"""``trend``: the flight recorder's census over time (see ``_query/_trend``)."""

from __future__ import annotations

from .._render import _format
from ..utils import readonly
from ._context import CommandBase

#: What the commands say when the flight recorder is off.
RECORDER_OFF = "the flight recorder is off (Monitor(trend_interval=None))"


class TrendCommands(CommandBase):
    """``trend``."""

    @readonly
    def do_trend(self, *args: str) -> None:
        """Show which groups of alike tasks grew or shrank, and since when

        Usage: trend [-j]: the flight recorder counts the tasks of each
        group (the same coroutine waiting at the same line, as ps -g folds
        them) every few seconds over the last 15 minutes; this lists each
        group's count now, a minute and five minutes ago and at the first
        census kept, the change, and since when it has only grown (or only
        shrunk), largest change first.  -j prints the censuses as JSON.
        """
        unknown = [a for a in args if a not in ("-j", "--json")]
        if unknown:
            self._sout.write(f"trend takes only -j, not {unknown[0]!r}\n")
            return
        recorder = self._context.trend
        if recorder is None:
            self._sout.write(f"trend: {RECORDER_OFF}\n")
            return
        if args:
            import json

            self._sout.write(json.dumps(recorder.to_json()) + "\n")
            return
        trends = self._compute(recorder.trends)
        text = _format.trend_text(trends, len(recorder.samples()), recorder.interval, self._width, self._style)
        self._sout.write(text)
