"""A trail to follow when something goes wrong: rfa-lint's log, and its internal errors' tracebacks.

Every module that can fall back quietly (the worker, the fork servers, the isolation, the cache)
logs through the standard :mod:`logging` module to a logger under ``rfa_lint``, at debug or info
level only, so nothing shows until asked: ``--verbose`` (debug, on stderr) or the
``RFA_LINT_LOG`` environment variable (a level, on stderr; or a file, appended to at debug
level), which also reaches flake8's runs and the language server.  An internal error (RFA999)
leaves its traceback in a file its message names, for a bug report.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

LOG_VARIABLE = "RFA_LINT_LOG"
LEVELS = ("debug", "info", "warning", "error")
FORMAT = "rfa-lint: %(levelname)s: %(name)s: %(message)s"
LOGGER = "rfa_lint"


def parse_target(value: str) -> str:
    """A level name (any case), or a file path with its folder (``./rfa-lint.log``: a bare word is
    a misspelt level, not a file) in an existing folder; ValueError for anything else."""
    text = str(value).strip()
    if text.lower() in LEVELS:
        return text.lower()
    if os.sep not in text or os.path.isdir(text) or not os.path.isdir(os.path.dirname(os.path.abspath(text))):
        raise ValueError(f"expected one of {', '.join(LEVELS)}, or a file in an existing folder with its "
                         f"folder (./rfa-lint.log), got {value!r}")
    return text


def configure(verbose: bool = False, target: str | None = None) -> None:
    """Send the log where the front door was asked to: ``target`` (a level or a file, see
    :func:`parse_target`), else debug on stderr when ``verbose``; else nothing is set up.  Once
    per process: a second call (flake8's next file) changes nothing."""
    logger = logging.getLogger(LOGGER)
    if logger.handlers or not (verbose or target):
        return
    if target is not None and target not in LEVELS:
        handler: logging.Handler = logging.FileHandler(target, encoding="utf-8")
        level = logging.DEBUG
    else:
        handler = logging.StreamHandler(sys.stderr)
        level = logging.DEBUG if target is None else getattr(logging, target.upper())
    handler.setFormatter(logging.Formatter(FORMAT if handler.__class__ is logging.StreamHandler
                                           else "%(asctime)s " + FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)


def from_environment() -> str | None:
    """:data:`LOG_VARIABLE`, checked; None when it is unset (or empty)."""
    value = os.environ.get(LOG_VARIABLE)
    return parse_target(value) if value else None


def error_folder() -> Path:
    """Where internal errors' tracebacks go: the user's cache folder (``$XDG_CACHE_HOME/rfa-lint``)."""
    from rfa_lint.cache import user_cache_folder

    return user_cache_folder() / "errors"


def internal_error(path: str, exc: BaseException) -> str:
    """An internal error on ``path`` as RFA999's detail: ``type: message``, and the file its
    traceback was written to (the system's temporary folder when the cache folder is not
    writable; none when neither is)."""
    detail = f"{type(exc).__name__}: {exc}"
    text = f"rfa-lint internal error on {path}\n\n" + "".join(traceback.format_exception(exc))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (error_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"rfa-lint-error-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError:
            continue
        logging.getLogger(__name__).info("internal error on %s: traceback in %s", path, name)
        return f"{detail}; traceback in {name}"
    logging.getLogger(__name__).info("internal error on %s (no folder took its traceback)\n%s", path, text)
    return detail
