"""Sphinx configuration: Markdown pages (MyST), the furo theme, and an API
reference from the package's own docstrings.  Builds offline: no
intersphinx inventories, no assets from elsewhere."""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

import aiomonitor

project = "aiomonitor"
author = "aiomonitor contributors"
copyright = "aiomonitor contributors"  # noqa: A001 - Sphinx's name for it
release = aiomonitor.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "benchmarks-results.md"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
html_theme = "furo"
html_title = f"aiomonitor {release}"
autodoc_typehints = "description"
autodoc_member_order = "bysource"
suppress_warnings = ["myst.header"]

#: Every public name: each must have a rendered entry (an undocumented one fails the build).
PUBLIC_NAMES = (
    *(f"aiomonitor.{name}" for name in aiomonitor.__all__ if name != "__version__"),
    "aiomonitor.utils.alt_names",
    "aiomonitor.utils.readonly",
    "aiomonitor.otel.instrument",
    "aiomonitor.otel.Instrumentation",
    *(
        f"aiomonitor.Monitor.{member}"
        for member in (
            "start",
            "close",
            "closed",
            "port",
            "console_port",
            "web_url",
            "prompt",
            "intro",
            "help_template",
            "help_short_template",
            "lastcmd",
            "precmd",
            "postcmd",
            "emptyline",
            "default",
        )
    ),
)


def _check_public_names(app: Sphinx, env: BuildEnvironment) -> None:
    documented = set(env.get_domain("py").objects)  # type: ignore[attr-defined]
    for name in PUBLIC_NAMES:
        if name not in documented:
            logging.getLogger(__name__).warning("the public name %s has no reference entry (docs/api.md)", name)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("env-check-consistency", _check_public_names)
    return {"parallel_read_safe": True}
