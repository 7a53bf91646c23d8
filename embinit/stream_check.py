"""Alias of `embinit.tools.stream_check`, kept so `python -m embinit.stream_check` keeps working."""

import sys

from embinit.tools.stream_check import *  # noqa: F403
from embinit.tools.stream_check import main

if __name__ == "__main__":
    sys.exit(main())
