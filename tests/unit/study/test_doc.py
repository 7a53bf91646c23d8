"""study.report.doc: the renderers and the cell formatters."""

from __future__ import annotations

from embinit.study.report import doc as D


def test_renderers_escape_and_align() -> None:
    blocks = [
        D.Heading(1, "t"),
        D.Para("a <b> `c<d>` p<0.05"),
        D.Table(["x", "y|z"], [["1", "2"]], align="lr"),
        D.Code("<raw>"),
    ]
    md = D.render_markdown(blocks)
    assert "a &lt;b> `c<d>` p<0.05" in md
    assert "| x | y\\|z |\n| :--- | ---: |\n| 1 | 2 |" in md
    assert "```\n<raw>\n```" in md
    page = D.render_html(blocks, "t")
    assert "a &lt;b&gt; <code>c&lt;d&gt;</code> p&lt;0.05" in page
    assert '<td class="r">2</td>' in page and "&lt;raw&gt;" in page


def test_fmt_p_plain_for_tables_labelled_for_sentences() -> None:
    assert [D.fmt_p(p) for p in (0.0031, 0.0004, 0.5, float("nan"), None)] == [
        "0.003",
        "<0.001",
        "0.500",
        D.NA,
        D.NA,
    ]
    assert [D.fmt_p(p, labelled=True) for p in (0.0031, 0.0004, 0.5, float("nan"))] == [
        "p=0.003",
        "p<0.001",
        "p=0.500",
        "p=n/a",
    ]


def test_markdown_images() -> None:
    md = D.render_markdown([D.Image("a.png", "alt", b""), D.Para("![b](figures/b.png)")])
    assert D.markdown_images(md) == ["figures/a.png", "figures/b.png"]
