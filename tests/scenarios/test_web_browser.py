"""The dashboard in a real browser: headless Chromium driven by Playwright.

Chromium comes from the system (Debian's ``chromium``, which ``.ci/run``
installs); Playwright only drives it, it downloads nothing.  Without a
browser these tests skip, unless ``AIOMONITOR_REQUIRE_BROWSER`` is set (as
CI sets it), where a missing browser is a failure, not a silent pass.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ..support.fleet import bundle_on_the_web
from ..support.helpers import poll
from ..support.web_helpers import WebApp, request, web_app

#: Milliseconds a page may take to show what a test waits for.
WAIT_MS = 15_000
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",  # the machine has no network: no update or sync calls
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str | None:
    configured = os.environ.get("AIOMONITOR_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        if os.environ.get("AIOMONITOR_REQUIRE_BROWSER"):
            pytest.fail("no Chromium found, and AIOMONITOR_REQUIRE_BROWSER is set")
        pytest.skip("no Chromium on this machine (install Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[Any] = []
    opened.on("pageerror", lambda error: errors.append(error))
    try:
        yield opened
        assert not errors, f"the page's script failed: {errors}"
    finally:
        context.close()


def _task_row(page: Page, name: str) -> Any:
    return page.locator("#tasks tbody tr", has=page.locator("td.name", has_text=name))


@pytest.mark.parametrize("framework", ["asyncio", "uvloop", "trio"])
def test_the_table_shows_the_app_s_task_and_its_page_shows_the_stack(page: Page, framework: str) -> None:
    with web_app(framework) as app:
        page.goto(app.url)
        row = _task_row(page, "parked-job")
        row.wait_for()
        assert "pending" in row.inner_text() or "waiting" in row.inner_text()
        row.locator("td.name a").click()
        stack = page.locator("#task pre.stack")
        stack.wait_for()
        assert "sleep(3600)" in stack.inner_text()
        assert "park_here" in stack.inner_text()
        assert page.locator("#task h2").inner_text().endswith("parked-job")


def test_the_filter_narrows_the_table(page: Page) -> None:
    with web_app("asyncio", extra_tasks=30) as app:
        page.goto(app.url)
        _task_row(page, "extra-29").wait_for()
        page.fill("#filter", "parked")
        expect(page.locator("#tasks tbody tr")).to_have_count(1)
        assert page.locator("#tasks tbody td.name").inner_text() == "parked-job"
        assert "of 1 shown" in page.locator("#summary").inner_text()


def test_a_read_only_monitor_s_page_offers_no_cancel_and_the_api_refuses_it(page: Page) -> None:
    with web_app("asyncio", readonly=True) as app:
        page.goto(app.url)
        row = _task_row(page, "victim")
        row.wait_for()
        assert page.locator("button.cancel").count() == 0
        row.locator("td.name a").click()
        page.locator("#task pre.stack").wait_for()
        assert page.locator("button.cancel").count() == 0
        (task_id,) = app.task_ids("victim")
        url = f"{app.base}/api/v1/tasks/{task_id}/cancel"
        status, _, body = request("POST", url, headers={**app.auth, "Origin": app.base})
        assert status == 403 and b"read-only" in body
        assert app.task_ids("victim") == [task_id]


def test_group_alike_folds_the_table_and_the_tree_folds_alike_siblings(page: Page) -> None:
    with web_app("asyncio", extra_tasks=30) as app:
        page.goto(app.url)
        _task_row(page, "extra-29").wait_for()
        page.check("#group")
        # The count's cell exactly: other numeric cells (ids, ages) may contain "31" too.
        crowd = page.locator("#tasks tbody tr.group", has=page.locator("td.num", has_text=re.compile(r"^\s*31\s*$")))
        crowd.wait_for()
        assert "park_here" in crowd.inner_text() and "web_app.py" in crowd.inner_text()
        assert "groups of" in page.locator("#summary").inner_text()
        page.goto(app.url.replace("#", "") + "#/tree")
        folded = page.locator("#tree li.folded", has_text="31 \N{MULTIPLICATION SIGN} tasks")
        folded.wait_for()
        assert "park_here" in folded.inner_text() and "e.g." in folded.inner_text()
        assert page.locator("#tree", has_text="extra-7").count() == 0  # folded, not listed


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_the_cancel_button_asks_first_then_the_task_really_ends(page: Page, framework: str) -> None:
    with web_app(framework) as app:
        (victim_id,) = app.task_ids("victim")
        page.goto(app.url)
        button = _task_row(page, "victim").locator("button.cancel")
        button.wait_for()
        questions: list[str] = []

        def dismiss(dialog: Any) -> None:
            questions.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        button.click()
        assert poll(lambda: bool(questions))
        assert str(victim_id) in questions[0] and "victim" in questions[0]
        assert app.task_ids("victim") == [victim_id], "dismissed: nothing cancelled"

        page.once("dialog", lambda dialog: dialog.accept())
        button.click()
        message = page.locator("#message")
        message.wait_for()
        assert "cancelled" in message.inner_text()
        assert poll(lambda: app.task_ids("victim") == [])
        assert app.process.stdout is not None
        assert app.process.stdout.readline().strip() == "victim cancelled"
        expect(page.locator("#tasks")).not_to_contain_text("victim")


def test_the_banner_shows_the_blocking_stack_while_the_loop_is_blocked(page: Page) -> None:
    with web_app("asyncio") as app:
        page.goto(app.url)
        _task_row(page, "parked-job").wait_for()
        os.kill(app.process.pid, signal.SIGUSR1)
        banner = page.locator("#banner")
        banner.wait_for(state="visible")
        text = banner.inner_text()
        assert "blocked" in text and "block_the_loop" in text and "time.sleep" in text
        banner.wait_for(state="hidden")  # the loop runs again (4 s)


def test_refresh_pauses_while_the_tab_is_hidden(page: Page, app_for_refresh: WebApp) -> None:
    page.goto(app_for_refresh.url)
    _task_row(page, "parked-job").wait_for()
    expect(page.locator("#live")).to_have_text("live")
    with page.expect_request(lambda request: "/api/v1/tasks" in request.url):
        pass  # a refresh while visible (every 2 s)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    assert page.locator("#live").inner_text() == "paused"
    requests.clear()
    page.wait_for_timeout(2500)  # more than one refresh period: watching for requests that must not come
    assert requests == []


@pytest.fixture
def app_for_refresh() -> Iterator[WebApp]:
    with web_app("asyncio") as app:
        yield app


def test_a_bundle_opened_with_web_shows_when_it_was_taken_its_tasks_and_its_trend(page: Page, tmp_path: Path) -> None:
    with web_app("asyncio", extra_tasks=5) as app:

        def censused() -> bool:
            groups = app.get_json("/api/v1/trend")["groups"]
            return any(g["location"] and g["location"]["function"] == "park_here" for g in groups)

        assert poll(censused), "the flight recorder has counted the parked job"
        status, _, body = request("GET", f"{app.base}/api/v1/dump", headers=app.auth)
        assert status == 200
    bundle_file = tmp_path / "bundle.json"
    bundle_file.write_bytes(body)
    with bundle_on_the_web(bundle_file) as url:
        page.goto(url)
        _task_row(page, "parked-job").wait_for()
        banner = page.locator("#banner")
        banner.wait_for(state="visible")
        assert "A bundle of pid" in banner.inner_text() and "taken 20" in banner.inner_text()
        assert page.locator("a#dump").get_attribute("href") == "/api/v1/dump"
        page.goto(url.replace("#", "") + "#/trend")
        page.locator("#trend table tbody tr").first.wait_for()
        assert "park_here" in page.locator("#trend").inner_text()
        assert page.locator("#trend svg.sparkline").count() >= 1
