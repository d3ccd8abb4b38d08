"""A finding's span: the call that built the layer, as editors and flake8 count columns."""

from __future__ import annotations

from rfa_lint.positions import Span, call_span, place

SOURCE = '''\
x = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU())
self.conv = nn.Conv2d(3, 8, 3,
                      padding=1)
y = layers.Conv2D(8, 3)(x)
café = conv3x3(c_in, c_out, stride)
z = 1
'''


def test_the_outermost_call_starting_on_the_line_is_the_span() -> None:
    assert call_span(SOURCE, 1) == Span(1, 4, 1, 48)
    assert call_span(SOURCE, 4) == Span(4, 4, 4, 26)  # the layer and its application on x


def test_a_call_over_several_lines_spans_them_all() -> None:
    assert call_span(SOURCE, 2) == Span(2, 12, 3, 32)


def test_columns_count_characters_not_utf8_bytes() -> None:
    assert call_span(SOURCE, 5) == Span(5, 7, 5, 35)


def test_lines_where_no_call_starts_have_no_span() -> None:
    assert call_span(SOURCE, 3) is None
    assert call_span(SOURCE, 6) is None
    assert call_span("def broken(:\n", 1) is None


def test_a_finding_goes_on_the_call_or_else_on_the_lines_content() -> None:
    assert place(SOURCE, 2) == Span(2, 12, 3, 32)
    assert place(SOURCE, 6) == Span(6, 0, 6, 5)  # "z = 1": no call starts there
    assert place(SOURCE, 3) == Span(3, 22, 3, 32)  # "padding=1)" without its indentation
    assert place(SOURCE, 99) == Span(99, 0, 99, 0)  # past the end: an empty span, never an error
