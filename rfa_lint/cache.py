"""A content-hash cache of per-file results, so an unchanged file never starts a child again.

Key.  An entry is named by a hash of everything a file's findings depend on that is known
before running it: the code linted (its tokens and their places, without comments and blank
space: :func:`code_digest`), the file's absolute path (the child imports it as a module of its
package, and layer sites name it), the options, the isolation of model code in force (the
kernel's: :mod:`rfa_lint.sandbox.isolation`), and the environment -- the Python version,
rfa-lint's version and a digest of its own sources (so an edited checkout never reads results
of older code), and a digest of the installed distributions (:func:`installed`; the linter
process never imports a framework).  The entry records every other file the results depend
on, and holds only while each is unchanged (and each missing one still missing): every file the
file's children read (:mod:`rfa_lint.sandbox.reads`: the modules they imported wherever they
live -- a folder on ``PYTHONPATH``, an editable install's source -- and the files they opened, a
YAML config as much as a module; not the standard library or installed distributions, which
the environment covers), plus the local modules the file imports (``import x``, ``from . import
y`` resolved with :mod:`ast` to files of its folder or package, with their packages'
``__init__.py``), and where each one it imports but that does not exist would be.  Each is
recorded with its version (mtime, ctime, size, inode) and its hash: a hit compares versions,
and hashes only a file whose version changed (a ``touch`` or a checkout of the same bytes is
still a hit).  The entry is written by the linter's own process alone, from what the children
reported, and only when each file is still as the child read it.  Beside each entry, a note
keyed by the text's bytes names it, so an unchanged file is not even tokenized.  A hit costs
reading two small files and a ``stat`` per file it depends on: no parsing, no child, no
framework.  So results that the text, the options and the installation
decide are cached, failures included (an import error, a build that raises, a blocked
download); only what the machine decides (a timeout, the memory limit, a crash, a child that
died after sending its results) runs again (:attr:`rfa_lint.rules.Rule.cacheable`).

Location.  ``.rfa_cache/`` in the project root -- the nearest folder at or above the working
directory holding ``pyproject.toml``, ``setup.cfg`` or ``.git`` -- or else the user's cache
folder (``$XDG_CACHE_HOME/rfa-lint``, ``~/.cache/rfa-lint``, ``~/Library/Caches/rfa-lint``,
``%LOCALAPPDATA%\\rfa-lint``), so linting a loose folder never writes into it.  The cache folder
holds a ``.gitignore`` of ``*``.

Writes go to a temporary file in the cache folder, then ``os.replace``: parallel flake8 workers
share one cache and a reader never sees half an entry.  Nothing is ever evicted; delete the
folder to reclaim space.

Reads trust nothing: whoever can write the folder (a teammate sharing it, a restored CI cache)
can write entries.  Only regular files are read (a FIFO would hang the run, a device never end),
each up to a size; an entry must have the types and shape this module writes, or the linter's
(:func:`rfa_lint.lint.analyse_source` checks each finding against its rule); anything else is
a miss, and the run rewrites it.  A local module that cannot be read vouches for nothing: an
entry depending on one is never written, and never read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import re
import stat
import sys
import tokenize
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import rfa_lint
from rfa_lint.atomic import write_atomically
from rfa_lint.files import local_modules, read_regular, version

FORMAT = 3  # bump when the entry layout or the key changes
PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", ".git")
#: The most bytes read of each file: an entry (findings and coverage), its graphs (as much as a
#: child may send, :data:`rfa_lint.sandbox.RESULT_BYTES`); a module, :data:`files.MODULE_BYTES`.
ENTRY_BYTES = 4 << 20
GRAPHS_BYTES = 64 << 20
#: The largest file an entry depends on that is hashed (a data file a model reads); a larger
#: one vouches for nothing, and the results that depend on it are not cached.
FILE_BYTES = 256 << 20


CACHE_DIR_VARIABLE = "RFA_LINT_CACHE_DIR"


def default_folder(start: str | Path | None = None) -> Path:
    """``$RFA_LINT_CACHE_DIR`` when set; else ``.rfa_cache`` in the project around ``start``
    (default: the working directory), else the user's cache folder."""
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE])
    start = Path(start or os.getcwd()).resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder / ".rfa_cache"
    return user_cache_folder()


def user_cache_folder() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rfa-lint"


@functools.cache
def environment() -> dict[str, Any]:
    """What else a result depends on: interpreter, rfa-lint's code, installed distributions."""
    package = Path(rfa_lint.__file__).parent
    sources = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        sources.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return {
        "python": sys.version,
        "rfa-lint": [rfa_lint.__version__, sources.hexdigest()],
        "installed": installed(),
    }


