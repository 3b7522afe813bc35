"""The web API and metrics, over real sockets, against real app processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import aiomonitor

from ..support.apps import ROOT
from ..support.helpers import Client, classic_loop_thread, poll
from ..support.web_helpers import one_line_error, request, web_app

FRAMEWORKS = ["asyncio", "uvloop", "trio"]

GUARDED = [
    "/api/v1/status",
    "/api/v1/tasks",
    "/api/v1/ended",
    "/api/v1/tree",
    "/api/v1/lag",
    "/api/v1/stalls",
    "/api/v1/sessions",
    "/api/v1/doctor",
    "/metrics",
]


def test_every_route_but_the_static_files_needs_the_token() -> None:
    with web_app("asyncio") as app:
        for path in GUARDED:
            status, _, body = request("GET", app.base + path)
            assert status == 401, path
            assert "token" in one_line_error(body)
            status, _, body = request("GET", app.base + path, headers={"Authorization": "Bearer nope"})
            assert (status, one_line_error(body)) == (403, "wrong token"), path
            assert request("GET", f"{app.base}{path}?token=nope")[0] == 403, path
            assert request("GET", f"{app.base}{path}?token={app.token}")[0] == 200, path
            assert request("GET", app.base + path, headers=app.auth)[0] == 200, path
        status, _, page = request("GET", app.base + "/")
        assert status == 401 and b"web_url" in page
        assert request("GET", app.base + "/", headers={"Cookie": "aiomonitor_token=nope"})[0] == 403
        status, _, script = request("GET", app.base + "/static/app.js")
        assert status == 200 and b"Authorization" in script


def test_the_page_sets_a_strict_cookie_and_loads_nothing_from_elsewhere() -> None:
    with web_app("asyncio") as app:
        status, headers, page = request("GET", app.url)
        assert status == 200
        cookie = headers["set-cookie"]
        assert cookie.startswith(f"aiomonitor_token={app.token};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        # The cookie alone opens the page (a reload without the token in the URL).
        assert request("GET", app.base + "/", headers={"Cookie": f"aiomonitor_token={app.token}"})[0] == 200
        for body in (
            page,
            request("GET", app.base + "/static/app.js")[2],
            request("GET", app.base + "/static/app.css")[2],
        ):
            text = body.decode()
            # Works offline: no CDN, no font service; the SVG namespace is a name, not a fetch.
            assert "https://" not in text
            assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_tasks_are_paged_filtered_sorted_and_match_ps_j() -> None:
    with web_app("asyncio", extra_tasks=250) as app:
        first = app.get_json("/api/v1/tasks?limit=100")
        second = app.get_json("/api/v1/tasks?limit=100&offset=100")
        assert first["total"] >= 253 and len(first["tasks"]) == 100 and len(second["tasks"]) == 100
        ids = [t["id"] for t in first["tasks"] + second["tasks"]]
        assert len(set(ids)) == 200 and ids == sorted(ids), "id order, no task on two pages"
        by_name = app.get_json("/api/v1/tasks?sort=name&limit=5&filter=extra-")
        assert by_name["matched"] == 250
        assert [t["name"] for t in by_name["tasks"]] == sorted(f"extra-{n}" for n in range(250))[:5]
        oldest = app.get_json("/api/v1/tasks?sort=age&limit=1")["tasks"][0]
        assert oldest["age"] is not None
        (row,) = app.get_json("/api/v1/tasks?filter=parked-job")["tasks"]
        with Client(app.monitor_port) as client:
            client.start()
            (line,) = [json.loads(x) for x in client.command("ps -j parked-job").splitlines() if x.startswith("{")]
        assert row.keys() == line.keys()
        for key in ("id", "name", "state", "coro", "location", "created", "creator_id"):
            assert row[key] == line[key], key


def test_tasks_grouped_are_ps_g_j_paged() -> None:
    with web_app("asyncio", extra_tasks=250) as app:
        page = app.get_json("/api/v1/tasks?group=1&limit=1")
        assert page["grouped"] and page["matched"] >= 253 and page["group_count"] >= 3
        (largest,) = page["groups"]
        assert largest["count"] == 251 and largest["coro"] == "park_here"  # parked-job and the extras
        assert largest["location"]["file"].endswith("web_app.py") and len(largest["examples"]) == 3
        rest = app.get_json("/api/v1/tasks?group=1&offset=1")["groups"]
        assert sum(group["count"] for group in [largest, *rest]) == page["matched"]
        with Client(app.monitor_port) as client:
            client.start()
            lines = [json.loads(x) for x in client.command("ps -g -j").splitlines() if x.startswith("{")]
        assert lines[0].keys() == largest.keys() and lines[0]["count"] == largest["count"]
        assert app.get_json("/api/v1/tasks?group=1&filter=ticker")["groups"][0]["count"] == 1


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1001", "limit"),
        ("offset=99999999999", "offset"),
        ("sort=bogus", "sort"),
        ("colour=red", "unknown parameter"),
        ("filter=" + "x" * 300, "filter"),
        ("all=maybe", "all"),
        ("group=1&sort=name", "group"),
        ("group=maybe", "group"),
    ],
)
def test_bad_parameters_get_a_400_with_one_line(query: str, word: str) -> None:
    with web_app("asyncio") as app:
        status, headers, body = request("GET", f"{app.base}/api/v1/tasks?{query}", headers=app.auth)
        assert status == 400 and headers["content-type"] == "application/json"
        assert word in one_line_error(body)
        for path, expected in [("/api/v1/tasks/abc", 400), ("/api/v1/tasks/12345", 404), ("/api/v1/nothing", 404)]:
            status, _, body = request("GET", app.base + path, headers=app.auth)
            assert status == expected, path
            one_line_error(body)
        assert request("GET", app.base + "/api/v1/status", headers=app.auth)[0] == 200, "the server goes on"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_task_page_shows_its_await_stack_with_source_lines(framework: str) -> None:
    with web_app(framework) as app:
        (task_id,) = app.task_ids("parked-job")
        detail = app.get_json(f"/api/v1/tasks/{task_id}")
        assert detail["name"] == "parked-job" and detail["id"] == task_id
        ours = [f for f in detail["stack"] if f["file"].endswith("web_app.py")]
        assert ours and "park_here" in ours[0]["function"]
        assert "sleep(3600)" in ours[0]["source"]
        assert detail["created"] is not None, "tracing is on: where it was created"


def test_with_a_control_token_the_plain_token_only_reads() -> None:
    control = "control-token-for-tests"  # (tests/support/programs/web_app.py's)
    with web_app("asyncio", control=True) as app:
        (task_id,) = app.task_ids("victim")  # the plain token reads
        url = f"{app.base}/api/v1/tasks/{task_id}/cancel"
        status, _, body = request("POST", url, headers={**app.auth, "Origin": app.base})
        assert status == 403 and one_line_error(body) == "wrong token"
        _, _, read_page = request("GET", app.url)
        assert b'name="aiomonitor-readonly" content="1"' in read_page  # no cancel button
        _, _, control_page = request("GET", f"{app.base}/?token={control}")
        assert b'name="aiomonitor-readonly" content="0"' in control_page
        status, _, body = request("POST", url, headers={"Authorization": f"Bearer {control}", "Origin": app.base})
        assert status == 200 and json.loads(body)["requested"] is True
        # Who changed what: for the control token only.
        assert request("GET", f"{app.base}/api/v1/audit", headers=app.auth)[0] == 403
        status, _, body = request("GET", f"{app.base}/api/v1/audit", headers={"Authorization": f"Bearer {control}"})
        entries = json.loads(body)["entries"]
        assert status == 200 and [e["action"] for e in entries] == ["cancel", "cancel"]  # newest first
        done, refused = entries
        assert refused["outcome"] == "refused: wrong token" and refused["target"] == f"task {task_id}"
        assert done["target"] == f"task {task_id} (victim)" and done["outcome"] in ("cancelled", "requested")
        assert done["who"].startswith("web 127.0.0.1:")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cancel_needs_the_header_and_our_origin_then_ends_the_task(framework: str) -> None:
    with web_app(framework) as app:
        (task_id,) = app.task_ids("victim")
        url = f"{app.base}/api/v1/tasks/{task_id}/cancel"
        # What a cross-site form could send: the cookie (SameSite aside), no header.
        status, _, body = request("POST", url, headers={"Cookie": f"aiomonitor_token={app.token}"})
        assert status == 401 and "Authorization" in one_line_error(body)
        wrong_header = {"Authorization": "Bearer nope"}
        status, _, _ = request("POST", f"{url}?token={app.token}", headers=wrong_header)
        assert status == 403, "the query's token does not stand in for a wrong header"
        status, _, body = request("POST", url, headers={**app.auth, "Origin": "http://evil.example"})
        assert status == 403 and "evil.example" in one_line_error(body)
        assert request("GET", url, headers=app.auth)[0] == 405
        assert app.task_ids("victim") == [task_id], "nothing was cancelled by the refused requests"
        origin = app.base
        status, _, body = request("POST", url, headers={**app.auth, "Origin": origin})
        assert status == 200, body
        assert json.loads(body)["requested"] is True
        assert poll(lambda: app.task_ids("victim") == [])
        assert app.process.stdout is not None
        assert app.process.stdout.readline().strip() == "victim cancelled"
        if framework == "trio":  # (asyncio's history hears of a task when it is collected, not when it ends)
            ended = app.get_json("/api/v1/ended?filter=victim")["ended"]
            assert [(e["name"], e["outcome"]) for e in ended] == [("victim", "cancelled")]


def test_metrics_are_prometheus_text_from_a_registry_of_the_monitor_s_own() -> None:
    with web_app("asyncio", extra_tasks=40) as app:
        status, headers, body = request("GET", f"{app.base}/metrics", headers=app.auth)
        assert status == 200 and headers["content-type"].startswith("text/plain; version=")
        families = {family.name: family for family in text_string_to_metric_families(body.decode())}
        states = {s.labels["state"]: s.value for s in families["aiomonitor_tasks"].samples}
        assert sum(states.values()) == app.get_json("/api/v1/tasks?limit=0")["total"]
        coroutines = {s.labels["coroutine"]: s.value for s in families["aiomonitor_tasks_by_coroutine"].samples}
        assert coroutines["park_here"] == 41  # parked-job and the 40 extra
        (info,) = families["aiomonitor_info"].samples
        assert info.labels["framework"] == "asyncio" and info.labels["version"] == aiomonitor.__version__
        assert "aiomonitor_loop_lag_peak_seconds" in families
        (created,) = families["aiomonitor_tasks_created"].samples
        assert created.name == "aiomonitor_tasks_created_total" and created.value >= 43
        assert "aiomonitor_tasks_ended" in families, "tracing with a history counts endings"
        assert "aiomonitor_loop_stalls" in families
        assert "python_gc_objects_collected" not in families, "never the process-global registry"
        served = {sample.name for family in families.values() for sample in family.samples}
        dashboard = (ROOT / "examples" / "grafana-dashboard.json").read_text()
        wanted = set(re.findall(r"aiomonitor_[a-z_]+", dashboard))
        assert wanted and wanted <= served, "the example dashboard asks only for metrics we serve"


def test_trio_metrics_count_every_task_by_its_own_coroutine() -> None:
    with web_app("trio", extra_tasks=40) as app:
        status, _, body = request("GET", f"{app.base}/metrics", headers=app.auth)
        assert status == 200
        families = {family.name: family for family in text_string_to_metric_families(body.decode())}
        states = {s.labels["state"]: s.value for s in families["aiomonitor_tasks"].samples}
        assert sum(states.values()) == app.get_json("/api/v1/tasks?limit=0&all=1")["total"]
        coroutines = {s.labels["coroutine"]: s.value for s in families["aiomonitor_tasks_by_coroutine"].samples}
        parked = {name: count for name, count in coroutines.items() if name.endswith("trio_park_here")}
        assert list(parked.values()) == [41], coroutines  # parked-job and the 40 extra, not our wrapper


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_api_answers_while_the_loop_is_blocked_and_shows_the_blocking_stack(framework: str) -> None:
    with web_app(framework) as app:
        assert app.get_json("/api/v1/status")["blocked"] is None
        os.kill(app.process.pid, signal.SIGUSR1)
        seen: dict[str, object] = {}

        def blocked() -> bool:
            status = app.get_json("/api/v1/status")
            seen.update(status)
            return status["blocked"] is not None

        assert poll(blocked)
        functions = [frame["function"] for frame in seen["blocked"]["stack"]]  # type: ignore[index]
        assert "block_the_loop" in functions
        # Still blocked (4 s): the tasks and the page are served by the monitor's thread.
        assert app.get_json("/api/v1/tasks?filter=parked-job")["matched"] == 1
        assert request("GET", app.url)[0] == 200
        assert poll(lambda: app.get_json("/api/v1/status")["blocked"] is None)


def test_idle_connections_by_the_hundred_never_lock_out_a_request() -> None:
    with web_app("asyncio") as app:
        port = app.web_port
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        try:
            # Half a request head each: waiting for the rest, they hold their places.
            for sock in idle[::2]:
                sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            status, _, _ = request("GET", app.base + "/api/v1/status", headers=app.auth)
            assert status == 200
            assert time.monotonic() - started < 5.0, "not behind the idle crowd"
        finally:
            for sock in idle:
                sock.close()


def test_garbage_and_oversized_requests_get_an_error_and_the_server_goes_on() -> None:
    with web_app("asyncio") as app:
        port = app.web_port
        for junk, expected in [
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n", b" 400 "),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n", b" 431 "),
            (b"DELETE /api/v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n", b" 405 "),
            (b"POST /api/v1/tasks/1/cancel HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n" + b"x" * 20_000, b" "),
        ]:
            with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
                sock.sendall(junk)
                answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1") and expected in answer.split(b"\r\n")[0], answer[:80]
        assert request("GET", app.base + "/api/v1/status", headers=app.auth)[0] == 200


def test_web_port_without_the_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['h11'] = None\n"
        "import aiomonitor\n"
        "try:\n"
        "    aiomonitor.Monitor(web_port=0)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "pip install 'aiomonitor[web]'" in result.stdout


def test_two_monitors_in_one_process_serve_their_own_metrics_and_close_cleanly() -> None:
    import asyncio
    import threading

    threads_before = threading.active_count()
    loop = asyncio.new_event_loop()
    try:
        first = aiomonitor.Monitor(loop, port=0, console_port=0, web_port=0, discoverable=False)
        second = aiomonitor.Monitor(loop, port=0, console_port=0, web_port=0, discoverable=False)
        assert first.web_url is None, "no address before start"
        with first, second:
            assert first.web_url is not None and second.web_url is not None
            assert first.web_url != second.web_url
            for url in (first.web_url, second.web_url):
                base, token = url.split("/?token=")
                status, _, body = request("GET", f"{base}/metrics?token={token}")
                assert status == 200 and b"aiomonitor_info" in body
                wrong = second.web_url.split("token=")[1] if url == first.web_url else first.web_url.split("token=")[1]
                assert request("GET", f"{base}/metrics?token={wrong}")[0] == 403, "each its own token"
            port = first.web_port
        assert port is not None
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, "the web port is closed with the monitor"
        assert poll(lambda: threading.active_count() <= threads_before)
    finally:
        loop.close()


@pytest.fixture(scope="module")
def web_monitor() -> Iterator[aiomonitor.Monitor]:
    """A monitor with the web on, in this process (a loop run in a thread)."""

    def make(loop: asyncio.AbstractEventLoop) -> aiomonitor.Monitor:
        return aiomonitor.Monitor(loop, port=0, console_port=0, web_port=0, discoverable=False)

    with classic_loop_thread(make) as (monitor, _):
        yield monitor


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.binary(max_size=300)
        | st.sampled_from([b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n", b"Content-Length: 5\r\n", b"\x00\xff"]),
        max_size=8,
    )
)
def test_any_bytes_get_an_http_answer_or_a_close_and_the_server_goes_on(
    web_monitor: aiomonitor.Monitor, pieces: list[bytes]
) -> None:
    port = web_monitor.web_port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"".join(pieces))
        sock.shutdown(socket.SHUT_WR)  # the end of what it says: the server must not wait for more
        answer = bytearray()
        while chunk := sock.recv(65536):
            answer += chunk
    if answer:
        status_line = bytes(answer).split(b"\r\n", 1)[0]
        assert re.fullmatch(rb"HTTP/1\.1 [1-5]\d\d .*", status_line), status_line
    url = web_monitor.web_url
    assert url is not None
    assert request("GET", url.replace("/?token=", "/api/v1/lag?token="))[0] == 200
