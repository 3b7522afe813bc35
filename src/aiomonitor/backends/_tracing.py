"""What the monitor remembers about tasks: creation, ending, cancellation.

Shared by both backends.  Everything on the hot path (once per task created
or ended) stores plain tuples of references: a memoised FrameInfo, the
parent's record, a timestamp, the raw outcome.  Text is made only when a
command asks; on a trivial task every object allocated shows in the
tracing benchmark.
"""

from __future__ import annotations

import collections
import itertools
import operator
import sys
import threading
from collections.abc import Callable, Iterable
from types import CodeType, FrameType
from typing import Any, cast

from ._frames import is_library
from ._records import FRAME_INFO_CACHE_SIZE, Canceller, EndedTask, FrameInfo, TaskRecord
from ._timing import StepStats, TimedCoroutine

#: How many frames of the canceller's stack are kept (only on cancel, rare).
CANCELLER_STACK_DEPTH = 12


#: What the hot path stores per task: (task id, created, parent's raw record,
#: created_at, depth: how many creators it has).  A plain tuple: a
#: NamedTuple's __new__ costs a Python call.
RawRecord = tuple[int, "FrameInfo | None", Any, float, int]

#: A record links to its creator's, which links to its own creator's...  so
#: one live task could pin the records of every ancestor that ever lived (a
#: task that spawns its successor and ends, 200,000 times over, held 10 MB).
#: Every CHAIN_CUT generations the link is cut: the record points at fresh
#: copies of its CHAIN_KEEP nearest ancestors instead.  Any record then pins
#: at most CHAIN_CUT + CHAIN_KEEP others, and always shows its CHAIN_KEEP
#: nearest creators; the depth says how many more there were.
CHAIN_CUT = 64
CHAIN_KEEP = 16


def raw_record(task_id: int, created: FrameInfo | None, parent: RawRecord | None, created_at: float) -> RawRecord:
    """A task's raw record; every CHAIN_CUT generations its creators' chain is
    shortened, so a record never holds more than CHAIN_CUT + CHAIN_KEEP links."""
    if parent is None:
        return (task_id, created, None, created_at, 0)
    depth = parent[4] + 1
    if not depth % CHAIN_CUT:
        parent = shortened_chain(parent)
    return (task_id, created, parent, created_at, depth)


def shortened_chain(raw: RawRecord) -> RawRecord:
    """Copies of *raw* and its nearest ancestors, CHAIN_KEEP records in all."""
    links: list[RawRecord] = []
    link: RawRecord | None = raw
    while link is not None and len(links) < CHAIN_KEEP:
        links.append(link)
        link = link[2]
    copy: RawRecord | None = None
    for task_id, created, _, created_at, depth in reversed(links):
        copy = (task_id, created, copy, created_at, depth)
    assert copy is not None
    return copy


def to_record(raw: RawRecord | None) -> TaskRecord | None:
    """The readable form of a raw record (and of its creators), without recursion."""
    links: list[RawRecord] = []
    while raw is not None:
        links.append(raw)
        raw = raw[2]
    record: TaskRecord | None = None
    for task_id, created, _, created_at, depth in reversed(links):
        record = TaskRecord(task_id, created, record, created_at, depth)
    return record


#: The six tracing fields of a TaskSnapshot when nothing is traced.
NO_TRACE_FIELDS: tuple[None, ...] = (None,) * 6


def trace_fields(record: RawRecord | None, stats: StepStats | None) -> tuple[Any, ...]:
    """TaskSnapshot's created, created_at, creator_id, steps, busy, longest_step."""
    if record is None and stats is None:
        return NO_TRACE_FIELDS
    return (
        None if record is None else record[1],
        None if record is None else record[3],
        None if record is None or record[2] is None else record[2][0],
        None if stats is None else stats.steps,
        None if stats is None else stats.busy,
        None if stats is None else stats.longest,
    )


def trace_columns(records: list[RawRecord | None], stats: list[StepStats | None] | None) -> list[list[Any]]:
    """TaskSnapshot's six tracing fields for many tasks, as columns
    (``trace_fields`` of each): C-level passes when every task is traced
    and none is timed (*stats* None), or none is traced; else a call each."""
    count = len(records)
    if stats is None and records.count(None) == count:  # not traced
        return [[None] * count for _ in range(6)]
    if stats is not None or None in records:  # the rarer mixes
        rows = list(map(trace_fields, records, stats or itertools.repeat(None)))
        return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(6)]
    present = cast("list[RawRecord]", records)
    creators = creator_ids(list(map(operator.itemgetter(2), present)))
    untimed = [[None] * count for _ in range(3)]
    return [list(map(operator.itemgetter(1), present)), list(map(operator.itemgetter(3), present)), creators, *untimed]


