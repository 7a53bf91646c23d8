"""Fixtures of the consumer-wing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.study.fabricate import write_study


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A fabricated 3-arm study (see fabricate.write_study) under tmp_path."""
    return write_study(tmp_path)
