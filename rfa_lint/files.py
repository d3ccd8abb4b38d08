"""Which files a run lints: Python files and notebooks under the given paths, as git and ruff
would pick.

Directories are walked; what ``exclude`` globs match (by default hidden files and folders and
flake8's default excludes) is skipped, and inside a
git work tree so is everything git ignores (asked of git itself, so nested .gitignore files,
.git/info/exclude and global excludes all count).  Files named explicitly are always linted.
Only regular files are read: a FIFO or a device (``zero.py -> /dev/zero``) would block the run or
never end, so it is skipped, with a note on stderr when it was named explicitly.

Git runs user configuration: a repository's ``core.fsmonitor`` is a program git starts.  So git
is always told not to (``-c core.fsmonitor=false``), and with ``run_git=False`` (a ``--no-exec``
run, which must start no program at all) git is not asked and nothing it would ignore is left
out.

Which module a file is, by the ``__init__.py`` files around it (:func:`package_of`,
:func:`module_name`): the sandbox child imports it under that name, and the cache follows the
imports of its package.  Reading other files safely (:func:`read_regular`: regular files of
bounded size only) and telling their edits apart without reading them (:func:`version`).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Iterable

#: what a walk lints: Python modules, and Jupyter notebooks (their code cells make one module)
SOURCE_SUFFIXES = (".py", ".ipynb")
#: globs of what a walk leaves out (``--exclude``): hidden files and folders, flake8's excludes
DEFAULT_EXCLUDE = (".*", "__pycache__", "CVS", "node_modules", "build", "dist", "*.egg-info")
GIT = ("git", "-c", "core.fsmonitor=false")


def python_files(
    paths: Iterable[str | Path], run_git: bool = True, exclude: Iterable[str] = DEFAULT_EXCLUDE
) -> list[Path]:
    """Files to lint, in a stable order, without duplicates; a walk leaves out what ``exclude``
    :func:`matches`."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(dict.fromkeys(_walk(path, run_git, tuple(exclude))))
        elif path.is_file():
            found[path] = None
        else:
            print(f"rfa-lint: {path}: skipped, not a regular file ({_kind(path)})", file=sys.stderr)
    return list(found)


def _kind(path: Path) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return exc.strerror or "unreadable"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"


def _walk(folder: Path, run_git: bool, exclude: tuple[str, ...]) -> list[Path]:
    tracked = _git_visible(folder) if run_git else None
    result = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not matches(Path(root, d), exclude))
        for name in sorted(files):
            path = Path(root, name)
            if (name.endswith(SOURCE_SUFFIXES) and not matches(path, exclude) and path.is_file()
                    and (tracked is None or path.resolve() in tracked)):
                result.append(path)
    return result


def matches(path: Path, globs: Iterable[str]) -> bool:
    """The rule of ``exclude`` and ``per-file-ignores``: a glob naming a path (``/project/tests/*.py``,
    made absolute by its reader) matches the absolute path, any other glob the path's name.

    As ruff, and unlike flake8, ``*_*`` does not match every file under ``/home/me_too``.
    """
    name, absolute = path.name, os.path.abspath(path)
    return any(fnmatch(absolute, glob) if "/" in glob else name not in ("", ".", "..") and fnmatch(name, glob)
               for glob in globs)


def _git_visible(folder: Path) -> set[Path] | None:
    """Files under ``folder`` that git does not ignore, or None when git has no say.

    Git has no say outside a work tree, nor inside a folder git ignores as a whole: naming such
    a folder (say a virtualenv's ``site-packages/torchvision``) asks for it explicitly.
    """
    try:
        ignored = subprocess.run([*GIT, "check-ignore", "-q", "."], cwd=folder, capture_output=True,
                                 timeout=60).returncode == 0
        if ignored:
            return None
        out = subprocess.run(
            [*GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
            cwd=folder, capture_output=True, check=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {(folder / name).resolve() for name in out.decode("utf-8", "replace").split("\0") if name}


def package_of(path: Path) -> tuple[Path, str]:
    """(sys.path root, dotted module name) for a file, walking up through ``__init__.py`` folders.

    A package's ``__init__.py`` comes out as ``pkg.__init__`` (the cache reads its package off
    the name); :func:`module_name` gives the name it is imported under.
    """
    parts, folder = [path.stem.replace(".", "_")], path.parent  # resnet.v2.py is no package resnet
    while (folder / "__init__.py").exists() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def module_name(path: Path, text: str = "") -> tuple[Path, str]:
    """Like :func:`package_of`, but a package's ``__init__.py`` is the package itself.

    A module whose ``text`` imports relatively (``from .blocks import Block``, ``from ..utils
    import x``) from folders without ``__init__.py`` (a repository's ``models/``) is in a namespace
    package: as many folders as its deepest relative import climbs belong to its name, as they do
    when the project runs it (``python -m models.convnext``).
    """
    root, name = package_of(path)
    package, _, last = name.rpartition(".")
    name = package if last == "__init__" and package else name
    levels = max(map(len, _RELATIVE_IMPORT.findall(text)), default=0) - name.count(".")
    while levels > 0 and root.parent != root:
        name, root, levels = f"{root.name}.{name}", root.parent, levels - 1
    return root, name


#: ``from .x import`` / ``from .. import`` at a line's start: the dots of a relative import.
_RELATIVE_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.+)", re.MULTILINE)


#: The most bytes read of a module file that is not being linted (a local module a file imports).
MODULE_BYTES = 16 << 20


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError for anything else.

    Checked before opening (opening a FIFO waits for a writer, some devices act when opened) and
    again on what was opened (the path may have been swapped in between).
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(f"not a regular file: {path}")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise OSError(f"not a regular file of at most {limit} bytes: {path}")
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while read
        raise OSError(f"larger than {limit} bytes: {path}")
    return data


def version(path: str | os.PathLike) -> tuple[int, int, int, int] | None:
    """What tells a file's edits apart without reading it: (mtime, ctime, size, inode); None when
    there is no such file (OSError when it cannot be looked at).  The ctime too: a copy that
    restores the mtime (``cp -p``, ``rsync -t``) still changes it."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino
