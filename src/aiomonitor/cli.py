"""``python -m aiomonitor.cli``: the client, under the module name aiomonitor 0.4 used.

The same program as ``python -m aiomonitor`` (``-H/--host``, ``-p/--port``, ...).
"""

from __future__ import annotations

from ._client._cli import main

__all__ = ("main",)

if __name__ == "__main__":
    raise SystemExit(main())
