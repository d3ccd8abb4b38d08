"""Writing a file so that readers see the old one or the new one, never half of one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomically(target: str | os.PathLike, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` beside ``target``, then rename it over ``target`` (``os.replace``).

    Parallel flake8 workers can share a cache this way, and an interrupted run leaves no
    half-written report or picture.  Unlike ``mkstemp``'s 0600 the file honours the umask, so a
    team can share a cache folder and a report is as readable as any file the user writes;
    ``mode`` sets its permission bits instead (an edited source file keeps its own).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