def creator_ids(parents: list[Any]) -> list[int | None]:
    """The task ids of these creators' raw records (None for None), in C-level passes."""
    if None in parents:  # made outside any task: (None,) stands in, so one itemgetter reads every creator
        is_set = map(operator.is_not, parents, itertools.repeat(None))
        parents = list(map(operator.getitem, zip(itertools.repeat((None,)), parents, strict=False), is_set))
    return list(map(operator.itemgetter(0), cast("list[RawRecord]", parents)))


#: A finished task's raw facts, as the loop thread records them: the first
#: four fields of its raw record (task id, created, creator's raw record,
#: created_at; created_at None when it had no record), then name, coroutine,
#: ended_at, cancelled, result or summary, canceller.  Flat, so the task's
#: record tuple need not be made as it ends.
RawEnding = tuple[int, "FrameInfo | None", Any, "float | None", str, Any, float, bool, Any, "Canceller | None"]

#: The record fields of an ending whose task had none.
NO_RECORD: tuple[int, None, None, None] = (0, None, None, None)


#: How far above a library's spawning frame we look for the app's own line.
USER_FRAME_SEARCH = 6


def prefer_user_frame(frame: FrameType) -> FrameType:
    """From a library frame (anyio's start_soon, aiohttp's server), the app's
    own caller if it is near; else the library frame itself, rather than
    wandering out to ``asyncio.run``."""
    candidate: FrameType | None = frame.f_back
    for _ in range(USER_FRAME_SEARCH):
        if candidate is None:
            break
        if not is_library(candidate.f_code.co_filename):
            return candidate
        candidate = candidate.f_back
    return frame


