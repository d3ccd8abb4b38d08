"""The receptive-field chart: each judged layer's RF min and max, in execution order, against the
resolution line, as inline SVG drawn by matplotlib (no pyplot state, no fonts fetched: text is
drawn as paths, so the SVG shows the same anywhere, offline)."""

from __future__ import annotations

import io
import math
import re
from typing import Sequence

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .facts import LayerRow

#: The seed's colours (rfa_lint.rf.analysis.Verdict values) for the markers, and their key.
COLOURS = {"unproductive": "red", "critical": "orange", "border": "gold", "productive": "white"}
KEY = {"unproductive": "unproductive: its input already sees the image",
       "critical": "critical: pushes the RF past the image", "border": "border case: past on some axes",
       "productive": "productive"}
#: The figure is drawn at the page's width (inches at 100 px each) and scaled to it by the page,
#: so its text is drawn at the size a reader sees: 12 px labels on a 1,400 px page.
WIDTH_INCHES, HEIGHT_INCHES, FONT = 14.0, 6.0, 11
#: Layer names shown at most along the x axis; more would overlap, so every n-th one is named.
MAX_LABELS = 60


def rf_chart(layers: Sequence[LayerRow], resolution: Sequence[int], title: str) -> str:
    """An ``<svg>`` element, drawn at the page's width (the page scales it to 100 %)."""
    out = io.StringIO()
    figure = rf_figure(layers, resolution, title)
    with rc_context({"svg.hashsalt": "rfa-lint"}):  # the same ids each time: one page per model
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return inline_svg(out.getvalue())


def rf_figure(layers: Sequence[LayerRow], resolution: Sequence[int], title: str) -> Figure:
    """RF min (markers coloured by verdict, with their key) and max (line) per judged layer, on a
    log axis read in plain pixels (1, 2, 5, 10, 20, ...), the resolution as a dashed line."""
    judged = [row for row in layers if row.verdict is not None]
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES))
    FigureCanvasSVG(figure)
    axes = figure.add_subplot()
    x = list(range(len(judged)))
    low = [_largest(row.rf_min) for row in judged]
    high = [_largest(row.rf_max) for row in judged]
    axes.plot(x, high, color="grey", linewidth=1.5, label="RF max (line)")
    axes.scatter(x, low, c=[COLOURS[row.verdict] for row in judged], edgecolors="black", s=48, zorder=3)
    axes.axhline(max(resolution), color="blue", linestyle="--", linewidth=1.5,
                 label=f"resolution {max(resolution)}px")
    for verdict in COLOURS:
        if any(row.verdict == verdict for row in judged):
            axes.scatter([], [], c=COLOURS[verdict], edgecolors="black", s=48,
                         label=f"RF min, {KEY[verdict]}")
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(NullFormatter())
    step = max(1, math.ceil(len(judged) / MAX_LABELS))
    axes.set_xticks(x[::step], [row.path for row in judged][::step], rotation=90, fontsize=FONT - 1)
    axes.tick_params(axis="y", labelsize=FONT)
    axes.set_xlim(-0.5, max(len(judged) - 0.5, 0.5))
    axes.set_ylabel("receptive field (px, largest axis)", fontsize=FONT)
    figure.suptitle(title if step == 1 else f"{title} (one layer in {step} named)", fontsize=FONT + 1)
    axes.grid(axis="y", color="#ddd", linewidth=0.8)
    axes.legend(fontsize=FONT - 1, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)
    figure.tight_layout()
    return figure


def _largest(values: tuple) -> float:
    finite = [float(v) for v in values if not math.isinf(v)]
    return max(finite) if finite else math.nan


def inline_svg(document: str) -> str:
    """An SVG document as an element for an HTML page: no XML declaration, DOCTYPE or RDF
    metadata (addresses a browser never needs)."""
    return re.sub(r"<\?xml[^>]*>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", "", document, flags=re.S).strip()
