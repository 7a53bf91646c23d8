"""text_files blocks read by chunk and regex equal the line-by-line reading they replace."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from embinit.errors import DataError
from embinit.run.data import corpus as corpus_module
from embinit.run.data.corpus import _UTF8_BOM, _decode, _file_blocks


def reference_blocks(path: Path, non_utf8: str) -> Iterator[tuple[str, str, int]]:
    """The former reader: line by line, a whitespace-only line ends a block."""
    block: list[str] = []
    replaced = index = offset = 0
    with open(path, "rb") as fh:
        for raw in fh:
            line_offset = offset
            offset += len(raw)
            if line_offset == 0 and raw.startswith(_UTF8_BOM):
                raw, line_offset = raw[len(_UTF8_BOM):], len(_UTF8_BOM)
            if raw.strip():
                line, n = _decode(raw, path, line_offset, non_utf8)
                block.append(line)
                replaced += n
            elif block:
                yield f"{path.name}#{index}", "".join(block).strip(), replaced
                block, replaced, index = [], 0, index + 1
    if block:
        yield f"{path.name}#{index}", "".join(block).strip(), replaced


PIECES = [b"word", b" ", b"\n", b"\n\n", b"\r\n", b" \t\n", b"\x0b\n", b"\xc3\xa9", b"\xff",
          b"\xe6\x9d\xb1", b"\x1c", b"\xe3\x80\x80\n", b"\xef\xbf\xbd", b"  ", b"x\n\n\n"]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 24])
def test_chunked_reader_equals_line_reader(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(corpus_module, "_READ_CHUNK", chunk)
    rng = random.Random(chunk)
    path = tmp_path / "f.txt"
    for trial in range(150):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
        if trial % 5 == 0:
            data = _UTF8_BOM + data
        path.write_bytes(data)
        assert list(_file_blocks(path, "replace")) == list(reference_blocks(path, "replace")), data


def test_invalid_utf8_offset_is_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "_READ_CHUNK", 5)
    path = tmp_path / "bad.txt"
    path.write_bytes(_UTF8_BOM + b"ok line\n\nsecond \xff block\n")
    with pytest.raises(DataError, match="byte offset 19 "):
        list(_file_blocks(path, "error"))
    with pytest.raises(DataError, match="byte offset 19 "):
        list(reference_blocks(path, "error"))
