"""``# noqa`` comments: matched exactly as flake8 matches them, and added the way users write them.

Matching is for the CLI (flake8 does its own).  flake8 searches a finding's physical line for the comment, or all lines of a multi-line token (a
triple-quoted string) together; a bracketed statement's other lines do not count.  Codes match
by prefix (``# noqa: RFA1`` silences RFA101).  Lines are counted as the tokenizer counts them:
only ``\n`` ends a line (``str.splitlines`` also splits on form feeds and other separators).

Adding (``--add-noqa``, the language server's code action) edits the concrete syntax tree with
libcst, so everything but the comment stays as written: an existing comment is kept and an
existing ``# noqa: CODES`` gets the new codes merged in.  The comment goes where flake8 will look
for it: the finding's own line, or the last line of the multi-line string the line is part of.
"""

from __future__ import annotations

import functools
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, TypeVar

from flake8.defaults import NOQA_INLINE_REGEXP

from rfa_lint import notebook


class _Located(Protocol):
    @property
    def line(self) -> int: ...

    @property
    def code(self) -> str: ...


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


class Unparsable(ValueError):
    """libcst cannot parse the source: no comment can be added (the message says where)."""


@dataclass(frozen=True)
class Added:
    """What :func:`add_noqa` did: the new source, the lines it silenced, and the lines it could
    not (no line of the file ends there: a finding from another version of the file)."""

    source: bytes
    placed: frozenset[Any]  # lines of a module, (cell, line) places of a notebook
    unplaceable: frozenset[Any]
    changed: int  # lines that got or extended a comment


def add_noqa(source: bytes, codes_by_line: Mapping[int, Iterable[str]]) -> Added:
    """``source`` with ``# noqa: CODES`` on each line of ``codes_by_line``.

    Bytes in, bytes out: libcst keeps the file's encoding, line endings and every character the
    edit does not touch.  Raises :class:`Unparsable` for a file libcst cannot parse.
    """
    import libcst  # 0.1 s of imports: only runs that add comments pay it, never a plain lint
    from libcst.metadata import MetadataWrapper

    try:
        module = libcst.parse_module(source)
    except libcst.ParserSyntaxError as exc:
        raise Unparsable(f"libcst cannot parse it ({str(exc).splitlines()[0]})") from None
    spans = _spans(module.code)
    wanted: dict[int, set[str]] = {}
    for line, codes in codes_by_line.items():
        wanted.setdefault(spans.get(line, (line, line))[1], set()).update(codes)
    editor = _comment_editor()(wanted)
    edited = MetadataWrapper(module, unsafe_skip_copy=True).visit(editor)
    placed = frozenset(line for line in codes_by_line if spans.get(line, (line, line))[1] in editor.placed)
    changed = sum(old != new for old, new in zip(source.split(b"\n"), edited.bytes.split(b"\n")))
    return Added(edited.bytes, placed, frozenset(codes_by_line) - placed, changed)


def add_noqa_to_notebook(data: bytes, codes_by_place: Mapping[tuple[int, int], Iterable[str]]) -> Added:
    """A notebook's bytes with ``# noqa: CODES`` on each ``(cell, line)`` of ``codes_by_place``:
    added to the module its code cells make (:func:`add_noqa`), then written back into the cells,
    outputs and metadata kept.  ``placed`` / ``unplaceable`` are ``(cell, line)`` places.  Raises
    :class:`Unparsable` for a notebook nbformat cannot read or whose code libcst cannot parse."""
    try:
        cells = notebook.read(data)
    except notebook.NotANotebook as exc:
        raise Unparsable(f"nbformat cannot read it ({exc})") from None
    by_line = {cells.module_line(*place): place for place in codes_by_place}
    wanted = {line: codes_by_place[place] for line, place in by_line.items() if line}
    added = add_noqa(cells.text.encode(), wanted)
    text = cells.with_module_text(added.source.decode()) if added.source != cells.text.encode() else None
    placed = frozenset(by_line[line] for line in added.placed)
    return Added(data if text is None else text.encode(), placed, frozenset(codes_by_place) - placed,
                 added.changed)


@functools.cache
def _comment_editor() -> Any:
    """The libcst transformer class, made on first use (libcst loads only then)."""
    import libcst
    from libcst.metadata import PositionProvider

    class CommentEditor(libcst.CSTTransformer):
        """Puts the wanted codes into the comment that ends each wanted line."""

        METADATA_DEPENDENCIES = (PositionProvider,)

        def __init__(self, wanted: dict[int, set[str]]) -> None:
            super().__init__()
            self.wanted = wanted
            self.placed: set[int] = set()

        def leave_TrailingWhitespace(self, original: libcst.TrailingWhitespace,
                                     updated: libcst.TrailingWhitespace) -> libcst.TrailingWhitespace:
            line = self.get_metadata(PositionProvider, original).start.line
            if line not in self.wanted or line in self.placed:
                return updated
            self.placed.add(line)
            comment = updated.comment.value if updated.comment else None
            new = _with_codes(comment, self.wanted[line])
            if new == comment:
                return updated
            whitespace = updated.whitespace if comment else libcst.SimpleWhitespace("  ")
            return updated.with_changes(whitespace=whitespace, comment=libcst.Comment(new))

    return CommentEditor


def _with_codes(comment: str | None, codes: set[str]) -> str:
    """The comment with ``codes`` silenced: merged into its noqa list, or a noqa appended."""
    if comment is None:
        return f"# noqa: {', '.join(sorted(codes))}"
    match = NOQA_INLINE_REGEXP.search(comment)
    if match is None:
        return f"{comment}  # noqa: {', '.join(sorted(codes))}"
    if not match.group("codes"):
        return comment  # a bare ``# noqa`` silences everything already
    present = re.split(r"[,\s]+", match.group("codes").strip())
    merged = present + sorted(c for c in codes if not c.startswith(tuple(present)))
    start, end = match.span("codes")
    trailing = match.group("codes")[len(match.group("codes").rstrip()):]
    return f"{comment[:start]}{', '.join(merged)}{trailing}{comment[end:]}"