def installed() -> str:
    """A digest of the distributions installed where this interpreter imports from: the names of
    their metadata folders and path files in each ``sys.path`` folder (``torch-2.4.1.dist-info``,
    ``__editable__.x.pth``), with their change times.  ``pip install`` and ``pip uninstall``
    change it; so a result that an import, a build or a download failure decided is keyed on it
    as much as one with findings.  (Listing the folders costs well under a millisecond, asking
    ``importlib.metadata`` each distribution's version ~80 ms.)"""
    digest = hashlib.sha256()
    for folder in sys.path[1:]:  # the first is the script's folder or the working one, not installed
        try:
            names = sorted(n for n in os.listdir(folder or ".") if n.endswith(DISTRIBUTION_SUFFIXES))
        except OSError:
            continue
        for name in names:
            with contextlib.suppress(OSError):
                changed = os.stat(os.path.join(folder or ".", name)).st_mtime_ns
                digest.update(f"{folder}\0{name}\0{changed}\0".encode())
    return digest.hexdigest()


DISTRIBUTION_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".egg", ".pth")


def code_digest(text: str) -> str:
    """A digest of what Python runs of ``text``: its tokens with their positions, without the
    comments, blank lines and trailing spaces, which no finding depends on (an edit there that
    keeps the lines where they are is a cache hit).  Except ``# rfa-lint:`` directives: in a file
    that has any, every comment's line counts (a comment between a directive and its class
    joins them) and the directives' words.  Text that does not tokenize is taken whole."""
    digest = hashlib.sha256()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return hashlib.sha256(b"text\0" + text.encode("utf-8", "surrogatepass")).hexdigest()
    directives = any(t.type == tokenize.COMMENT and DIRECTIVE in t.string for t in tokens)
    for token in tokens:
        if token.type == tokenize.COMMENT:
            if directives:
                digest.update(f"#{token.start[0]}{token.string if DIRECTIVE in token.string else ''}\0"
                              .encode("utf-8", "surrogatepass"))
        elif token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):  # placed after the comment
            digest.update(f"{token.type}\0".encode())
        elif token.type != tokenize.NL:
            digest.update(f"{token.type} {token.start} {token.string}\0".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


DIRECTIVE = "rfa-lint"


class Cache:
    """Entries in one folder: a file's findings, and beside them its models' graphs.

    Hits bring the graphs back only with ``graphs=True``: only pictures need them, and they are
    most of the bytes (24 MB of torchvision's 25), so a plain re-run never reads them.  File
    digests are remembered per :func:`rfa_lint.files.version`: a run hashes each shared local
    module once, and a long-lived cache (the language server's) still sees a sibling's edit.
    """

    def __init__(self, folder: str | Path, graphs: bool = False) -> None:
        self.folder, self.graphs = Path(folder), graphs
        self._digests: dict[str, tuple[tuple[int, ...], str | None]] = {}

    def key(self, path: str, text: str, options: Any, text_digest: str | None = None) -> str:
        """The entry's key; ``text_digest`` stands for :func:`code_digest` (see :meth:`_known_key`)."""
        settings = dataclasses.asdict(options)
        settings.get("limits", {}).pop("worker", None)  # where models run changes no finding
        material = {
            "format": FORMAT,
            "path": os.path.abspath(path),
            "text": text_digest or code_digest(text),
            "options": settings,
            "environment": environment(),
            "isolation": _isolation(options),
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=repr).encode()).hexdigest()

    def _pointer(self, path: str, text: str, options: Any) -> Path:
        """Where the key of this very text is noted: tokenizing costs ~0.4 s per MB of source
        (torchvision's models), hashing it nothing, so an unchanged file is found by its bytes."""
        exact = "exact " + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return self._entry(self.key(path, text, options, exact)).with_suffix(".key")

    def _known_key(self, path: str, text: str, options: Any) -> tuple[str, bool]:
        """(the entry's key, whether it was noted for this very text)."""
        try:
            known = read_regular(self._pointer(path, text, options), 64).decode("ascii")
            if KEY.fullmatch(known):
                return known, True
        except (OSError, UnicodeDecodeError):
            pass
        return self.key(path, text, options), False

    def load(self, path: str, text: str, options: Any) -> tuple[Any, dict] | None:
        """(findings, graphs) stored for this file, or None when none are, or they are stale or
        malformed.  The graphs are {} unless the cache was opened with ``graphs=True``.

        The findings are JSON data as :meth:`store` got them, for the caller to check.
        """
        try:
            key, noted = self._known_key(path, text, options)
            entry_path = self._entry(key)
            entry = json.loads(read_regular(entry_path, ENTRY_BYTES))
            files, findings = entry["files"], entry["findings"]
            if not (isinstance(files, dict) and all(self._unchanged(p, seen) for p, seen in files.items())):
                return None
            graphs = json.loads(read_regular(_graphs_path(entry_path), GRAPHS_BYTES)) if self.graphs else {}
            if not isinstance(graphs, dict):
                return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None
        if not noted:  # a text that only differs in comments: found by its bytes next time
            self._note(path, text, options, key)
        return findings, graphs

    def store(self, path: str, text: str, options: Any, findings: Any, graphs: dict,
              reads: Mapping[str, tuple[int, ...] | None] = MappingProxyType({})) -> None:
        """Save JSON-able results that depend on ``reads`` (path -> the version a child read, None
        for a file it found absent) besides the file's local modules.  Nothing is saved when one
        of them changed since it was read, or cannot be hashed; nor when the cache folder cannot
        be written."""
        linted = os.path.abspath(path)
        now = {str(m): _version(m) for m in local_modules(Path(path).resolve(), text, absent=True)}
        for file, seen in reads.items():
            if file != linted:
                now[file] = _version(file)
                if now[file] != seen:  # edited while its models ran: which text they saw is unknown
                    return
        files = {file: [list(stamp) if stamp else None, self._digest(file)]
                 for file, stamp in sorted(now.items()) if stamp is not False}
        data = json.dumps(graphs).encode()
        if len(files) < len(now) or any(digest is None for _, digest in files.values()):
            return  # a file that cannot be looked at or hashed vouches for nothing
        if len(data) > GRAPHS_BYTES:
            return
        key = self.key(path, text, options)
        entry_path = self._entry(key)
        try:
            self._prepare_folder()
            write_atomically(_graphs_path(entry_path), data)  # first: an entry has its graphs
            write_atomically(entry_path, json.dumps({"files": files, "findings": findings}).encode())
        except OSError:
            return
        self._note(path, text, options, key)

    def _unchanged(self, path: Any, seen: Any) -> bool:
        """Whether a file an entry depends on is as it was: the same version, else the same hash
        (absent: still absent)."""
        if not (isinstance(path, str) and os.path.isabs(path) and isinstance(seen, list) and len(seen) == 2):
            return False
        stamp, digest = seen
        if not isinstance(digest, str):
            return False
        now = _version(path)
        if now is False:
            return False
        if now is None or stamp is None:
            return now is None and stamp is None and digest == ABSENT
        return list(now) == stamp or self._digest(path) == digest

    def _note(self, path: str, text: str, options: Any, key: str) -> None:
        pointer = self._pointer(path, text, options)
        with contextlib.suppress(OSError):
            pointer.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(pointer, key.encode("ascii"))

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key[2:]}.json"

    def _prepare_folder(self) -> None:
        ignore = self.folder / ".gitignore"
        if not ignore.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(ignore, b"# written by rfa-lint: its cache never belongs in git\n*\n")

    def _digest(self, path: str) -> str | None:
        """The file's hash, ``ABSENT`` when there is no such file; None when it is no regular
        file of at most :data:`FILE_BYTES` that can be read."""
        try:
            stamp = version(path)
        except OSError:
            return None
        if stamp is None:
            return ABSENT
        known = self._digests.get(path)
        if known is None or known[0] != stamp:
            try:
                digest = hash_file(Path(path), FILE_BYTES)
            except FileNotFoundError:
                digest = ABSENT
            except OSError:
                digest = None
            known = self._digests[path] = stamp, digest
        return known[1]


