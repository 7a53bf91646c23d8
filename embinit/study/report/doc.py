"""The report as a document: blocks, two renderers and the cell formatters.

A report is a list of blocks (Heading, Para, Bullets, Table, Image, Code) rendered
twice: ``render_markdown`` for GitHub (figures linked under ``figures/``) and
``render_html`` for one self-contained page (figures as data: URIs). Text is plain
except for `backticks`, which mark code in both renderers.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FIG_DIR = "figures"
NA = "—"


# ------------------------------------------------------------------------------ blocks


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str  # `backticks` mark code; nothing else is markup


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    align: str = ""  # one of "l"/"r" per column; default: first column left, the rest right


@dataclass
class Image:
    name: str  # file name under figures/
    alt: str
    png: bytes


@dataclass
class Code:
    text: str
    lang: str = ""


Block = Heading | Para | Bullets | Table | Image | Code


def _split_code(text: str) -> list[tuple[bool, str]]:
    parts = text.split("`")
    return [(i % 2 == 1, p) for i, p in enumerate(parts) if p]


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md_inline(text: str, in_table: bool = False) -> str:
    out = []
    for is_code, part in _split_code(text):
        if is_code:
            out.append(f"`{part}`")
        else:
            out.append(_TAG_START.sub("&lt;", part))  # `<unk>` would vanish as an HTML tag
    s = "".join(out)
    return s.replace("|", "\\|") if in_table else s


def _html_inline(text: str) -> str:
    return "".join(
        f"<code>{html.escape(p)}</code>" if c else html.escape(p) for c, p in _split_code(text)
    )


def _aligns(t: Table) -> str:
    return t.align or ("l" + "r" * (len(t.header) - 1))


def render_markdown(blocks: Sequence[Block]) -> str:
    """GitHub-flavoured markdown; images link to figures/<name>."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {_md_inline(b.text)}")
        elif isinstance(b, Para):
            out.append(_md_inline(b.text))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {_md_inline(i)}" for i in b.items))
        elif isinstance(b, Table):
            sep = ["---:" if a == "r" else ":---" for a in _aligns(b)]
            lines = [b.header, sep, *(b.rows or [[NA] * len(b.header)])]
            cells = [
                [_md_inline(c, True) if i != 1 else c for c in row] for i, row in enumerate(lines)
            ]
            out.append("\n".join("| " + " | ".join(row) + " |" for row in cells))
        elif isinstance(b, Image):
            out.append(f"![{_md_inline(b.alt, True)}]({FIG_DIR}/{b.name})")
        elif isinstance(b, Code):
            out.append(f"```{b.lang}\n{b.text.rstrip()}\n```")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1f2328;line-height:1.5}
h1,h2,h3{border-bottom:1px solid #d1d9e0;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em;display:block;overflow-x:auto}
th,td{border:1px solid #d1d9e0;padding:.3em .6em}th{background:#f6f8fa}
td.r{text-align:right;white-space:nowrap}th.r{text-align:right}td.l,th.l{text-align:left}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f6f8fa}
pre{padding:1em;overflow:auto;font-size:.85em}
img{max-width:100%;height:auto;display:block;margin:1em 0}
""".strip()


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained HTML page: inline CSS, images as base64 data: URIs, no links out."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_html_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_html_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            al = _aligns(b)
            head = "".join(
                f'<th class="{a}">{_html_inline(h)}</th>' for a, h in zip(al, b.header, strict=True)
            )
            rows = "".join(
                "<tr>"
                + "".join(
                    f'<td class="{a}">{_html_inline(c)}</td>' for a, c in zip(al, r, strict=True)
                )
                + "</tr>"
                for r in (b.rows or [[NA] * len(b.header)])
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(b.alt)}">')
        elif isinstance(b, Code):
            body.append(f"<pre><code>{html.escape(b.text.rstrip())}</code></pre>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------ formatting


def is_finite(x: Any) -> bool:
    """True for a finite number (or numeric string); False for None, NaN, inf and text."""
    try:
        return x is not None and bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def fmt_num(x: Any, digits: int = 3, signed: bool = False) -> str:
    if not is_finite(x):
        return NA
    return f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"


def fmt_ci(mean: Any, lo: Any, hi: Any, digits: int = 3, signed: bool = False) -> str:
    """'1.210 [1.185, 1.235]'; the mean alone when there is no interval."""
    if not is_finite(mean):
        return NA
    m = fmt_num(mean, digits, signed)
    if not (is_finite(lo) and is_finite(hi)):
        return m
    return f"{m} [{fmt_num(lo, digits, signed)}, {fmt_num(hi, digits, signed)}]"


def fmt_int(x: Any) -> str:
    return f"{round(float(x)):,}" if is_finite(x) else NA


def fmt_pct(x: Any, digits: int = 2) -> str:
    return f"{100 * float(x):.{digits}f}%" if is_finite(x) else NA


def fmt_df(df: Any) -> str:
    """Degrees of freedom: '2' when whole (Student t over seeds), else '7.4'; NA if none."""
    if not is_finite(df):
        return NA
    x = float(df)
    return str(int(x)) if x.is_integer() else f"{x:.1f}"


def fmt_p(p: Any, labelled: bool = False) -> str:
    """A p-value: '0.003', '<0.001', or NA when there is none.

    ``labelled`` is for running text: 'p=0.003', 'p<0.001', 'p=n/a'.
    """
    if not is_finite(p):
        return "p=n/a" if labelled else NA
    text = "<0.001" if float(p) < 0.001 else f"{float(p):.3f}"
    if labelled:
        return "p" + (text if text.startswith("<") else "=" + text)
    return text



_RE_IMG = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def markdown_images(markdown: str) -> list[str]:
    """Relative paths of the images a markdown document links to."""
    return _RE_IMG.findall(markdown)


__all__ = [
    "FIG_DIR",
    "NA",
    "Block",
    "Bullets",
    "Code",
    "Heading",
    "Image",
    "Para",
    "Table",
    "fmt_ci",
    "fmt_df",
    "fmt_int",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "is_finite",
    "markdown_images",
    "render_html",
    "render_markdown",
]
