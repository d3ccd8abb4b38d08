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

Which files form the user's package, in one place: which module a file is, by the
``__init__.py`` files around it (:func:`package_of`, :func:`module_name`: the sandbox child
imports it under that name), which files importing it loads (:func:`local_modules`: the cache
keys on them, the pipeline reads their frameworks), and every module of a package
(:func:`package_modules`: the cheap pre-check reads them).  Reading other files safely
(:func:`read_regular`, :func:`module_text`: regular files of bounded size only) and telling their
edits apart without reading them (:func:`version`).
"""

from __future__ import annotations

import ast
import functools
import os
import re
import stat
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Iterable, Iterator

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


def module_text(module: Path) -> str:
    """A local module's text, read as the cache reads it: a regular file of bounded size (else
    "": what cannot be read defines nothing)."""
    try:
        return read_regular(module, MODULE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def package_modules(package: Path) -> Iterator[Path]:
    """Every module file of a package's folder tree: the folders that hold an ``__init__.py``,
    symbolic links followed (as imports do), each folder once."""
    seen, todo = set(), [package]
    while todo:
        folder = todo.pop()
        try:
            status = folder.stat()
            entries = list(os.scandir(folder))
        except OSError:
            continue
        if (status.st_dev, status.st_ino) in seen:  # a link back up the tree
            continue
        seen.add((status.st_dev, status.st_ino))
        for entry in entries:
            if entry.name.endswith(".py"):
                yield Path(entry.path)
            elif entry.name != "__pycache__" and os.path.isfile(os.path.join(entry.path, "__init__.py")):
                todo.append(Path(entry.path))


def local_modules(path: Path, text: str, absent: bool = False) -> set[Path]:
    """Files of the file's own folder or package that importing it loads, transitively; with
    ``absent``, also where a module it imports but that does not exist would be (created, it
    would change what the import does: an import that failed may succeed).
    """
    root, name = package_of(path)
    found: set[Path] = set()
    parents = _module_files(root, name.rpartition(".")[0])  # the child imports its package first
    todo = [*parents, *direct_imports(path, text, absent)]
    while todo:
        module = todo.pop()
        if module not in found and module != path:
            found.add(module)
            todo += imports_of(module, absent)
    return found


def imports_of(module: Path, absent: bool = False) -> frozenset[Path]:
    """Another module file's :func:`direct_imports`, remembered per :func:`rfa_lint.files.version`
    (read once per run, yet seen anew when the file changes in a long-lived process)."""
    try:
        stamp = version(module)
    except OSError:
        return frozenset()
    return _imports_as_of(module, stamp, absent) if stamp is not None else frozenset()


@functools.lru_cache(maxsize=4096)
def _imports_as_of(module: Path, stamp: tuple[int, ...], absent: bool) -> frozenset[Path]:
    try:
        text = read_regular(module, MODULE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    return frozenset(direct_imports(module, text, absent))


def direct_imports(path: Path, text: str, absent: bool = False) -> Iterator[Path]:
    """Files of the same folder or package that one module's import statements name (with
    ``absent``, also where the first missing one of a dotted name would be)."""
    root, name = package_of(path)
    package = name.rpartition(".")[0]  # for a package's __init__.py, the package itself
    top = name.partition(".")[0] if "." in name else None  # loose files import from their folder
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for module in _imported_names(tree, package):
        if top is None or module == top or module.startswith(top + "."):
            yield from _module_files(root, module, absent)


def _imported_names(tree: ast.Module, package: str) -> Iterator[str]:
    """Absolute dotted names an ``import`` might load, submodules named by ``from`` included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = ".".join(p for p in (parent, node.module) if p)
            if base:
                yield base
            yield from (f"{base}.{alias.name}" if base else alias.name for alias in node.names)


def _module_files(root: Path, dotted: str, absent: bool = False) -> Iterator[Path]:
    """The files importing ``dotted`` runs: each package's ``__init__.py``, then the module (with
    ``absent``, the module file of the first part that does not exist)."""
    folder = root
    for part in filter(None, dotted.split(".")):
        init, module = folder / part / "__init__.py", folder / f"{part}.py"
        if init.is_file():
            yield init
        elif module.is_file():
            yield module
            return
        else:
            if absent:
                yield module
            return
        folder = folder / part
