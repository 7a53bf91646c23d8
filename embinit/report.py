"""Alias of ``embinit.study.report``, kept so old imports and ``python -m embinit.report`` work.

New code imports ``embinit.study.report`` (or its submodules) directly.
"""

from __future__ import annotations

import sys

from embinit.study.report import *  # noqa: F403  (the alias re-exports the whole surface)
from embinit.study.report import __all__ as __all__  # noqa: F401
from embinit.study.report.build import main

if __name__ == "__main__":
    sys.exit(main())
