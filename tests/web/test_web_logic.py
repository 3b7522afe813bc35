"""Pure logic of the web API: parameters, access checks, request targets, metrics shapes."""

from __future__ import annotations

import asyncio
import contextlib
import string
import urllib.request
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiomonitor
from aiomonitor._query._queries import TASK_SORT_KEYS
from aiomonitor._web import _http, _metrics
from aiomonitor._web import _params as _web_params
from aiomonitor._web._params import BadParameter, Denied
from aiomonitor.backends import asyncio_backend

from ..support.helpers import classic_loop_thread

T = TypeVar("T")
R = TypeVar("R")

TOKEN = "s3cret-token_x"
PARAMETER_NAMES = ["filter", "sort", "limit", "offset", "all", "token", "colour", ""]
texts = st.text(max_size=400) | st.sampled_from(["", "0", "1", "100", "-1", "0x10", "1e3", " 5", "٣", "1001", "age"])


def _outcome(func: Callable[[T], R], argument: T) -> tuple[R | None, str]:
    """``func(argument)``, or None and the BadParameter's message."""
    try:
        return func(argument), ""
    except BadParameter as exc:
        return None, str(exc)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(PARAMETER_NAMES) | st.text(max_size=20), texts, max_size=6))
def test_any_tasks_parameters_are_a_page_or_one_line_of_why_not(params: dict[str, str]) -> None:
    page, message = _outcome(_web_params.task_page, params)
    if page is None:
        assert message and "\n" not in message and len(message) < 200
        return
    assert 0 <= page.limit <= _web_params.MAX_PAGE and 0 <= page.offset <= _web_params.MAX_OFFSET
    assert page.query.limit == page.offset + page.limit
    assert page.query.sort is None or page.query.sort in TASK_SORT_KEYS
    assert all(word == word.lower() for word in page.query.filters)


@given(st.dictionaries(st.sampled_from(["filter", "limit", "offset", "x"]), texts, max_size=4))
def test_any_ended_parameters_are_a_page_or_one_line_of_why_not(params: dict[str, str]) -> None:
    page, message = _outcome(_web_params.ended_page, params)
    if page is None:
        assert message and "\n" not in message
        return
    assert 0 <= page.limit <= _web_params.MAX_PAGE


@given(st.text(max_size=60))
def test_any_task_id_text_is_an_id_or_a_bad_parameter(text: str) -> None:
    number, message = _outcome(_web_params.task_id, text)
    if number is None:
        assert message and "\n" not in message
        return
    assert number >= 0


def test_the_defaults_and_the_edges_of_a_page() -> None:
    page = _web_params.task_page({})
    assert (page.offset, page.limit, page.query.filters, page.query.sort) == (0, 100, (), None)
    page = _web_params.task_page({"filter": " Worker  QUEUE ", "sort": "age", "limit": "5", "offset": "10", "all": "1"})
    assert page.query.filters == ("worker", "queue") and page.query.limit == 15 and page.query.include_own
    assert _web_params.task_page({"token": "anything"}).limit == 100, "the token is no unknown parameter"
    for bad in ({"limit": "1001"}, {"limit": "-1"}, {"offset": "1e3"}, {"sort": "bogus"}, {"all": "2"}):
        with pytest.raises(BadParameter):
            _web_params.task_page(bad)
    assert _web_params.task_id("0x10") == 16 and _web_params.task_id("42") == 42


@pytest.mark.parametrize(
    ("headers", "query", "cookie", "outcome"),
    [
        ({}, {}, None, 401),
        ({"authorization": f"Bearer {TOKEN}"}, {}, None, False),
        ({"authorization": f"bearer  {TOKEN} "}, {}, None, False),
        ({"authorization": f"Basic {TOKEN}"}, {}, None, 401),
        ({"authorization": "Bearer wrong"}, {}, None, 403),
        ({}, {"token": TOKEN}, None, True),
        ({}, {"token": ""}, None, 403),
        ({}, {}, TOKEN, False),
        ({}, {}, "wrong", 403),
        ({"authorization": "Bearer wrong"}, {"token": TOKEN}, None, True),
    ],
)
def test_the_token_is_taken_from_the_header_the_query_or_the_cookie(
    headers: dict[str, str], query: dict[str, str], cookie: str | None, outcome: int | bool
) -> None:
    if isinstance(outcome, bool):
        assert _web_params.check_token((TOKEN,), headers, query, cookie) == (outcome, TOKEN)
        return
    with pytest.raises(Denied) as denied:
        _web_params.check_token((TOKEN,), headers, query, cookie)
    assert denied.value.status == outcome


