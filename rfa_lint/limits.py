"""What user code may use while its models are built: set by the settings, kept by the sandbox.

Its own module because flake8 loads the settings on every run over any code, and the sandbox
(which enforces these) is the heavy part of rfa-lint that such a run never needs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """``timeout``: seconds of wall-clock time per model, and for the file's import; a file gets
    at most :meth:`file_seconds` in all."""

    timeout: float = 60.0
    memory_mb: int = 6144  # address space of the child (the framework import alone maps ~3.5 GB)
    #: run on the user's persistent worker (:mod:`rfa_lint.sandbox.worker`) when one can serve;
    #: findings are the same either way (so it is no part of a cache key)
    worker: bool = False
    #: "auto": the kernel's isolation where it gives it, else processes only; "required": no model
    #: code runs without it; "processes": never (:mod:`rfa_lint.sandbox.isolation`)
    isolation: str = "auto"

    def file_seconds(self, models: int) -> float:
        """The most one file's children may take together: ``timeout x (models + 1)``, and never
        more than :data:`MAX_FILE_SECONDS` (the waits it sets must stay in ``select``'s range)."""
        return min(self.timeout * (models + 1), MAX_FILE_SECONDS)


MAX_FILE_SECONDS = 7 * 86400
