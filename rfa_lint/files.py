"""Which files a run lints: Python files under the given paths, as git and flake8 would pick.

Directories are walked; hidden folders and flake8's default excludes are skipped, and inside a
git work tree so is everything git ignores (asked of git itself, so nested .gitignore files,
.git/info/exclude and global excludes all count).  Files named explicitly are always linted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterable

SKIPPED_DIRS = {"__pycache__", "CVS", "node_modules", "build", "dist"}


def python_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files to lint, in a stable order, without duplicates."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(dict.fromkeys(_walk(path)))
        else:
            found[path] = None
    return list(found)


def _walk(folder: Path) -> list[Path]:
    tracked = _git_visible(folder)
    result = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for name in sorted(files):
            path = Path(root, name)
            if name.endswith(".py") and (tracked is None or path.resolve() in tracked):
                result.append(path)
    return result


def _skipped(dirname: str) -> bool:
    return dirname.startswith(".") or dirname in SKIPPED_DIRS or dirname.endswith(".egg-info")


def _git_visible(folder: Path) -> set[Path] | None:
    """Files under ``folder`` that git does not ignore, or None when git has no say.

    Git has no say outside a work tree, nor inside a folder git ignores as a whole: naming such
    a folder (say a virtualenv's ``site-packages/torchvision``) asks for it explicitly.
    """
    try:
        ignored = subprocess.run(["git", "check-ignore", "-q", "."], cwd=folder, capture_output=True,
                                 timeout=60).returncode == 0
        if ignored:
            return None
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
            cwd=folder, capture_output=True, check=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {(folder / name).resolve() for name in out.decode("utf-8", "replace").split("\0") if name}
