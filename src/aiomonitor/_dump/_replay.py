"""A bundle's record, replayed: the watchdog, the stall recorder and the flight
recorder as they were when the bundle was taken, for ``lag``, ``trend``,
``ps --stuck``, ``doctor`` and the blocked-loop warnings to read as they
would have then."""

from __future__ import annotations

from .._gil._relay import Relay
from .._query._stalls import StallRecorder
from .._query._trend import TrendRecorder
from .._query._watchdog import LoopWatchdog
from ..backends import Backend, FrameInfo
from ._reading import Bundle


class ReplayedWatchdog(LoopWatchdog):
    """The loop answers, or has been blocked for as long as the bundle says; it never changes."""

    def __init__(self, backend: Backend, blocked_for: float) -> None:
        super().__init__(backend)
        self._recorded_block = blocked_for

    def ping(self) -> Relay:
        answered = Relay()
        if not self._recorded_block:
            answered.set()
        return answered

    def blocked_for(self) -> float:
        return self._recorded_block

    def probe(self, timeout: float = 0.0) -> float:
        return self._recorded_block

    def worst_lag(self, window: float = 0.0) -> float:
        return 0.0


class ReplayedStalls(StallRecorder):
    """The stalls and lag the bundle recorded; nothing more is recorded."""

    def __init__(self, backend: Backend, bundle: Bundle) -> None:
        super().__init__(backend, bundle.stall_threshold, max(1, len(bundle.stalls)))
        self._stalls.extend(bundle.stalls)
        self._count = bundle.stall_count
        self._lag_history.extend(bundle.lag)
        self._recorded_block = bundle.blocked_for
        # The recorder ran when the bundle was taken (if it did): commands read this to say so.
        self.started_at = 0.0 if bundle.records_stalls else None

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 2.0) -> None:
        return None

    def heartbeat_age(self) -> float | None:
        return self._recorded_block if self.started_at is not None else None


class ReplayedTrend(TrendRecorder):
    """The censuses the bundle recorded, and since when its tasks waited where they did."""

    def __init__(self, backend: Backend, bundle: Bundle) -> None:
        trend = bundle.trend
        assert trend is not None
        super().__init__(backend, trend.interval, max(trend.window, trend.interval))
        self._samples.extend(trend.samples)
        for key, described in sorted(trend.keys.items()):
            self._keys[described] = key
        self._key_index = dict(trend.keys)
        self._waiting_since = dict(bundle.waiting_since)
        self.started_at = 0.0

    def key(self, index: int) -> tuple[str, FrameInfo | None]:
        return self._key_index.get(index, ("(other)", None))

    def stuck_since(self) -> dict[int, float]:
        return dict(self._waiting_since)

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 2.0) -> None:
        return None
