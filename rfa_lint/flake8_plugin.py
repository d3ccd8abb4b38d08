"""flake8 adapter: ``flake8 --rfa-res=32 models/`` -> :func:`rfa_lint.lint.analyse_source`.

It lints the text flake8 hands over (so an editor's unsaved buffer piped to ``flake8 -`` is what
gets checked) and never raises into flake8 while linting: a failure of its own becomes an
RFA999 finding.  A bad setting is flake8's usage error instead, as for flake8's own options:
``flake8: error: argument --rfa-timeout: expected ...`` and exit 2.

flake8 loads the plugin for every run over any code, so it stays near free there: the linter,
the rule registry and the cache load with the first file whose text may define a model.
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path
from typing import Any, ClassVar, Iterator

from rfa_lint import __version__, logs
from rfa_lint.settings import BY_NAME, SETTINGS, Setting, from_pyproject, merged, options_from, resolve
from rfa_lint.source import may_define_model

FLAKE8_SETTINGS = tuple(setting for setting in SETTINGS if setting.flake8)
FLAKE8_SELECTORS = ("select", "extend_select", "ignore", "extend_ignore")  # flake8's own options


class RfaChecker:
    name = "rfa-lint"
    version = __version__
    flake8_options: ClassVar[dict[str, Any]] = {}  # the --rfa-* values given, checked
    flake8_selected: ClassVar[tuple[str, ...]] = ()  # RFA codes and prefixes flake8's --select names
    cache_folder: ClassVar[str | None] = None  # None: --rfa-no-cache
    _cache: ClassVar[Any] = None  # the run's Cache, made for the first file that needs one

    def __init__(self, tree: ast.AST, filename: str, lines: list[str]) -> None:
        """For a file that may define a model, a malformed ``[tool.rfa-lint]`` raises here, which
        flake8 reports as this plugin's failure and exits non-zero (only a pyproject below the
        paths given gets this far)."""
        self.filename, self.text = filename, "".join(lines)
        path = os.path.abspath(filename)
        self.settings = (merged(os.path.dirname(path), self.flake8_options)
                         if may_define_model(Path(path), self.text) else None)  # None: no model here

    @classmethod
    def add_options(cls, manager: Any) -> None:
        """``--rfa-NAME`` for each flake8 setting, also read as ``rfa-NAME`` from ``[flake8]``.

        Each is parsed by the setting's own check as argparse's ``type``, which argparse also
        applies to the text flake8 read from the config file: a bad value in either place is
        flake8's usage error (exit 2) naming the option and what it allows.
        """
        for setting in FLAKE8_SETTINGS:
            kind = {"action": _Flag} if setting.is_flag else {"metavar": setting.metavar}
            manager.add_option(f"--rfa-{setting.name}", type=_argparse_type(setting), parse_from_config=True,
                               help=f"rfa-lint: {setting.help_text}", **kind)

    @classmethod
    def parse_options(cls, manager: Any, options: Any, paths: list[str]) -> None:
        """flake8's options win over ``[tool.rfa-lint]`` in pyproject.toml, which wins over defaults.

        The RFA codes of flake8's ``--select`` / ``--ignore`` and the ``[tool.rfa-lint]`` of each
        path given are checked here, so a bad one is a usage error before any file is linted.
        """
        cls.flake8_options = {s.name: getattr(options, f"rfa_{s.dest}") for s in FLAKE8_SETTINGS}
        try:
            run = resolve(cls.flake8_options, {})
        except ValueError as exc:  # RFA_LINT_LOG
            manager.parser.error(str(exc))
        logs.configure(target=run["log"])
        cls.cache_folder, cls._cache = None if run["no-cache"] else run["cache-dir"] or "", None
        named = {name: _rfa_selectors(manager, options, name) for name in FLAKE8_SELECTORS}  # checks all
        cls.flake8_selected = (*named["select"], *named["extend_select"])
        try:
            for path in {os.getcwd() if path == "-" else path for path in paths or ["."]}:
                _require_isolation(resolve(cls.flake8_options, from_pyproject(path)))
        except ValueError as exc:
            manager.parser.error(str(exc))

    @classmethod
    def cache(cls) -> Any:
        """The run's cache (None with ``--rfa-no-cache``); its folder is made on first use."""
        if cls._cache is None and cls.cache_folder is not None:
            from rfa_lint.cache import Cache, default_folder

            cls._cache = Cache(cls.cache_folder or default_folder())
        return cls._cache

    def _codes(self, settings: dict[str, Any]) -> set[str]:
        """The codes to hand flake8, which filters them further with its own options.

        pyproject's select / ignore, as in the CLI; else the codes on by default plus what
        flake8's ``--select`` / ``--extend-select`` name (``--extend-select RFA9`` turns the
        "not analysed" codes on: they cannot ride flake8's default ignore list, which an
        explicit ``ignore =`` in a user's config throws away).
        """
        from rfa_lint import rules

        ignore = settings["ignore"]
        if settings["select"]:
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
        if self.settings is None:
            return
        from rfa_lint import rules
        from rfa_lint.lint import analyse_bytes, analyse_source
        from rfa_lint.sandbox import count_interrupts

        count_interrupts()  # Ctrl-C ends the run at once, whichever thread watches a child
        try:
            options = options_from(self.settings)
            data = self._bytes_on_disk(self.text)
            analysis = (analyse_source(self.filename, self.text, options, self.cache()) if data is None
                        else analyse_bytes(self.filename, data, options, cache=self.cache()))
            codes = self._codes(self.settings)
        except Exception as exc:  # never abort the user's whole flake8 run
            detail = logs.internal_error(self.filename, exc)
            yield 1, 0, f"RFA999 {rules.get('RFA999').message.format(detail=detail)}", type(self)
            return
        for finding in analysis.findings:
            if finding.code in codes:
                yield finding.line, finding.col, finding.text, type(self)


def _require_isolation(settings: dict[str, Any]) -> None:
    """Refuse the run (flake8's usage error, exit 2) before any file when its settings require
    the kernel's isolation for model code and the kernel refuses it."""
    if settings["isolation"] == "required" and not settings["no-exec"]:
        from rfa_lint.sandbox import isolation

        try:
            isolation.for_run("required")
        except isolation.Refused as exc:
            raise ValueError(str(exc)) from None


class _Flag(argparse.Action):
    """``--rfa-no-exec`` on the command line is true; ``rfa-no-exec = ...`` in ``[flake8]`` goes
    through the option's ``type`` like any other value (flake8's own ``store_true`` would hand it
    to configparser, whose error for ``maybe`` is a traceback)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, True)


def _argparse_type(setting: Setting):
    """The setting's check as an argparse ``type``: argparse prints an ArgumentTypeError's text
    (any other error becomes its bare ``invalid value``)."""
    def parse(text: str) -> Any:
        try:
            return setting.check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = setting.name
    return parse


def _rfa_selectors(manager: Any, options: Any, name: str) -> tuple[str, ...]:
    """The RFA codes and prefixes of flake8's option ``name``; one that matches no code is
    flake8's usage error (a typo would turn the linter off without a word)."""
    codes = [code for code in getattr(options, name, None) or () if code.upper().startswith("RFA")]
    try:
        return BY_NAME["select"].check(codes)
    except ValueError as exc:
        manager.parser.error(f"--{name.replace('_', '-')}: {exc}")
