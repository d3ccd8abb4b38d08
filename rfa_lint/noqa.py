"""``# noqa`` comments, matched exactly as flake8 matches them (for the CLI; flake8 does its own).

flake8 searches a finding's physical line for the comment, or all lines of a multi-line token (a
triple-quoted string) together; a bracketed statement's other lines do not count.  Codes match
by prefix (``# noqa: RFA1`` silences RFA101).  Lines are counted as the tokenizer counts them:
only ``\n`` ends a line (``str.splitlines`` also splits on form feeds and other separators).
"""

from __future__ import annotations

import io
import re
import tokenize
from typing import Protocol, TypeVar

from flake8.defaults import NOQA_INLINE_REGEXP


class _Located(Protocol):
    line: int
    code: str


F = TypeVar("F", bound=_Located)


def without_noqa(findings: list[F], text: str) -> list[F]:
    """The findings not silenced by a ``# noqa`` / ``# noqa: CODE`` comment in ``text``.

    A file without any noqa comment is not tokenized: that would be most of a cached re-run.
    """
    if not findings or not NOQA_INLINE_REGEXP.search(text):
        return findings
    lines, spans = text.split("\n"), _spans(text)
    kept = []
    for finding in findings:
        start, end = spans.get(finding.line, (finding.line, finding.line))
        match = NOQA_INLINE_REGEXP.search("\n".join(lines[start - 1:end]))
        codes = match and match.group("codes")
        silenced = match and (not codes or finding.code.startswith(tuple(re.split(r"[,\s]+", codes.strip()))))
        if not silenced:
            kept.append(finding)
    return kept


def _spans(text: str) -> dict[int, tuple[int, int]]:
    """line -> the (first, last) lines flake8 searches for its noqa comment."""
    spans: dict[int, tuple[int, int]] = {}
    first, last = None, None
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.ENDMARKER, tokenize.DEDENT):
                continue
            first = token.start[0] if first is None else min(first, token.start[0])
            last = token.end[0] if last is None else max(last, token.end[0])
            if token.type in (tokenize.NL, tokenize.NEWLINE):
                spans.update(dict.fromkeys(range(first, last + 1), (first, last)))
                first, last = None, None
    except (tokenize.TokenError, SyntaxError):
        pass
    return spans
