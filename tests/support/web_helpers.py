"""Helpers for the web tests: the web app in a process, and plain HTTP requests."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .apps import ROOT, running_app

WEB_APP = str(ROOT / "tests" / "support" / "programs" / "web_app.py")
TIMEOUT = 15.0


@dataclass(frozen=True)
class WebApp:
    process: subprocess.Popen[str]
    #: The page's address with its token, as ``monitor.web_url`` gives it.
    url: str
    base: str
    token: str
    monitor_port: int
    web_port: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get_json(self, path: str) -> Any:
        status, _, body = request("GET", self.base + path, headers=self.auth)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def task_ids(self, name: str) -> list[int]:
        page = self.get_json(f"/api/v1/tasks?filter={urllib.parse.quote(name)}&limit=1000")
        return [task["id"] for task in page["tasks"] if task["name"] == name]


@contextlib.contextmanager
def web_app(framework: str, extra_tasks: int = 0, readonly: bool = False, control: bool = False) -> Iterator[WebApp]:
    extra = ("readonly",) * readonly + ("control",) * control
    with running_app(WEB_APP, framework, str(extra_tasks), *extra) as (process, port, line):
        match = re.search(r"web (http://\S+)", line)
        assert match, line
        url = match.group(1)
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        assert parts.port is not None
        yield WebApp(process, url, f"{parts.scheme}://{parts.netloc}", token, port, parts.port)


def request(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, headers in lower case, body)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target or "/", body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def one_line_error(body: bytes) -> str:
    """The API's error body: one line of JSON with an "error" message; returns the message."""
    assert body.endswith(b"\n") and body.count(b"\n") == 1, body
    message = json.loads(body)["error"]
    assert isinstance(message, str) and message and "\n" not in message
    return message
