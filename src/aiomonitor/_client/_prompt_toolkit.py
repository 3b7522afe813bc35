"""The client's prompt_toolkit front end (``pip install 'aiomonitor[client]'``).

Kept apart so the client still works, with ``readline``, without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory

#: What may complete the text before the cursor: (candidate, a note shown beside it).
Candidates = Callable[[str], Iterable[tuple[str, str]]]


class _MonitorCompleter(Completer):
    def __init__(self, candidates: Candidates) -> None:
        self._candidates = candidates

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        for candidate, meta in self._candidates(document.text_before_cursor):
            if candidate.startswith(word):
                yield Completion(candidate, start_position=-len(word), display_meta=meta)


def prompt_toolkit_reader(history: Path | None, candidates: Candidates) -> Callable[[str], str]:
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)) if history is not None else InMemoryHistory(),
        completer=_MonitorCompleter(candidates),
        # Synchronous, so Tab inserts a unique match at once; queries are local and cached.
        complete_in_thread=False,
        complete_while_typing=False,  # on Tab only: no query to the server per keystroke
    )

    def read(prompt: str) -> str:
        return session.prompt(prompt)

    return read
