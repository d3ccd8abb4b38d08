"""What an analysis produces: findings, the coverage of a file's models, a file's analysis.

The types the front doors, the reports, the language server and ``explain`` read, apart from
the pipeline that makes them (:mod:`rfa_lint.lint`), so that reading a result never imports the
sandbox.  Every name in them comes from user code (a layer's, a model's, a file's) and is made
:func:`printable` on the way in, so every format shows the same escaped text.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeGuard, TypeVar

from rfa_lint import rules

T = TypeVar("T")


def printable(text: str) -> str:
    """``text`` with each character that does not print escaped as Python would (``\\n``,
    ``\\x1b``, ``\\u2028``).

    Names come from user code (a layer's, a layer type's, a file's): escaped, none can start a
    line of its own in a report (a forged finding, a ``::error`` workflow command) or move a
    terminal's cursor.  Every finding and model record passes through here, so every format and
    both front doors show the same escaped text.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


@dataclass(frozen=True, order=True)
class Finding:
    """One finding: identified, compared and sorted by its place, code and message.

    ``col`` is 0-based (flake8 adds 1).  ``end_line`` / ``end_col`` end the span editors
    underline (exclusive; the layer's constructor call, :func:`place`), None for a finding about
    the file as a whole.  ``details`` are its numbers for machines, JSON-ready: for a layer
    finding ``model``, ``layers``, ``instances``, ``rf_min``, ``rf_max``, ``input_rf``,
    ``resolution``, ``productive_from`` (RFA104 adds ``kernel``, ``feature_map``, ``fits_from``),
    per axis, an infinite size as None; for RFA110 ``model``, ``resolution``, ``range``; for a
    model that was not analysed ``model`` and ``reason``.  In a notebook, ``cell`` is the cell
    (from 1, as Jupyter counts them) and the lines are that cell's.
    """

    path: str
    line: int
    col: int
    code: str
    message: str
    end_line: int | None = field(default=None, compare=False)
    end_col: int | None = field(default=None, compare=False)
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    cell: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", printable(self.path))
        object.__setattr__(self, "message", printable(self.message))
        object.__setattr__(self, "details", _printable_json(self.details))

    @property
    def text(self) -> str:
        return f"{self.code} {self.message}"


@dataclass(frozen=True)
class ModelRecord:
    """One model of a file and what became of it: the run's coverage.

    ``code`` is the RFA9xx code of a model that was not analysed (``reason`` says why, in the
    words of that code's message); ``traced`` the spatial input size the graph was traced at,
    which differs from the linted resolution when the model refused that one; ``builds`` the
    ``(file, class)`` of the user-code model classes an analysed model is made of; ``built`` how
    an analysed model was built: ``"meta"`` (weights without memory) or ``"cpu"`` (for real, as
    it needed its weights' values).  In a notebook, ``cell`` is the cell whose ``line`` it is.
    """

    name: str
    line: int
    analysed: bool
    code: str | None = None
    reason: str = ""
    traced: tuple[int, ...] | None = None
    builds: tuple[tuple[str, str], ...] = ()
    built: str | None = None
    cell: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", printable(self.name))
        object.__setattr__(self, "reason", printable(self.reason))
        object.__setattr__(self, "builds", tuple((printable(f), printable(n)) for f, n in self.builds))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "line": self.line, "analysed": self.analysed,
                "code": self.code, "reason": self.reason,
                "traced": list(self.traced) if self.traced else None,
                "builds": [list(item) for item in self.builds], "built": self.built,
                "cell": self.cell}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRecord:
        """The record of :meth:`to_json` data; ValueError for anything else (cached data is read
        from a folder others may write)."""
        keys = ("name", "line", "analysed", "code", "reason", "traced", "builds", "built", "cell")
        name, line, analysed, code, reason, traced, builds, built, cell = (data.get(key) for key in keys)
        if not (is_of(name, str) and is_of(line, int) and line >= 1 and is_of(analysed, bool)
                and (code is None or is_of(code, str) and code in rules.RULES) and is_of(reason, str)
                and (traced is None or is_of(traced, list) and all(is_of(v, int) and v >= 1 for v in traced))
                and is_of(builds, list) and all(is_of(item, list) and len(item) == 2
                                                and all(is_of(part, str) for part in item) for item in builds)
                and built in (None, "meta", "cpu") and (cell is None or is_of(cell, int) and cell >= 1)):
            raise ValueError("not a model record")
        return cls(name, line, analysed, code, reason, tuple(traced) if traced else None,
                   tuple((file, name_) for file, name_ in builds), built, cell)


