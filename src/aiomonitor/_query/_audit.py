"""The audit trail: who changed what, when, and how it went.  Any thread.

Every state-changing action (a cancel, a signal, a console statement, a
control elevation, a web cancel) and every refusal of one is written to the
``aiomonitor.audit`` logger, and the last :data:`AUDIT_SIZE` are kept for
``audit`` and ``/api/v1/audit``; so are failed-login bursts.  Bounded in
memory, and cheap: an append under a lock, never a wait for the app.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from dataclasses import dataclass

#: Entries kept in memory (the logger gets them all).
AUDIT_SIZE = 200

log = logging.getLogger("aiomonitor.audit")


@dataclass(frozen=True)
class AuditEntry:
    """One action, or its refusal."""

    number: int
    #: When (``time.time()``).
    at: float
    #: The client: its address, or its uid and pid on a unix socket, and its session.
    who: str
    #: What was asked: "cancel", "signal", "console", "control", "login", or a custom command's name.
    action: str
    #: What it was asked of: a task (id and name), a signal, a statement's first line.
    target: str
    #: How it went: "done", "cancelled", "refused: ...", "wrong password", ...
    outcome: str

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at))
        target = f" {self.target}" if self.target else ""
        return f"#{self.number} {stamp} {self.who}: {self.action}{target}: {self.outcome}"


class AuditTrail:
    """The last :data:`AUDIT_SIZE` entries of one monitor (thread-safe)."""

    def __init__(self, size: int = AUDIT_SIZE) -> None:
        self._entries: collections.deque[AuditEntry] = collections.deque(maxlen=size)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, who: str, action: str, target: str, outcome: str) -> AuditEntry:
        with self._lock:
            entry = AuditEntry(next(self._numbers), time.time(), who, action, target, outcome)
            self._entries.append(entry)
        log.info("aiomonitor audit: %s", entry.line())
        return entry

    def entries(self) -> list[AuditEntry]:
        """Oldest first."""
        with self._lock:
            return list(self._entries)
