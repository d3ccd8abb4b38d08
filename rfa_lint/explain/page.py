"""The HTML report: one self-contained page (no script, no link, no font or image to fetch).

Per model: the waste sentence, the coloured architecture picture (:mod:`rfa_lint.render`,
collapsed as ``--graph-dir`` draws it), the receptive-field chart (:mod:`.chart`), the
suggestions with their diffs, and the layer table.
"""

from __future__ import annotations

import html
from typing import Sequence

import graphviz

from rfa_lint import render
from rfa_lint.numbers import fmt
from rfa_lint.rf import graph_from_plain

from . import Explanation
from .chart import inline_svg, rf_chart
from .text import COLUMNS, KIND_HEADINGS, cells_of, outcome, quantity, sentence

#: Boxes at most in the page's picture: fewer than ``--graph-dir`` draws (80), so that a
#: ResNet-18 shows its blocks on one screen; the table below has every layer.
PICTURE_BOXES = 40

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table.layers { border-collapse: collapse; font-size: 0.8em; }
table.layers td, table.layers th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
td.num { text-align: right; }
tr.unproductive { background: #ffb3b3; } tr.critical { background: #ffd9a0; }
tr.border { background: #fff5a0; }
.waste { font-size: 1.05em; background: #f6f6f6; padding: 0.8em; border-left: 4px solid #c00; }
.picture svg { max-width: 100%; height: auto; }
.chart svg { width: 100%; height: auto; }
pre.diff { background: #f6f8fa; padding: 0.6em; font-size: 0.85em; overflow-x: auto; }
"""


def page(explanations: Sequence[Explanation]) -> str:
    models = "\n".join(section(e) for e in explanations)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>rfa-lint explain</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>rfa-lint explain</h1>\n{models}\n</body>\n</html>\n"
    )


def section(e: Explanation) -> str:
    title = f"{e.path}: {e.model} at {fmt(e.resolution)}px"
    return "\n".join([
        f'<section class="model" id="{html.escape(e.model, quote=True)}">',
        f"<h2>{html.escape(title)}</h2>",
        f"<p>Productive range {fmt(e.range[0])}-{fmt(e.range[1])}px; {quantity(e.params)} parameters, "
        f"{quantity(e.macs)} MACs per image.</p>",
        f'<p class="waste">{html.escape(sentence(e.model, e.resolution, e.waste))}</p>',
        "<h3>Suggestions</h3>", suggestions(e),
        "<h3>Architecture</h3>", f'<div class="picture">{picture(e)}</div>',
        "<h3>Receptive fields</h3>", f'<div class="chart">{rf_chart(e.layers, e.resolution, title)}</div>',
        "<h3>Layers</h3>", layer_table(e),
        "</section>",
    ])


def picture(e: Explanation) -> str:
    """The coloured architecture graph as inline SVG, or why it is missing."""
    graph = render.visualize_architecture(graph_from_plain(e.plain), e.model, e.resolution,
                                          max_nodes=PICTURE_BOXES)
    try:
        return inline_svg(graph.pipe(format="svg").decode("utf-8"))
    except graphviz.ExecutableNotFound:
        return f"<p>{html.escape(str(render.GraphvizNotFound()))}</p>"


def suggestions(e: Explanation) -> str:
    if not e.suggestions:
        return "<p>No suggestion: no edit tried leaves fewer layers unproductive.</p>"
    parts, kind = [], None
    for s in e.suggestions:
        if s.kind != kind:
            parts.append(("</ol>" if kind else "") + f"<h4>{html.escape(KIND_HEADINGS[s.kind])}</h4><ol>")
            kind = s.kind
        diff = f'<pre class="diff">{html.escape(s.diff)}</pre>' if s.diff else ""
        diff += "".join(f"<br><small>{html.escape(note)}</small>" for note in s.by_hand)
        parts.append(f"<li>{html.escape(s.title)}<br><small>{html.escape(outcome(s))}</small>{diff}</li>")
    return "\n".join(parts) + "</ol>"


def layer_table(e: Explanation) -> str:
    numeric = {COLUMNS.index("params"), COLUMNS.index("MACs")}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in e.layers:
        cells = "".join(f'<td class="num">{html.escape(c)}</td>' if i in numeric else
                        f"<td>{html.escape(c)}</td>" for i, c in enumerate(cells_of(row)))
        body.append(f'<tr class="{row.verdict or "head"}">{cells}</tr>')
    return f'<table class="layers"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
