"""``[tool.rfa-lint]`` in pyproject.toml: project defaults for both front doors.

```toml
[tool.rfa-lint]
res = 32                  # or "32x48" (height x width)
ignore = ["RFA104"]

[tool.rfa-lint.models.WideResNet]   # constructor arguments for a model class or factory
args = [28, 10]
kwargs = { dropout = 0.3 }
input-shape = [1, 3, 32, 32]        # example input to trace with
```
The keys, their TOML types and what they allow come from :data:`rfa_lint.settings.SETTINGS`;
a value of another type is refused, never converted (``no-exec = "false"`` is not false).
The front doors' own options override these.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

from rfa_lint.settings import SETTINGS, resolve

KEYS = {setting.name: setting for setting in SETTINGS if setting.toml}
TOML_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}


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


def load(start: str | Path) -> dict[str, Any]:
    """The checked ``[tool.rfa-lint]`` table that applies to ``start`` ({} when none)."""
    path = find_pyproject(start)
    if path is None:
        return {}
    table = _read(path)["tool"]["rfa-lint"]
    unknown = set(table) - set(KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown [tool.rfa-lint] keys: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(KEYS)}")
    return {key: _checked(path, key, value) for key, value in table.items()}


def _checked(path: Path, key: str, value: Any) -> Any:
    """A TOML value of one of the key's types, through its setting's parser."""
    setting = KEYS[key]
    try:
        if type(value) not in setting.toml:
            kind = TOML_NAMES.get(type(value), type(value).__name__)
            raise ValueError(f"expected {setting.allowed}, got {value!r} (a TOML {kind})")
        return setting.check(value)
    except ValueError as exc:
        raise ConfigError(f"{path}: [tool.rfa-lint] {key}: {exc}") from None


def merged(start: str | Path, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting for files at ``start``: the front door's (non-None) values, over the
    project's ``[tool.rfa-lint]``, over the defaults."""
    return resolve(given, load(start))