def caller_frame(skip_files: frozenset[str], depth: int = 2) -> FrameType | None:
    """Where a task was created: the first frame above our caller outside the
    framework (*skip_files*), moved up to the app's own code if it is near."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None and frame.f_code.co_filename in skip_files:
        frame = frame.f_back
    if frame is not None and is_library(frame.f_code.co_filename):
        frame = prefer_user_frame(frame)
    return frame


class CreationSites:
    """Where tasks are created, memoised for the app's own lines.

    The tracers' hot paths look a frame's (code, instruction) up in ``memo``
    (keyed by ``id(code)``: hashing a code object hashes its content; the
    entry keeps the code alive, so the id is not reused) and call
    :meth:`resolve` only for a frame not seen before.  A library frame
    (anyio's start_soon, a server's spawn) is looked through to the app's
    caller, which differs per call, so it is never memoised.
    """

    def __init__(self) -> None:
        self.memo: dict[tuple[int, int], tuple[CodeType, FrameInfo]] = {}

    def resolve(self, frame: FrameType) -> tuple[FrameInfo, bool]:
        """The site of a task created in *frame*, and whether it was memoised."""
        code = frame.f_code
        if is_library(code.co_filename):
            return FrameInfo.from_frame(prefer_user_frame(frame)), False
        site = FrameInfo.from_frame(frame)
        if len(self.memo) >= FRAME_INFO_CACHE_SIZE:
            self.memo.clear()
        self.memo[(id(code), frame.f_lasti)] = (code, site)
        return site, True


def stack_above(
    frame: FrameType | None, limit: int = CANCELLER_STACK_DEPTH, stop_files: frozenset[str] = frozenset()
) -> tuple[FrameInfo, ...]:
    """*frame* and its callers, outermost first, up to *limit* frames or the
    first frame of *stop_files* (the loop's own machinery: noise to a reader)."""
    frames: list[FrameInfo] = []
    while frame is not None and len(frames) < limit and frame.f_code.co_filename not in stop_files:
        frames.append(FrameInfo.from_frame(frame))
        frame = frame.f_back
    return tuple(reversed(frames))


#: Results of these types are kept as they are (small, immutable); of any other
#: type only the type is kept: a history must not pin big payloads in memory.
KEPT_RESULT_TYPES = frozenset({int, float, bool, type(None), str, bytes})


def keepable(value: object) -> object:
    if type(value) in KEPT_RESULT_TYPES and (not isinstance(value, (str, bytes)) or len(value) <= 60):
        return value
    return type(value)


def describe_outcome(cancelled: bool, value: Any) -> str:
    if cancelled:
        return "cancelled"
    if value == "destroyed while pending":
        return "destroyed while pending"
    if isinstance(value, tuple) and len(value) == 2 and value[0] in ("raised", NEVER_RETRIEVED):
        return f"raised {value[1]}" + (f" ({NEVER_RETRIEVED})" if value[0] == NEVER_RETRIEVED else "")
    if isinstance(value, type):
        return f"returned a {value.__qualname__}"
    return f"returned {value!r}"


#: Marks an ended task's exception that nobody retrieved (asyncio logs these).
NEVER_RETRIEVED = "never retrieved"


def exception_summary(exc: BaseException) -> tuple[str, str]:
    """("raised", "ValueError('boom')"): taken when the task ends (exceptions are rare)."""
    text = f"{type(exc).__name__}({str(exc)[:100]!r})" if exc.args else f"{type(exc).__name__}()"
    return ("raised", text)


class History:
    """The last N ended tasks (appended in the loop thread, read by commands)."""

    def __init__(self, size: int) -> None:
        self._ended: collections.deque[RawEnding] = collections.deque(maxlen=max(size, 0))
        self._lock = threading.Lock()
        # The deque's own append, not a method wrapping it: called for every
        # ended task, and atomic under the GIL (the lock guards readers' copies).
        self.add: Callable[[RawEnding], None] = self._ended.append
        # Entry numbers, given when a reader first sees an entry (the hot path
        # stays a bare append): id(raw entry) -> (number, the entry, kept
        # alive so its id is not reused while it is numbered).
        self._numbers: dict[int, tuple[int, RawEnding]] = {}
        self._next_number = 1
        #: Ended tasks seen since the start, kept or not (the loop thread
        #: increments it after ``add``; ``/metrics`` reads it).
        self.added = 0

    @property
    def size(self) -> int:
        """How many ended tasks it keeps."""
        return self._ended.maxlen or 0

    def resize(self, size: int) -> None:
        """Keep *size* entries from now on (the newest of those kept): tracing
        switched on again, maybe with another length.  Writers call ``add``
        anew each time, so every writer moves to the new deque at once."""
        with self._lock:
            self._ended = collections.deque(self._ended, maxlen=max(size, 0))
            self.add = self._ended.append

    def items(self) -> list[EndedTask]:
        with self._lock:
            raws = list(self._ended)
            numbers: dict[int, tuple[int, RawEnding]] = {}
            for raw in raws:  # oldest first, so numbers grow with age
                known = self._numbers.get(id(raw))
                if known is None:
                    known = (self._next_number, raw)
                    self._next_number += 1
                numbers[id(raw)] = known
            self._numbers = numbers
        return [self._describe(numbers[id(raw)][0], raw) for raw in raws]

    @staticmethod
    def _describe(number: int, raw: RawEnding) -> EndedTask:
        task_id, created, parent, created_at, name, coro, ended_at, cancelled, value, canceller = raw
        if type(coro) is TimedCoroutine:
            coro = coro.coro
        coro_name = getattr(coro, "__qualname__", None) or type(coro).__qualname__
        outcome = describe_outcome(cancelled, value)
        record = None if created_at is None else to_record(raw_record(task_id, created, parent, created_at))
        return EndedTask(number, name, coro_name, record, ended_at, outcome, canceller, task_id)


def framework_files(*modules: Any) -> frozenset[str]:
    """Source files of these packages' modules: creation sites skip them."""
    files: set[str] = set()
    for module in modules:
        prefix = module.__name__ + "."
        files.update(
            getattr(mod, "__file__", None) or ""
            for name, mod in list(sys.modules.items())
            if name == module.__name__ or name.startswith(prefix)
        )
    files.discard("")
    return frozenset(files)


#: Live tasks looked at for the bytes per task (``tracing_memory``).
MEMORY_SAMPLE = 1000


def chain_bytes(creators: Iterable[RawRecord | None], live: set[int]) -> int:
    """Bytes of the records of *creators* (tasks' creators' raw records) and
    of their own creators, that belong to no live task (whose own record is
    counted per task): each once."""
    seen: set[int] = set()
    total = 0
    for parent in creators:
        while parent is not None and id(parent) not in seen:
            seen.add(id(parent))
            if parent[0] not in live:
                total += sys.getsizeof(parent)
            parent = parent[2]
    return total


def history_bytes(history: History) -> int:
    """Bytes the ended-task history holds: its entries and what they keep."""
    with history._lock:
        entries = list(history._ended)
    total = sys.getsizeof(history._ended)
    for entry in entries:
        total += sys.getsizeof(entry) + sum(sys.getsizeof(item) for item in entry if item is not None)
    return total
