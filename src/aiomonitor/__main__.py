"""``python -m aiomonitor``: the ``aiomonitor`` program (see ``_cli``)."""

import sys

from ._client._cli import main

if __name__ == "__main__":
    sys.exit(main())
