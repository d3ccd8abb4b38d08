"""The receptive-field chart: each judged layer's RF min and max, in execution order, against the
resolution line, as inline SVG drawn by matplotlib (no pyplot state, no fonts fetched: text is
drawn as paths, so the SVG shows the same anywhere, offline)."""

from __future__ import annotations

import io
import math
import re
from typing import Sequence

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from .facts import LayerRow

#: The seed's colours (rfa_lint.rf.analysis.Verdict values) for the markers.
COLOURS = {"unproductive": "red", "critical": "orange", "border": "gold", "productive": "white"}


def rf_chart(layers: Sequence[LayerRow], resolution: Sequence[int], title: str) -> str:
    """An ``<svg>`` element: RF min (markers coloured by verdict) and max (line) per layer, on a
    log scale, the resolution as a dashed line."""
    judged = [row for row in layers if row.verdict is not None]
    figure = Figure(figsize=(max(6.0, 0.28 * len(judged)), 3.6))
    FigureCanvasSVG(figure)
    axes = figure.add_subplot()
    x = list(range(len(judged)))
    low = [_largest(row.rf_min) for row in judged]
    high = [_largest(row.rf_max) for row in judged]
    axes.plot(x, high, color="grey", linewidth=1, label="RF max")
    axes.scatter(x, low, c=[COLOURS[row.verdict] for row in judged], edgecolors="black", s=28, zorder=3,
                 label="RF min (colour: verdict)")
    axes.axhline(max(resolution), color="blue", linestyle="--", linewidth=1,
                 label=f"resolution {max(resolution)}px")
    axes.set_yscale("log", base=2)
    axes.set_xticks(x, [row.path for row in judged], rotation=90, fontsize=6)
    axes.set_ylabel("receptive field (px, largest axis)")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return inline_svg(out.getvalue())


def _largest(values: tuple) -> float:
    finite = [float(v) for v in values if not math.isinf(v)]
    return max(finite) if finite else math.nan


def inline_svg(document: str) -> str:
    """An SVG document as an element for an HTML page: no XML declaration, DOCTYPE or RDF
    metadata (addresses a browser never needs)."""
    return re.sub(r"<\?xml[^>]*>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", "", document, flags=re.S).strip()
