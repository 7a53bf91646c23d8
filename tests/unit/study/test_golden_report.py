"""The report of real run records, byte for byte: the acceptance test of any refactor.

tests/fixtures/records/arms holds the records of a small real study (3 arms x 2 seeds)
and tests/fixtures/golden/arms what the report made of them; in the golden
report.html every figure's base64 payload is replaced by a single "…", since the PNG
bytes depend on the matplotlib build. The build runs on a copy of the records, from
a working directory without conf/, and must not open anything under the repo's conf/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from embinit.study.report.build import main

ROOT = Path(__file__).resolve().parents[3]
RECORDS = ROOT / "tests" / "fixtures" / "records" / "arms"
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "arms"
CONF = ROOT / "embinit" / "conf"
_PNG_DATA = re.compile(rb"data:image/png;base64,[A-Za-z0-9+/=]+")
_PNG_ELIDED = "data:image/png;base64,…".encode()

# The paths opened while a build is watched. An audit hook cannot be removed, so it is
# installed once, at import, and records nothing while _watching is empty.
_watching: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watching and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _watching[-1].append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """(report directory, files opened during the build) for a copy of the fixture records."""
    tmp = tmp_path_factory.mktemp("golden")
    shutil.copytree(RECORDS, tmp / "arms")  # the directory name is the study's name
    assert not (tmp / "conf").exists()
    opened: list[str] = []
    _watching.append(opened)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(tmp)
            assert main(["arms", "--out", "out"]) == 0  # relative paths, as a user types them
    finally:
        _watching.remove(opened)
    return tmp / "out", opened


@pytest.mark.parametrize("name", ["report.md", "summary.csv", "runs.csv"])
def test_output_is_byte_identical_to_golden(built: tuple[Path, list[str]], name: str) -> None:
    out, _ = built
    assert (out / name).read_bytes() == (GOLDEN / name).read_bytes()


def test_report_html_is_identical_to_golden_but_for_png_payloads(
    built: tuple[Path, list[str]],
) -> None:
    out, _ = built
    html = _PNG_DATA.sub(_PNG_ELIDED, (out / "report.html").read_bytes())
    golden = (GOLDEN / "report.html").read_bytes()
    assert golden.count(_PNG_ELIDED) == 8  # the substitution is not vacuous
    assert html == golden


def test_build_reads_nothing_under_conf(built: tuple[Path, list[str]]) -> None:
    out, opened = built
    assert any(Path(p).name == "summary.json" for p in opened)  # the hook did watch the build
    under_conf = [p for p in opened if Path(p).resolve().is_relative_to(CONF.resolve())]
    assert under_conf == []
    assert (out / "report.md").is_file()


def test_importing_the_report_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys, embinit.study.report.build, embinit.report, embinit.analysis; "
        "print('torch' in sys.modules)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
