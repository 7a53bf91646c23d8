"""embinit: a comparative experiment harness for token-embedding initialization."""

__version__ = "0.1.0"
