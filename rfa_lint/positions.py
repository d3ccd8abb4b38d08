"""Where on a line a finding belongs: the span of the call that built the layer.

The sandbox knows a layer's line (its creation stack), not its columns.  The source does: the
call that starts on that line, outermost first, so ``self.conv = nn.Conv2d(3, 8, 3,\\n  padding=1)``
spans ``nn.Conv2d(...)`` over both lines, and ``layers.Conv2D(8, 3)(x)`` spans the whole
expression.  Editors underline that span, and ``flake8 --show-source`` puts its caret on it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Span:
    """1-based lines, 0-based columns counted in characters (flake8's convention), end exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int


def place(text: str, line: int) -> Span:
    """Where a finding of ``line`` goes: the outermost call that starts there (the layer's
    constructor), else the line's content without its indentation."""
    span = call_span(text, line)
    if span is not None:
        return span
    lines = text.split("\n")
    content = lines[line - 1].rstrip() if 0 < line <= len(lines) else ""
    return Span(line, len(content) - len(content.lstrip()), line, len(content))


def call_span(text: str, line: int) -> Span | None:
    """The span of the outermost call that starts on ``line``; None if no call starts there."""
    return _first_calls(text).get(line)


@lru_cache(maxsize=16)
def _first_calls(text: str) -> dict[int, Span]:
    """line -> the span of the first, outermost call starting on it.  Cached: a file's findings
    ask for their lines one by one."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    lines = text.split("\n")
    spans: dict[int, Span] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.end_lineno is not None and node.end_col_offset is not None:
            span = Span(node.lineno, _chars(lines, node.lineno, node.col_offset),
                        node.end_lineno, _chars(lines, node.end_lineno, node.end_col_offset))
            known = spans.get(span.line)
            if known is None or _outer_first(span) < _outer_first(known):
                spans[span.line] = span
    return spans


def _outer_first(span: Span) -> tuple[int, int, int]:
    return span.col, -span.end_line, -span.end_col


def _chars(lines: list[str], line: int, offset: int) -> int:
    """``ast`` counts columns in UTF-8 bytes; editors and flake8 in characters."""
    return len(lines[line - 1].encode("utf-8")[:offset].decode("utf-8", "replace"))