def _isolation(options: Any) -> tuple | None:
    """What the kernel's isolation of model code depends on (:func:`~rfa_lint.sandbox.isolation.
    fingerprint`, read without starting a process), None when none runs: a model whose library
    writes outside its work folder builds under processes only and fails under Landlock, so a
    result computed under one is no hit under the other."""
    if not options.execute:
        return None
    from rfa_lint.sandbox import isolation

    return isolation.fingerprint(options.limits.isolation)


ABSENT = "absent"  # the digest of a module file that does not exist
KEY = re.compile("[0-9a-f]{64}")


def _graphs_path(entry_path: Path) -> Path:
    return entry_path.with_suffix(".graphs")


def _version(path: str | os.PathLike) -> tuple[int, ...] | None | bool:
    """:func:`rfa_lint.files.version`, or False for a file that cannot be looked at."""
    try:
        return version(path)
    except OSError:
        return False


def hash_file(path: Path, limit: int) -> str:
    """The sha256 of a regular file of at most ``limit`` bytes, read in pieces (OSError else:
    :func:`rfa_lint.files.read_regular`'s checks)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(f"not a regular file: {path}")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"not a regular file: {path}")
        while piece := handle.read(1 << 20):
            size += len(piece)
            if size > limit:
                raise OSError(f"larger than {limit} bytes: {path}")
            digest.update(piece)
    return digest.hexdigest()
