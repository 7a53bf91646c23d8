"""Alias of `embinit.tools.bench`, kept so `python -m embinit.bench` keeps working."""

import sys

from embinit.tools.bench import *  # noqa: F403
from embinit.tools.bench import main

if __name__ == "__main__":
    sys.exit(main())
