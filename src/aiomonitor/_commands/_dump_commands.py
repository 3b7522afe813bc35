"""``dump``: the whole process as one JSON bundle (see ``_dump/_bundle``)."""

from __future__ import annotations

from .._dump._bundle import bundle_text
from ..utils import readonly
from ._context import CommandBase


class DumpCommands(CommandBase):
    """``dump``."""

    @readonly
    def do_dump(self, *args: str) -> None:
        """Write everything shown of every task as one JSON bundle

        Usage: dump: one line of JSON with the process, every task with its
        full stack, wait and creation chain, the await tree, the ended tasks,
        the stalls, the lag and doctor's findings (read-only; works while
        the loop is blocked).  ``aiomonitor dump`` saves it to a file, and
        ``aiomonitor open FILE`` reads it back with the same commands.
        """
        if args:
            self._sout.write(f"dump takes no arguments, not {args[0]!r} (aiomonitor dump -o FILE saves it)\n")
            return
        source = self._context.bundles
        if source is None:
            self._sout.write("dump is not available in this monitor\n")
            return
        self._write_all(self._compute_text(bundle_text, source))
