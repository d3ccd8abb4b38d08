"""The HTML page's receptive-field chart reads at the page's width: labels of 10 px and more,
plain pixel numbers on the y axis, a key for every colour shown, names thinned where they would
overlap (the figure is inspected as matplotlib built it; its SVG draws text as paths)."""

from __future__ import annotations

import pytest

from rfa_lint.explain.chart import MAX_LABELS, WIDTH_INCHES, rf_chart, rf_figure
from rfa_lint.explain.facts import LayerRow
from rfa_lint.explain.page import STYLE
from rfa_lint.rf import Kind


def rows(count: int) -> list[LayerRow]:
    """A chain of 3x3 convolutions: RF 3, 5, 7, ...; past 16px unproductive, the 8th critical."""
    verdicts = ["productive"] * 7 + ["critical"] + ["unproductive"] * max(0, count - 8)
    return [LayerRow(f"features.{i}", f"net.py:{i + 3}", Kind.CONV, (3, 3), (1, 1), (1, 1),
                     (2 * i + 3,) * 2, (2 * i + 3,) * 2, verdicts[i], (16, 16), 10, 100)
            for i in range(count)]


def test_the_chart_is_drawn_at_the_page_width_with_readable_text():
    figure = rf_figure(rows(21), (16,), "net.py: Net at 16px")
    axes, = figure.axes
    assert figure.get_figwidth() == WIDTH_INCHES and ".chart svg { width: 100%" in STYLE
    labels = axes.get_xticklabels()
    assert [t.get_text() for t in labels] == [f"features.{i}" for i in range(21)]
    assert min(t.get_fontsize() for t in [*labels, *axes.get_yticklabels()]) >= 10


def test_the_y_axis_reads_in_plain_pixels_and_every_colour_has_its_key():
    figure = rf_figure(rows(21), (16,), "t")
    axes, = figure.axes
    figure.canvas.draw()
    ticks = [t.get_text() for t in axes.get_yticklabels() if t.get_text()]
    assert ticks and all(text.isdigit() for text in ticks) and "10" in ticks and "20" in ticks
    keys = [t.get_text() for t in axes.get_legend().get_texts()]
    assert keys[:2] == ["RF max (line)", "resolution 16px"]
    assert [k.split(":")[0] for k in keys[2:]] == [
        "RF min, unproductive", "RF min, critical", "RF min, productive"]


@pytest.mark.parametrize("count, step", [(MAX_LABELS, 1), (MAX_LABELS + 1, 2), (3 * MAX_LABELS, 3)])
def test_names_are_thinned_where_they_would_overlap_and_the_title_says_so(count, step):
    figure = rf_figure(rows(count), (16,), "t")
    axes, = figure.axes
    assert len(axes.get_xticks()) == len(range(0, count, step)) <= MAX_LABELS
    assert figure.get_suptitle() == ("t" if step == 1 else f"t (one layer in {step} named)")


def test_the_page_gets_an_svg_element_the_same_each_time():
    svg = rf_chart(rows(10), (16,), "t")
    assert svg.startswith("<svg") and "<?xml" not in svg and "<metadata>" not in svg
    assert rf_chart(rows(10), (16,), "t") == svg
