"""embinit: a comparative experiment harness for token-embedding initialization."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["LoadedRun", "load_run"]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): `embinit.load_run` needs torch, but `import embinit` must not pull it in,
    # so the analysis side (embinit.study, pandas only) stays light.
    if name in ("load_run", "LoadedRun"):
        from embinit import load

        return getattr(load, name)
    raise AttributeError(f"module 'embinit' has no attribute {name!r}")
