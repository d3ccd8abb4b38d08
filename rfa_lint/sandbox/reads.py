"""The files a sandbox child read, recorded in the child: a file's results depend on them.

A model may be built from a library on ``PYTHONPATH``, from an editable install's source folder,
or from a YAML file it opens; the cache must see an edit of any of them.  Python announces each
file it opens (the ``open`` audit event: ``open()``, ``os.open``, and the source of each module
imported), and :data:`sys.modules` names the modules loaded otherwise (extension modules).  The
child records each file's version (:func:`rfa_lint.files.version`) when it first opens it, and
a file it tried to open that did not exist (creating it would change what the model does), and
sends them as one ``reads`` event at its end (:func:`record`, :meth:`Recorder.event`); the
parent checks and hashes them, and alone writes the cache (:mod:`rfa_lint.cache`).

Left out, because the cache key covers them otherwise or they are no input: the standard
library and the installed distributions (each folder of ``sys.path`` that holds any: their
installs and removals are in the key, :func:`rfa_lint.cache.installed`),
rfa-lint's own code (its digest is in the key), the child's work folder, the files the child
opened to write (its own output), bytecode caches (compiled from a recorded source), and
``/proc``, ``/sys``, ``/dev``.
"""

from __future__ import annotations

import os
import site
import stat
import sys
import sysconfig
import threading
from typing import Any

import rfa_lint
from rfa_lint.cache import DISTRIBUTION_SUFFIXES
from rfa_lint.files import version

#: The most files one child records; past it the record is incomplete, and the results uncached.
MAX_FILES = 20_000
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
BYTECODE = f"{os.sep}__pycache__{os.sep}"  # compiled from a source that is recorded itself


def covered_folders() -> tuple[str, ...]:
    """The folders whose files the record leaves out (each ending in a separator), as given and
    with links resolved: the paths a child opens come either way."""
    paths = sysconfig.get_paths()
    folders = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths}
    folders |= set(getattr(site, "getsitepackages", list)())
    if site.ENABLE_USER_SITE:
        folders.add(site.getusersitepackages())
    folders |= {folder for folder in sys.path if folder and _holds_distributions(folder)}
    folders |= {os.path.dirname(rfa_lint.__file__), os.getcwd(), *SYSTEM_FOLDERS}
    return tuple(sorted({os.path.join(form(folder), "") for folder in folders
                         for form in (os.path.abspath, os.path.realpath)}))


def _holds_distributions(folder: str) -> bool:
    try:
        return any(name.endswith(DISTRIBUTION_SUFFIXES) for name in os.listdir(folder))
    except OSError:
        return False


class Recorder:
    """The files read so far: path -> version, or None for a file that did not exist."""

    def __init__(self, left_out: tuple[str, ...]) -> None:
        self.left_out = left_out
        self.files: dict[str, tuple[int, ...] | None] = {}
        self.written: set[str] = set()
        self.complete, self.on = True, True
        self._inside = threading.local()  # the hook's own stat raises no event, but be sure

    def hook(self, event: str, args: tuple) -> None:
        """The audit hook: only ``open`` events of paths (not of file descriptors) count."""
        if event != "open" or not self.on or getattr(self._inside, "busy", False):
            return
        path, flags = args[0], args[2]
        if not isinstance(path, (str, bytes, os.PathLike)):
            return
        self._inside.busy = True
        try:
            full = os.path.abspath(os.fsdecode(path))
            if isinstance(flags, int) and flags & os.O_ACCMODE != os.O_RDONLY:
                self.written.add(full)
            else:
                self.note(full)
        except (TypeError, ValueError):
            pass
        finally:
            self._inside.busy = False

    def note(self, path: str) -> None:
        if path in self.files or path.startswith(self.left_out) or BYTECODE in path:
            return
        if len(self.files) >= MAX_FILES:
            self.complete = False
            return
        try:
            stamp = version(path)
            if stamp is not None and not stat.S_ISREG(os.stat(path).st_mode):
                return  # a folder, a FIFO: no file's contents
        except OSError:  # cannot be looked at: it vouches for nothing
            self.complete = False
            return
        self.files[path] = stamp

    def event(self) -> dict[str, Any]:
        """The ``reads`` event: the modules loaded are added, recording stops."""
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None)
            if isinstance(file, str):
                self.note(os.path.abspath(file))
        self.on = False
        files = [[path, list(stamp) if stamp else None] for path, stamp in self.files.items()
                 if path not in self.written]
        return {"event": "reads", "files": files, "complete": self.complete}


def record() -> Recorder:
    """Start recording this process's reads (an audit hook stays for the process's life)."""
    recorder = Recorder(covered_folders())
    sys.addaudithook(recorder.hook)
    return recorder