def _printable_json(value: Any) -> Any:
    """JSON data with every string :func:`printable` (details name layers and models of user code)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Mapping):
        return {printable(str(k)): _printable_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable_json(v) for v in value]
    return value


def is_of(value: Any, kind: type[T]) -> TypeGuard[T]:
    """``isinstance``, except that a bool is no int (JSON's ``true`` is no line number)."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


@dataclass(frozen=True)
class Analysis:
    """A file's findings, its models' coverage, and the plain graph of every model analysed."""

    findings: list[Finding]
    graphs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: list[ModelRecord] = field(default_factory=list)
    #: False when a result may depend on more than the cache key sees (:attr:`rfa_lint.rules.Rule.cacheable`):
    #: a child that did not finish cleanly (a timeout, the memory limit, a crash, a death after
    #: its results were sent)
    cacheable: bool = True
    #: the files its models' children read, as they were then (:mod:`rfa_lint.sandbox.reads`):
    #: its cache entry holds only while they are unchanged
    reads: Mapping[str, tuple[int, ...] | None] = field(default_factory=dict)

    def rows(self) -> dict[str, Any]:
        """A cache entry's rows: per finding ``[line, col, code, message]``, what identifies it,
        and in ``extras`` the rest (``[end_line, end_col, details]``), in the same order; the
        models."""
        return {"findings": [[f.line, f.col, f.code, f.message] for f in self.findings],
                "extras": [[f.end_line, f.end_col, f.details] for f in self.findings],
                "models": [m.to_json() for m in self.models]}

    @classmethod
    def from_rows(cls, path: str, text: str, rows: Mapping[str, Any], graphs: Mapping[str, Any]) -> Analysis:
        """The analysis of :meth:`rows`, or ValueError (or TypeError, KeyError) when they are not
        rows rfa-lint could have written for this text: each finding a known code on a line of
        the file, in its rule's words, its span within the file; each model record well-typed.
        (The graphs are the caller's to check: the limits on them are the pipeline's.)"""
        last_line = len(text.splitlines()) + 1  # at least as many as Python counts
        findings = []
        if len(rows["findings"]) != len(rows["extras"]):
            raise ValueError("not a finding per extras row")
        for (line, col, code, message), (end_line, end_col, details) in zip(rows["findings"], rows["extras"]):
            if not (is_of(line, int) and 1 <= line <= last_line and is_of(col, int) and 0 <= col <= len(text)
                    and is_of(code, str) and code in rules.RULES and is_of(message, str)
                    and _message_pattern(code).fullmatch(message)
                    and (end_line is None or is_of(end_line, int) and line <= end_line <= last_line)
                    and (end_col is None or is_of(end_col, int) and 0 <= end_col <= len(text))
                    and is_of(details, dict)):
                raise ValueError("not a finding")
            findings.append(Finding(path, line, col, code, message, end_line, end_col, details))
        return cls(findings, dict(graphs), [ModelRecord.from_json(m) for m in rows["models"]])


@functools.cache
def _message_pattern(code: str) -> re.Pattern[str]:
    """The messages the pipeline writes for ``code``: the rule's words around printable
    values, maybe followed by a note in parentheses."""
    parts = string.Formatter().parse(rules.get(code).message)
    pattern = "".join(re.escape(text) + (".*" if name is not None else "") for text, name, _, _ in parts)
    return re.compile(pattern + r"( \(.*\))?")
