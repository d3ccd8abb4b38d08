"""``[tool.rfa-lint]`` in pyproject.toml: project defaults for both front doors.

```toml
[tool.rfa-lint]
res = 32                  # or "32x48" (height x width)
timeout = 60              # seconds per model (and for the file's import)
memory-limit = 6144       # MiB of address space per child
no-exec = false           # true: never run model code (each model gets RFA900)
filter-kernel-size-1 = false
select = ["RFA"]
ignore = ["RFA104"]

[tool.rfa-lint.models.WideResNet]   # constructor arguments for a model class or factory
args = [28, 10]
kwargs = { dropout = 0.3 }
input-shape = [1, 3, 32, 32]        # example input to trace with
```
Command-line options override these; flake8's own options come from ``[flake8]``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

KEYS = {"res", "timeout", "memory-limit", "no-exec", "filter-kernel-size-1", "select", "ignore", "models"}
MODEL_KEYS = {"args", "kwargs", "input-shape", "skip"}


class ConfigError(ValueError):
    """pyproject.toml's ``[tool.rfa-lint]`` table is malformed."""


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


def load(start: str | Path) -> dict[str, Any]:
    """The validated ``[tool.rfa-lint]`` table that applies to ``start`` ({} when none)."""
    path = find_pyproject(start)
    if path is None:
        return {}
    table = _read(path)["tool"]["rfa-lint"]
    unknown = set(table) - KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown [tool.rfa-lint] keys: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(KEYS))}")
    for name, model in table.get("models", {}).items():
        if not isinstance(model, dict) or set(model) - MODEL_KEYS:
            raise ConfigError(f"{path}: [tool.rfa-lint.models.{name}] takes only "
                              f"{', '.join(sorted(MODEL_KEYS))}")
    return table


def merged(start: str | Path, given: dict[str, Any]) -> dict[str, Any]:
    """The project's settings for ``start`` with the non-None command-line values on top."""
    return {**load(start), **{key: value for key, value in given.items() if value is not None}}
