"""``[tool.rfa-lint]`` in pyproject.toml: which file holds a folder's project defaults.

```toml
[tool.rfa-lint]
res = 32                  # or "32x48" (height x width)
ignore = ["RFA104"]

[tool.rfa-lint.models.WideResNet]   # constructor arguments for a model class or factory
args = [28, 10]
kwargs = { dropout = 0.3 }
input-shape = [1, 3, 32, 32]        # example input to trace with
```
This module finds and reads the table (or reads the file ``--config`` names); what its keys may
hold is :mod:`rfa_lint.settings`'.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """pyproject.toml's ``[tool.rfa-lint]`` table is malformed; the message names file and key."""


def find_pyproject(start: str | Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has a ``[tool.rfa-lint]`` table."""
    folder = Path(start).resolve()
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file() and "rfa-lint" in _read(path).get("tool", {}):
            return path
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load(start: str | Path) -> tuple[Path | None, dict[str, Any]]:
    """The ``[tool.rfa-lint]`` table that applies to ``start``, as TOML gave it, and its file
    ((None, {}) when there is none)."""
    path = find_pyproject(start)
    return (None, {}) if path is None else (path, _read(path)["tool"]["rfa-lint"])


def read(path: Path) -> tuple[Path, dict[str, Any]]:
    """The ``[tool.rfa-lint]`` table of a file named on purpose (``--config``): a pyproject.toml,
    or an rfa-lint.toml holding only that table.  A file without one is an error, not "no
    settings": the run would quietly ignore what its user meant to apply."""
    tool = _read(path).get("tool", {})
    if not isinstance(tool, dict) or "rfa-lint" not in tool:
        raise ConfigError(f"{path}: no [tool.rfa-lint] table")
    return path, tool["rfa-lint"]
