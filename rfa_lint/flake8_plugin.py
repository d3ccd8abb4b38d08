"""flake8 adapter: ``flake8 --rfa-res=32 models/`` -> :func:`rfa_lint.lint.analyse_source`.

It lints the text flake8 hands over (so an editor's unsaved buffer piped to ``flake8 -`` is what
gets checked) and never raises into flake8: a failure of its own becomes an RFA999 finding.
"""

from __future__ import annotations

import ast
import os
from typing import Any, ClassVar, Iterator

from rfa_lint import __version__, config, rules
from rfa_lint.cache import Cache, default_folder
from rfa_lint.lint import analyse_bytes, analyse_source, options_from


class RfaChecker:
    name = "rfa-lint"
    version = __version__
    flake8_options: ClassVar[dict[str, Any]] = {}
    flake8_selected: ClassVar[list[str]] = []  # RFA codes and prefixes flake8's --select names
    cache: ClassVar[Cache | None] = None

    def __init__(self, tree: ast.AST, filename: str, lines: list[str]) -> None:
        self.filename, self.lines = filename, lines

    @classmethod
    def add_options(cls, manager: Any) -> None:
        manager.add_option("--rfa-res", parse_from_config=True, metavar="N|HxW",
                           help="rfa-lint: input resolution, e.g. 32 or 32x48 (default: 224)")
        manager.add_option("--rfa-timeout", type=float, parse_from_config=True,
                           help="rfa-lint: seconds per model and for the file's import (default: 60)")
        manager.add_option("--rfa-memory-limit", type=int, parse_from_config=True,
                           help="rfa-lint: MiB of address space per child (default: 6144)")
        manager.add_option("--rfa-no-exec", action="store_true", parse_from_config=True,
                           help="rfa-lint: never run model code (RFA900 per model)")
        manager.add_option("--rfa-filter-kernel-size-1", action="store_true", parse_from_config=True,
                           help="rfa-lint: skip 1x1 layers")
        manager.add_option("--rfa-no-cache", action="store_true", parse_from_config=True,
                           help="rfa-lint: neither read nor write the result cache")
        manager.add_option("--rfa-cache-dir", parse_from_config=True, metavar="DIR",
                           help="rfa-lint: result cache folder (default: .rfa_cache in the project root)")

    @classmethod
    def parse_options(cls, options: Any) -> None:
        """flake8's options win over ``[tool.rfa-lint]`` in pyproject.toml, which wins over defaults."""
        cls.flake8_options = {
            "res": options.rfa_res, "timeout": options.rfa_timeout,
            "memory-limit": options.rfa_memory_limit,
            "no-exec": options.rfa_no_exec or None,
            "filter-kernel-size-1": options.rfa_filter_kernel_size_1 or None,
        }
        cls.cache = None if options.rfa_no_cache else Cache(options.rfa_cache_dir or default_folder())
        named = [*(getattr(options, "select", None) or ()), *(getattr(options, "extend_select", None) or ())]
        cls.flake8_selected = [code for code in named if code.upper().startswith("RFA")]

    def _codes(self, settings: dict[str, Any]) -> set[str]:
        """The codes to hand flake8, which filters them further with its own options.

        pyproject's select / ignore, as in the CLI; else the codes on by default plus what
        flake8's ``--select`` / ``--extend-select`` name (``--extend-select RFA9`` turns the
        "not analysed" codes on: they cannot ride flake8's default ignore list, which an
        explicit ``ignore =`` in a user's config throws away).
        """
        ignore = settings.get("ignore", [])
        if settings.get("select"):
            return rules.select(settings["select"], ignore)
        named = rules.select(self.flake8_selected, ignore) if self.flake8_selected else set()
        return rules.select(None, ignore) | named

    def _bytes_on_disk(self, text: str) -> bytes | None:
        """The file's bytes when flake8's text came from them, else None (a stdin buffer).

        flake8 quietly falls back to Latin-1 for files that are not UTF-8, which Python itself
        would refuse to import; linting the bytes reports that (RFA910) instead.
        """
        try:
            with open(self.filename, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        return data if data in (text.encode("utf-8", "replace"), text.encode("latin-1", "replace")) else None

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        try:
            settings = config.merged(os.path.dirname(os.path.abspath(self.filename)), self.flake8_options)
            options, text = options_from(settings), "".join(self.lines)
            data = self._bytes_on_disk(text)
            analysis = (analyse_source(self.filename, text, options, self.cache) if data is None
                        else analyse_bytes(self.filename, data, options, cache=self.cache))
            codes = self._codes(settings)
        except Exception as exc:  # never abort the user's whole flake8 run
            detail = f"{type(exc).__name__}: {exc}"
            yield 1, 0, f"RFA999 {rules.get('RFA999').message.format(detail=detail)}", type(self)
            return
        for finding in analysis.findings:
            if finding.code in codes:
                yield finding.line, finding.col, finding.text, type(self)
