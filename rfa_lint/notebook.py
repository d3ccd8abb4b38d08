"""Jupyter notebooks as Python sources: the code cells, joined in order, are the module.

A notebook is linted as the module its code cells make, so its models are found and built as a
``.py`` file's are, and every finding maps back to the cell and the line within it that the
user sees (ruff's ``nb.ipynb:cell 3:8:13``).  Cells are counted from 1 as Jupyter shows them,
markdown and raw cells included.

IPython's own syntax is neutralised line for line, so that each line of the module is one line
of one cell: a line magic (``%matplotlib inline``), a shell escape (``!pip install timm``) or a
help query (``model?``) becomes ``pass`` at its indentation, an assignment from one
(``files = !ls``) assigns ``None``, a cell magic whose body is Python (``%%time``,
``%%capture``) keeps its body, and any other cell magic (``%%bash``, ``%%writefile x.py``) is
commented out whole.  Like ruff, this reads escapes at the start of a line only: a continuation
line that begins with ``%`` (a modulo) is read as a magic.

Edits of a user's notebook (``--add-noqa``, the editor's quick fix) are made on the module's
text, then written back into the cells they belong to, with nbformat, keeping outputs and
metadata (a notebook older than format 4 is written as 4, as Jupyter itself saves it).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable

SUFFIX = ".ipynb"
#: cell magics whose body is plain Python, run by IPython with something around it
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "memit", "snakeviz"})
_ESCAPE = re.compile(r"^(?P<indent>[ \t]*)(?:[%!]|\?\??\s*[\w.]+\s*$|[\w.]+\s*\?\??\s*$)")
_ASSIGNED_ESCAPE = re.compile(r"^(?P<target>[ \t]*[\w.\[\], ]+?\s*=)\s*[%!]")


class NotANotebook(ValueError):
    """The bytes are not a notebook nbformat can read (the message says why)."""


@dataclass(frozen=True)
class Notebook:
    """A notebook's code as one module: ``text``, and per line of it (from 0) the ``(cell, line)``
    it stands for, both from 1.  ``raw`` keeps what nbformat read, for writing edits back (None
    for the cells an editor sent)."""

    text: str
    places: tuple[tuple[int, int], ...]
    neutralised: frozenset[int]
    raw: Any

    def place(self, line: int) -> tuple[int, int]:
        """The (cell, line in the cell) of the module's ``line`` (from 1)."""
        if not self.places:
            return 1, line
        return self.places[min(max(line, 1), len(self.places)) - 1]

    def module_line(self, cell: int, line: int) -> int | None:
        """The module's line (from 1) of ``line`` of ``cell``; None for a line no code cell has."""
        try:
            return self.places.index((cell, line)) + 1
        except ValueError:
            return None

    def with_module_text(self, text: str) -> str:
        """The notebook (as nbformat writes it) with the module's edited ``text`` put back into
        its cells: only lines that changed are replaced, neutralised magics never are."""
        import nbformat

        lines = text.splitlines(keepends=True)
        if len(lines) != len(self.places):
            raise ValueError("an edit of a notebook's code may not add or remove lines")
        notebook = nbformat.from_dict(self.raw)
        cells: dict[int, list[str]] = {}
        for index, (cell, _) in enumerate(self.places):
            cells.setdefault(cell, []).append(lines[index])
        original = self.text.splitlines(keepends=True)
        for cell, new_lines in cells.items():
            first = self.places.index((cell, 1))
            source = notebook.cells[cell - 1].source
            old_lines = source.splitlines(keepends=True)
            for offset, new in enumerate(new_lines):
                if first + offset not in self.neutralised and new != original[first + offset]:
                    old_lines[offset] = new if offset < len(old_lines) - 1 or source.endswith("\n") \
                        else new.rstrip("\n")
            notebook.cells[cell - 1].source = "".join(old_lines)
        return nbformat.writes(notebook, version=notebook.nbformat)


def is_notebook(path: str) -> bool:
    return path.endswith(SUFFIX)


def cell_of(path: str | os.PathLike, line: int) -> tuple[int | None, int]:
    """Where a site's ``line`` (of the module) is shown: in the notebook at ``path`` the cell
    and the line in it, read from the file; ``(None, line)`` in any other file, or in a notebook
    that no longer reads."""
    if not is_notebook(str(path)):
        return None, line
    try:
        stat = os.stat(path)
    except OSError:
        return None, line
    cells = _read_file(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if cells is None or not 0 < line <= len(cells.places):
        return None, line
    return cells.place(line)


def site(name: str, path: str | os.PathLike, line: int) -> str:
    """A layer's site as a person finds it: ``name:line``, in a notebook ``name:cell N:L``."""
    cell, line = cell_of(path, line)
    return f"{name}:{line}" if cell is None else f"{name}:cell {cell}:{line}"


@functools.lru_cache(maxsize=8)
def _read_file(path: str, mtime_ns: int, size: int) -> Notebook | None:
    """The notebook at ``path`` as it is now (the stat keys the cache: each of a graph's sites asks)."""
    try:
        with open(path, "rb") as handle:
            return read(handle.read())
    except (OSError, NotANotebook):
        return None


def read(data: bytes) -> Notebook:
    """The module of a notebook's bytes; :class:`NotANotebook` for anything nbformat refuses."""
    import nbformat

    try:
        raw = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and version errors of many types
        raise NotANotebook(f"not a notebook nbformat can read: {type(exc).__name__}: {exc}") from None
    cells = raw.get("cells")
    if not (isinstance(cells, list) and all(isinstance(c, dict) and isinstance(c.get("source", ""), str)
                                            for c in cells)):
        raise NotANotebook("not a notebook nbformat can read: no list of cells")
    return of_cells(((number, cell.source) for number, cell in enumerate(raw.cells, start=1)
                     if cell.get("cell_type") == "code"), raw)


def of_cells(cells: Iterable[tuple[int, str]], raw: Any = None) -> Notebook:
    """The module of code cells given as ``(number, source)``, in order: a file's cells as
    Jupyter counts them, or the cells an editor sends (:mod:`rfa_lint.lsp`)."""
    module: list[str] = []
    places: list[tuple[int, int]] = []
    neutralised: set[int] = set()
    for number, source in cells:
        for line_number, (line, changed) in enumerate(_python_lines(source), start=1):
            if changed:
                neutralised.add(len(module))
            module.append(line)
            places.append((number, line_number))
    return Notebook("".join(module), tuple(places), frozenset(neutralised), raw)


def _python_lines(source: str) -> list[tuple[str, bool]]:
    """A cell's lines as Python, each ending in a newline, and whether it was neutralised."""
    lines = [line if line.endswith("\n") else line + "\n" for line in source.splitlines()]
    if lines and lines[0].startswith("%%"):
        magic = lines[0][2:].split(maxsplit=1)[0] if lines[0][2:].strip() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return [(f"# {line}" if line.strip() else line, True) for line in lines]
        return [("pass\n", True), *_escaped(lines[1:])]
    return _escaped(lines)


def _escaped(lines: list[str]) -> list[tuple[str, bool]]:
    result = []
    for line in lines:
        assigned = _ASSIGNED_ESCAPE.match(line)
        if assigned:
            result.append((f"{assigned['target']} None\n", True))
        elif (escape := _ESCAPE.match(line)) and not line.lstrip().startswith("!="):
            result.append((f"{escape['indent']}pass\n", True))
        else:
            result.append((line, False))
    return result