@given(st.dictionaries(st.sampled_from(["authorization", "cookie", "x"]), st.text(max_size=80)), st.text(max_size=80))
def test_no_header_or_query_but_the_token_itself_opens(headers: dict[str, str], offered: str) -> None:
    try:
        _web_params.check_token((TOKEN, "another-token"), headers, {"token": offered})
        status = 200
    except Denied as exc:
        status = exc.status
    tokens = (TOKEN, "another-token")
    if status != 200:
        assert status in (401, 403)
        assert offered not in tokens or headers.get("authorization", "").lower().split(" ")[0] != "bearer"
        return
    header = headers.get("authorization", "").strip()
    assert offered in tokens or header in {f"{scheme} {token}" for scheme in ("Bearer", "bearer") for token in tokens}


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://127.0.0.1:8080", True),
        ("HTTP://127.0.0.1:8080", True),
        ("http://127.0.0.1:9999", False),
        ("http://evil.example", False),
        ("null", False),
    ],
)
def test_a_change_from_another_origin_is_refused(origin: str | None, allowed: bool) -> None:
    headers = {"host": "127.0.0.1:8080"}
    if origin is not None:
        headers["origin"] = origin
    if allowed:
        _web_params.check_origin(headers)
    else:
        with pytest.raises(Denied) as denied:
            _web_params.check_origin(headers)
        assert denied.value.status == 403


@given(st.binary(max_size=200))
def test_any_request_target_is_a_path_and_query_or_a_value_error(target: bytes) -> None:
    try:
        path, query = _http.parse_target(target)
    except (ValueError, UnicodeError):
        return
    assert path.startswith("/")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in query.items())


def test_a_target_s_query_keeps_the_first_value_of_each_name() -> None:
    assert _http.parse_target(b"/api/v1/tasks?filter=a%20b&limit=5&limit=6&all") == (
        "/api/v1/tasks",
        {"filter": "a b", "limit": "5", "all": ""},
    )


@given(st.dictionaries(st.text(alphabet=string.ascii_letters, min_size=1, max_size=8), st.integers(1, 1000)))
def test_the_coroutine_label_is_bounded_and_the_counts_add_up(counts: dict[str, int]) -> None:
    shown = _metrics.top_with_other(counts, 5)
    assert len(shown) <= 6
    assert sum(n for _, n in shown) == sum(counts.values())
    names = [name for name, _ in shown]
    assert len(set(names)) == len(names), "one sample per label value"
    ranked = [n for name, n in shown if name != "other"]
    assert ranked == sorted(ranked, reverse=True) and len(ranked) <= 5


@given(st.lists(st.floats(0, 20), max_size=300))
def test_lag_buckets_are_cumulative_and_end_with_everything(peaks: list[float]) -> None:
    buckets = _metrics.lag_buckets(peaks)
    counts = [count for _, count in buckets]
    assert counts == sorted(counts) and buckets[-1] == ("+Inf", len(peaks))


@pytest.mark.parametrize("timing", [False, True])
def test_the_census_counts_what_a_snapshot_shows(timing: bool) -> None:
    async def parked() -> None:
        await asyncio.sleep(3600)

    async def other() -> None:
        await asyncio.sleep(3600)

    with classic_loop_thread(lambda loop: contextlib.nullcontext()) as (_, loop):
        backend = asyncio_backend(loop, timing=timing)
        backend.attach()
        try:

            async def spawn() -> list[asyncio.Task[None]]:
                return [asyncio.create_task(parked()) for _ in range(30)] + [asyncio.create_task(other())]

            tasks = asyncio.run_coroutine_threadsafe(spawn(), loop).result(10)
            census = backend.census()
            snapshot = list(backend.snapshot())
            assert census.total == len(snapshot)
            by_coro = {name.rsplit(".", 1)[-1]: count for name, count in census.by_coro.items()}
            assert by_coro["parked"] == 30 and by_coro["other"] == 1
            assert census.by_state == {"pending": len(snapshot)}
        finally:

            async def end(tasks: list[asyncio.Task[None]]) -> None:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(end(tasks), loop).result(10)
            backend.detach()


@pytest.mark.parametrize("token", ["", "has space", "semi;colon", "naïve", "line\nbreak"])
def test_a_web_token_that_could_not_travel_in_a_header_url_and_cookie_is_refused(token: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="web_token"):
            aiomonitor.Monitor(loop, web_port=0, web_token=token, discoverable=False)
    finally:
        loop.close()


def test_a_chosen_web_token_is_used_as_given() -> None:
    loop = asyncio.new_event_loop()
    try:
        with aiomonitor.Monitor(
            loop, port=0, console_port=0, web_port=0, web_token="A-b_c.9~+/=", discoverable=False
        ) as m:
            assert m.web_url is not None
            with urllib.request.urlopen(m.web_url.replace("/?", "/api/v1/lag?"), timeout=15) as answer:
                assert answer.status == 200, "the address works as given, '+' and '/' included"
    finally:
        loop.close()


@given(st.text(max_size=60))
def test_a_path_maps_to_one_route_pattern_or_stays_itself(tail: str) -> None:
    from aiomonitor._web._routes import _pattern

    for path in (tail, "/api/v1/tasks/" + tail, "/static/" + tail):
        pattern = _pattern(path)
        assert pattern == path or pattern in {"/static/{name}", "/api/v1/tasks/{id}", "/api/v1/tasks/{id}/cancel"}
    assert _pattern("/api/v1/tasks/123") == "/api/v1/tasks/{id}"
    assert _pattern("/api/v1/tasks/0x1f/cancel") == "/api/v1/tasks/{id}/cancel"
    assert _pattern("/api/v1/tasks/1/2/3") == "/api/v1/tasks/1/2/3"  # no such route: a 404
