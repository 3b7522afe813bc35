"""``python -m aiomonitor``: connect to a running monitor."""

import sys

from ._client import main

if __name__ == "__main__":
    sys.exit(main())
