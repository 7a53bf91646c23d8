"""The report CLI as a user runs it: ``python -m``, and the HTML in a headless browser.

Subprocesses, so slow: ``make test-fast`` (-m "not slow") leaves them out.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from embinit.study.report import build as B
from tests.unit.study.fabricate import write_new_study, write_study

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One fabricated study and its report, shared by the tests that only read them."""
    tmp_path = tmp_path_factory.mktemp("built")
    study = write_study(tmp_path / "experiments")
    out = tmp_path / "results" / "arms"
    assert B.main([str(study), "--out", str(out)]) == 0
    return study, out


@pytest.mark.parametrize("module", ["embinit.study.report", "embinit.report"])  # and the alias
def test_module_entry_point(module: str, built: tuple[Path, Path], tmp_path: Path) -> None:
    study, _ = built
    out = tmp_path / "cli_out"
    res = subprocess.run(
        [sys.executable, "-m", module, str(study), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert (out / "report.html").is_file()
    empty = tmp_path / "empty_study"
    empty.mkdir()
    res = subprocess.run(
        [sys.executable, "-m", module, str(empty), "--out", str(tmp_path / "x")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "error" in res.stderr and not (tmp_path / "x").exists()


def test_module_entry_point_on_new_style_records(tmp_path: Path) -> None:
    study = write_new_study(tmp_path / "experiments")
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "embinit.study.report", str(study), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    md = (out / "report.md").read_text()
    assert "## Design\n" in md and "Holm-adjusted p" in md
    assert (out / "heldout.csv").read_text().startswith("arm,scope,")


def _png_is_blank(data: bytes) -> bool:
    """True when a PNG (8-bit RGB/RGBA, non-interlaced) has a single colour."""
    assert data.startswith(PNG_MAGIC)
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, _, depth, colour, *_ = header
    assert depth == 8 and colour in (2, 6)
    raw = zlib.decompress(idat)
    bpp = 3 if colour == 2 else 4
    stride = width * bpp + 1
    rows = [raw[i : i + stride] for i in range(0, len(raw), stride)]
    # Filter bytes make raw rows hard to compare; a blank page compresses to a few distinct rows.
    return len(set(rows)) <= 3


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="chromium is not installed",
)
def test_report_html_renders_headless(built: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = built
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [
            str(browser),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            (out / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), res.stderr
    assert not _png_is_blank(shot.read_bytes())
