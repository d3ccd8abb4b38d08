"""What became of a model, or of a whole file, in the sandbox: one name per outcome.

A child sends these on its result pipe, the sandbox adds its own (a timeout, a crash), and the
linter turns each into a rule code (:data:`rfa_lint.rules.BY_STATUS`).  A :class:`~enum.StrEnum`:
on the pipe, in JSON and wherever else they are written, they are the same strings as ever.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    NOT_A_MODEL = "not-a-model"  # the text's guess was wrong: Python says it is no model
    NEEDS_ARGUMENTS = "needs-arguments"
    BAD_DIRECTIVE = "bad-directive"  # a directive's keyword the constructor does not take
    NEEDS_INPUTS = "needs-inputs"
    BUILD_FAILED = "build-failed"
    DOWNLOAD_BLOCKED = "download-blocked"
    TRACE_FAILED = "trace-failed"
    MEMORY_LIMIT = "memory-limit"
    IMPORT_FAILED = "import-failed"
    FRAMEWORK_MISSING = "framework-missing"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
