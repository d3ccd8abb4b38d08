"""A finding's place: the line that wrote the layer or op, and on it the span of the call, as
editors and flake8 count columns."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from doors import rfa_lint
from expectations import FIXTURES

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


def test_an_op_in_a_blocks_forward_is_sited_at_the_forward_line(tmp_path: Path) -> None:
    # The residual add ``y = x + self.conv(x)`` runs in three blocks built on three lines of
    # Net.__init__: each add's box names the forward's line, as the pools' findings do (their
    # ``return F.max_pool2d(y, ...)`` is no helper handing a layer to its caller).
    shutil.copy(FIXTURES / "lint" / "functional_in_forward.py", tmp_path / "net.py")
    text = (tmp_path / "net.py").read_text()
    add_line = _line_of(text, "y = x + self.conv(x)")
    proc = rfa_lint("net.py", "--res", "6", "--graph-dir", "graphs", "--graph-format", "dot",
                    "--no-cache", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"net.py:{add_line + 1}:16: RFA101 unproductive layer 'blocks.2.max_pool2d'" in proc.stdout
    dot = (tmp_path / "graphs" / "net.Net.dot").read_text()
    adds = re.findall(r'label="add\\n(blocks\.\d\.add)\\n[^"]*\\n(net\.py:\d+)"', dot)
    assert adds == [(f"blocks.{i}.add", f"net.py:{add_line}") for i in range(3)]


def _line_of(text: str, code: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.strip() == code)
