"""Every setting of rfa-lint, once: what it takes, its default, its help, and where it is read.

The options of ``rfa-lint check``, flake8's ``--rfa-*`` options (also read from ``[flake8]``),
the checking of ``[tool.rfa-lint]`` in pyproject.toml and the README's table are all made from
:data:`SETTINGS`, so a setting is added, documented and validated here and nowhere else.  Its
names follow from its ``name``: ``--name`` on the command line, ``--rfa-name`` for flake8
(``rfa-name`` in ``[flake8]``), ``name`` in ``[tool.rfa-lint]``.  A value that does not fit is
refused with what is allowed, never read as something else: ``"false"`` is not false,
``"RFA104"`` is not a list of letters, ``RFA1O1`` is not a prefix that selects nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from flake8.exceptions import ExecutionError
from flake8.utils import normalize_path, parse_files_to_codes_mapping

from rfa_lint import config, logs
from rfa_lint.config import ConfigError
from rfa_lint.files import DEFAULT_EXCLUDE, matches
from rfa_lint.limits import Limits
from rfa_lint.source import shape_of


class Refused(ValueError):
    """A value of the right kind that is still wrong; the message says which part."""


@dataclass(frozen=True)
class Setting:
    """One setting.  ``parse`` takes command-line or ``[flake8]`` text, or an already typed value,
    and raises ValueError when it does not fit ``allowed``; ``toml`` lists the TOML types
    ``[tool.rfa-lint]`` may give (none: not a pyproject key)."""

    name: str
    parse: Callable[[Any], Any]
    allowed: str
    help: str
    default: Any = None
    toml: tuple[type, ...] = ()
    cli: bool = True
    flake8: bool = False
    metavar: str | None = None
    short: str | None = None
    choices: tuple[str, ...] = ()
    #: glob patterns, whose ``a/b`` forms are relative to the folder of the file that gives them
    globs: bool = False
    #: the command line's value adds to the project's instead of replacing it
    extends: bool = False
    #: the environment variable it is read from (both front doors and the language server)
    env: str | None = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def is_flag(self) -> bool:
        """A boolean: given bare on a command line, true or false in a config file."""
        return self.parse is parse_boolean

    @property
    def help_text(self) -> str:
        """The help with the default, as both front doors print it."""
        shown = _shown(self.default)
        return f"{self.help.rstrip('.')} (default: {shown})." if shown else self.help

    def display(self, value: Any) -> str:
        """A resolved value as ``--show-settings`` prints it: JSON, a resolution as 32x48."""
        if value is None:
            return "(not set)"
        return "x".join(map(str, value)) if self.parse is parse_resolution else json.dumps(value)

    def check(self, value: Any) -> Any:
        """The typed value, or ValueError saying what is allowed and what was given."""
        try:
            parsed = self.parse(value)
        except Refused as exc:
            raise ValueError(f"{exc}; expected {self.allowed}") from None
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or (self.choices and parsed not in self.choices):
            raise ValueError(f"expected {self.allowed}, got {value!r}") from None
        return parsed


def _shown(value: Any) -> str:
    if value is None or value is False or (isinstance(value, (tuple, dict)) and not value):
        return ""
    if isinstance(value, tuple):  # a resolution, or globs
        return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else ", ".join(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- parsers: text or a typed value -> the typed value (ValueError when it does not fit) ------

def parse_resolution(value: str | int | Iterable[int]) -> tuple[int, ...]:
    """``32`` -> (32,); ``"32x48"`` -> (32, 48) (height x width); ``(32, 48)`` as it is."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (tuple, list)):
        values = tuple(value)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(value)
    else:
        values = tuple(int(part) for part in re.split(r"\s*[x×,]\s*", str(value).strip().lower()))
    if not 1 <= len(values) <= 3 or any(v < 1 for v in values):
        raise ValueError(value)
    return values


#: The longest time limit taken: beyond a day no model is worth waiting for, and a larger number
#: would only overflow the waits it sets (``select`` refuses ~3e11 s; 1e300 killed the fork server).
MAX_SECONDS = 86400


def _seconds(value: str | float) -> float:
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(value)
    if seconds > MAX_SECONDS:
        raise Refused(f"{seconds:g}s is more than a day ({MAX_SECONDS}s)")
    return seconds


def physical_mib() -> int | None:
    """The machine's physical memory in MiB (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    except (AttributeError, ValueError, OSError):
        return None


def _memory(value: str | int) -> int:
    """A child's address-space cap: at least what a framework import maps, at most the machine's
    memory (more would be no limit at all: a child could swap the machine to a halt first)."""
    mib = _whole(256)(value)
    physical = physical_mib()
    if physical is not None and mib > physical:
        raise Refused(f"{mib} MiB is more than this machine's physical memory ({physical} MiB)")
    return mib


def _whole(minimum: int) -> Callable[[Any], int]:
    def parse(value: str | int) -> int:
        if isinstance(value, float) or int(value) < minimum:
            raise ValueError(value)
        return int(value)
    return parse


BOOLEAN_TEXT = {"true": True, "yes": True, "on": True, "1": True,
                "false": False, "no": False, "off": False, "0": False}


def parse_boolean(value: str | bool) -> bool:
    """A boolean, or the words configparser (so flake8's ``[flake8]``) takes for one."""
    if isinstance(value, bool):
        return value
    try:
        return BOOLEAN_TEXT[str(value).strip().lower()]
    except KeyError:
        raise ValueError(value) from None


def parse_selectors(value: str | Iterable[str]) -> tuple[str, ...]:
    """Codes or prefixes, from a list or a comma/space-separated string, as flake8 reads them.

    Each must be a prefix of at least one code (``RFA``, ``RFA1``, ``RFA101``): a typo would
    otherwise select nothing and turn the linter off without a word.
    """
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(value)
    selectors = tuple(item.strip().upper() for item in items if item.strip())
    if not selectors:
        return selectors
    from rfa_lint.rules import RULES

    unknown = [s for s in selectors if not any(code.startswith(s) for code in RULES)]
    if unknown:
        raise Refused(f"unknown rule selector {', '.join(map(repr, unknown))}")
    return selectors


def _folder(value: str) -> str:
    if not isinstance(value, str) or not value or os.path.isfile(value):
        raise ValueError(value)
    return value


def _output_file(value: str) -> str:
    if not isinstance(value, str) or not value or os.path.isdir(value):
        raise ValueError(value)
    if not os.path.isdir(os.path.dirname(os.path.abspath(value))):
        raise Refused(f"the folder of {value!r} does not exist")
    return value


def _text(value: str) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _config_file(value: str) -> str:
    """An existing TOML file, as an absolute path: the run may look for it from other folders."""
    if not isinstance(value, str) or not os.path.isfile(value):
        raise ValueError(value)
    if not value.endswith(".toml"):
        raise Refused(f"{value!r} is not a .toml file")
    return os.path.abspath(value)


def parse_globs(value: str | Iterable[str]) -> tuple[str, ...]:
    """Glob patterns, from a list or a comma-separated string (flake8's ``--exclude``)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(value)
    return tuple(item.strip() for item in items if item.strip())


def parse_per_file_ignores(value: str | Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """glob -> codes: from flake8's ``"tests/*.py:RFA101,RFA102 other/*:RFA"``, or ruff's table
    ``{"tests/*.py" = ["RFA101", "RFA102"]}``; each code checked as ``ignore``'s are."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, str):
        try:
            pairs = parse_files_to_codes_mapping(value)
        except ExecutionError:
            raise Refused(f"cannot read {value!r}") from None
    else:
        raise ValueError(value)
    checked: dict[str, tuple[str, ...]] = {}
    for glob, codes in pairs:
        if not isinstance(glob, str) or not isinstance(codes, (list, tuple)):
            raise ValueError(value)
        try:
            checked[glob] = (*checked.get(glob, ()), *parse_selectors(codes))
        except Refused as exc:
            raise Refused(f"{glob}: {exc}") from None
    return checked


MODEL_KEYS: dict[str, type | tuple[type, ...]] = {
    "args": list, "kwargs": dict, "input-shape": (list, dict), "skip": bool}


def _models(value: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``[tool.rfa-lint.models.NAME]`` tables: how to build the models that need arguments."""
    if not isinstance(value, Mapping):
        raise ValueError(value)
    for name, model in value.items():
        if not isinstance(model, Mapping):
            raise Refused(f"models.{name} is not a table")
        for key, item in model.items():
            if key not in MODEL_KEYS or not isinstance(item, MODEL_KEYS[key]):
                raise Refused(f"models.{name}.{key} = {item!r}")
        try:
            shape_of(model.get("input-shape"))
        except ValueError:
            raise Refused(f"models.{name}.input-shape = {model['input-shape']!r}: a list of whole numbers "
                          "above 0, or a table of forward parameter = such a list") from None
    return {name: dict(model) for name, model in value.items()}


# --- the table ----------------------------------------------------------------------------------

FLAG = "true or false"
SELECTORS = "rule codes or prefixes, e.g. RFA1, RFA104 (comma-separated, or a list)"
GLOBS = "glob patterns (comma-separated, or a list)"

SETTINGS: tuple[Setting, ...] = (
    Setting("res", parse_resolution, "a resolution N or HxW (1 to 3 whole numbers above 0, e.g. 32 or 32x48)",
            "Input resolution: N for every spatial axis, or one per axis (HxW, DxHxW).", default=(224,),
            toml=(int, str), flake8=True, metavar="N|HxW"),
    Setting("format", _text, "one of text, json, sarif, github, gitlab, junit", "Report format.",
            default="text", choices=("text", "json", "sarif", "github", "gitlab", "junit")),
    Setting("output-file", _output_file, "a file in an existing folder",
            "Write the report here, not to stdout.", metavar="FILE"),
    Setting("select", parse_selectors, SELECTORS,
            "Codes or prefixes to report (default: all but the 'not analysed' codes, whose models "
            "the summary lists).", toml=(list, str), metavar="CODES"),
    Setting("ignore", parse_selectors, SELECTORS, "Codes or prefixes to leave out.", default=(),
            toml=(list, str), metavar="CODES"),
    Setting("per-file-ignores", parse_per_file_ignores,
            "GLOBS:CODES pairs, e.g. \"tests/*.py:RFA101,RFA102 other/*:RFA\" (a table of glob = [codes] "
            "in [tool.rfa-lint.per-file-ignores])",
            "Codes or prefixes to leave out of the files a glob matches.", default={}, toml=(dict,),
            metavar="PAIRS", globs=True),
    Setting("exclude", parse_globs, GLOBS,
            "Files and folders not to walk into: a glob without a '/' matches names at any depth, one "
            "with a '/' a path (from the folder of the pyproject.toml that sets it, else the working "
            "folder).",
            default=DEFAULT_EXCLUDE, toml=(list, str), metavar="GLOBS", globs=True),
    Setting("extend-exclude", parse_globs, GLOBS, "More globs to exclude, added to --exclude's.", default=(),
            toml=(list, str), metavar="GLOBS", globs=True, extends=True),
    Setting("force-exclude", parse_boolean, FLAG,
            "Exclude the paths named on the command line too (pre-commit names every file).", default=False,
            toml=(bool,)),
    Setting("timeout", _seconds, "a number of seconds above 0",
            f"Seconds per model, and for the file's import (at most {MAX_SECONDS}, a day).",
            default=Limits.timeout,
            toml=(int, float), flake8=True, metavar="SECONDS"),
    Setting("memory-limit", _memory,
            "a whole number of MiB, at least 256, at most the machine's physical memory",
            "MiB of address space per child.", default=Limits.memory_mb, toml=(int,), flake8=True,
            metavar="MIB"),
    Setting("max-file-size", _whole(1), "a whole number of KiB, at least 1",
            "The largest file analysed: a larger one gets RFA917, unparsed.", default=2048,
            toml=(int,), flake8=True, metavar="KIB"),
    Setting("no-exec", parse_boolean, FLAG, "Never run model code (RFA900 per model).", default=False,
            toml=(bool,), flake8=True),
    Setting("filter-kernel-size-1", parse_boolean, FLAG, "Skip 1x1 layers.", default=False,
            toml=(bool,), flake8=True),
    Setting("jobs", _whole(1), "a whole number, at least 1", "Files analysed at once (default: one per CPU).",
            metavar="N", short="-j"),
    Setting("graph-dir", _folder, "a folder (not an existing file)", "Draw each analysed model here.",
            metavar="DIR"),
    Setting("graph-format", _text, "one of svg, png, pdf, dot", "Picture format for --graph-dir.",
            default="svg", choices=("svg", "png", "pdf", "dot")),
    Setting("no-cache", parse_boolean, FLAG, "Neither read nor write the result cache.", default=False,
            flake8=True),
    Setting("cache-dir", _folder, "a folder (not an existing file)",
            "Result cache folder (default: .rfa_cache in the project root, else the user cache).",
            flake8=True, metavar="DIR"),
    Setting("exit-zero", parse_boolean, FLAG, "Exit 0 even when there are findings.", default=False),
    Setting("quiet", parse_boolean, FLAG, "No progress or summary on stderr.", default=False, short="-q"),
    Setting("config", _config_file, "an existing .toml file",
            "Use this file's [tool.rfa-lint] for every file instead of the nearest pyproject.toml's.",
            metavar="FILE"),
    Setting("isolated", parse_boolean, FLAG, "Ignore every configuration file.", default=False),
    Setting("stdin-filename", _text, "a path", "The name of the source read from stdin (PATHS '-' or none): "
            "for the report and to find its settings.", metavar="PATH"),
    Setting("add-noqa", parse_boolean, FLAG,
            "Add '# noqa: CODES' to every line with a finding, instead of reporting.", default=False),
    Setting("statistics", parse_boolean, FLAG, "Count the findings of each code after the report.",
            default=False),
    Setting("show-settings", parse_boolean, FLAG,
            "Print the configuration file and every setting of each folder, and exit.", default=False),
    Setting("show-files", parse_boolean, FLAG, "Print the files that would be linted, and exit.",
            default=False),
    Setting("models", _models,
            "tables of args (a list), kwargs (a table), input-shape (a list of whole numbers above 0, or a "
            "table of forward parameter = such a list) "
            "and skip (true or false)",
            "How to build the models that need arguments: [tool.rfa-lint.models.NAME].",
            default={}, toml=(dict,), cli=False),
    Setting("no-worker", parse_boolean, FLAG,
            "Run models in this run's own processes, not in the user's background worker (which keeps "
            "the frameworks imported between runs).", default=False, toml=(bool,), flake8=True),
    Setting("isolation", _text, "one of auto, required, processes",
            "The kernel's isolation of model code (namespaces, Landlock): auto uses it where the kernel "
            "gives it, required refuses to run model code without it (exit 2), processes never uses it "
            "(for models whose libraries must write outside their work folder). The kernel's seccomp "
            "filter applies under all three.",
            default=Limits.isolation, toml=(str,), flake8=True, choices=("auto", "required", "processes")),
    Setting("verbose", parse_boolean, FLAG,
            "Log on stderr what rfa-lint does and falls back from (the worker, the fork servers, the "
            "isolation, the cache), at debug level.", default=False, short="-v"),
    Setting("log", logs.parse_target,
            f"one of {', '.join(logs.LEVELS)}, or a file in an existing folder, with its folder "
            "(./rfa-lint.log)",
            "The log of --verbose, for every front door (flake8 and the language server too): a level "
            "on stderr, or a file appended to at debug level.", cli=False, env=logs.LOG_VARIABLE),
)
BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
PYPROJECT: dict[str, Setting] = {setting.name: setting for setting in SETTINGS if setting.toml}
TOML_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}


def resolve(given: Mapping[str, Any], project: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting's value: the front door's where given (not None), else the project's, else
    its environment variable's, else the default; the front door's adds to the project's for a
    setting that ``extends``.  Both mappings hold values already checked; a bad value of an
    environment variable is a ValueError naming it."""
    def value(s: Setting) -> Any:
        if s.extends:
            return (*(project.get(s.name) or ()), *(given.get(s.name) or ()))
        return next((v[s.name] for v in (given, project, _environment(s)) if v.get(s.name) is not None),
                    s.default)

    return {s.name: value(s) for s in SETTINGS}


def _environment(setting: Setting) -> dict[str, Any]:
    """The setting's value from its environment variable, checked; {} when it has none or it is unset."""
    text = os.environ.get(setting.env) if setting.env else None
    if not text:
        return {}
    try:
        return {setting.name: setting.check(text)}
    except ValueError as exc:
        raise ValueError(f"{setting.env}: {exc}") from None


def merged(start: str | os.PathLike, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting for the files at ``start``: the front door's (checked, None when not given),
    over the project's ``[tool.rfa-lint]`` (the one ``config`` names, none when ``isolated``),
    over the defaults."""
    return resolve(given, configured(start, given.get("config"), bool(given.get("isolated")))[1])


def from_pyproject(start: str | os.PathLike) -> dict[str, Any]:
    """The checked ``[tool.rfa-lint]`` of the nearest pyproject.toml at or above ``start`` ({} when none)."""
    return configured(start)[1]


def configured(start: str | os.PathLike, config_file: str | None = None,
               isolated: bool = False) -> tuple[Path | None, dict[str, Any]]:
    """The file whose ``[tool.rfa-lint]`` applies to ``start`` (None: none does), and that table checked.

    The file is ``config_file`` when given (ruff's ``--config``: its globs are relative to the
    working folder), none when ``isolated``, else the nearest pyproject.toml with the table (its
    globs are relative to its folder).  A value of another TOML type than its setting takes is
    refused, never converted (``no-exec = "false"`` is not false); ConfigError names the file,
    the key and what it allows.
    """
    if isolated:
        return None, {}
    path, table = config.read(Path(config_file)) if config_file else config.load(Path(start))
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.rfa-lint] must be a table")
    unknown = set(table) - set(PYPROJECT)
    if unknown:
        raise ConfigError(f"{path}: unknown [tool.rfa-lint] keys: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(PYPROJECT)}")
    checked = {key: _from_toml(path, PYPROJECT[key], value) for key, value in table.items()}
    return path, anchored(checked, os.getcwd() if config_file or path is None else path.parent)


def anchored(values: Mapping[str, Any], folder: str | os.PathLike) -> dict[str, Any]:
    """``values`` with each glob that names a path (``tests/*.py``, not ``*.py``) made absolute
    from ``folder``, as flake8 reads its own: then a glob means the same from every folder."""
    def anchor(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {normalize_path(glob, str(folder)): item for glob, item in value.items()}
        return tuple(normalize_path(glob, str(folder)) for glob in value)

    return {name: anchor(value) if value and BY_NAME[name].globs else value for name, value in values.items()}


def _from_toml(path: os.PathLike[str] | None, setting: Setting, value: Any) -> Any:
    try:
        if type(value) not in setting.toml:
            kind = TOML_NAMES.get(type(value), type(value).__name__)
            raise ValueError(f"expected {setting.allowed}, got {value!r} (a TOML {kind})")
        return setting.check(value)
    except ValueError as exc:
        raise ConfigError(f"{path}: [tool.rfa-lint] {setting.name}: {exc}") from None


# --- what a file's analysis needs ---------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    """Everything that changes a file's findings (and so keys the cache)."""

    resolution: tuple[int, ...] = BY_NAME["res"].default
    filter_kernel_size_1: bool = False
    execute: bool = True
    limits: Limits = Limits()
    max_file_kib: int = BY_NAME["max-file-size"].default
    #: per-model build settings from ``[tool.rfa-lint.models]``: name -> {args, kwargs, input-shape}
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def options_from(settings: Mapping[str, Any]) -> Options:
    """Options from settings named as in ``[tool.rfa-lint]`` (see :data:`SETTINGS`); each is
    checked, a missing one is its default.  ValueError names the setting and what it allows."""
    unknown = set(settings) - set(BY_NAME)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}; known: {', '.join(BY_NAME)}")

    def value(name: str) -> Any:
        setting, given = BY_NAME[name], settings.get(name)
        try:
            return setting.default if given is None else setting.check(given)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    return Options(
        resolution=value("res"),
        filter_kernel_size_1=value("filter-kernel-size-1"),
        execute=not value("no-exec"),
        limits=Limits(timeout=value("timeout"), memory_mb=value("memory-limit"),
                      worker=not value("no-worker"), isolation=value("isolation")),
        models=value("models"),
        max_file_kib=value("max-file-size"),
    )


@dataclass(frozen=True)
class Project:
    """The settings of the files of one folder: its pyproject's, with the front door's on top."""

    options: Options
    codes: frozenset[str]  # the codes reported, after select / ignore
    per_file_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    config: Path | None = None  # the file whose [tool.rfa-lint] applies
    values: Mapping[str, Any] = field(default_factory=dict)  # every setting, resolved
    configured: frozenset[str] = frozenset()  # the settings its config file sets

    @classmethod
    def load(cls, folder: str, given: Mapping[str, Any]) -> Project:
        from rfa_lint.rules import select

        config_file, table = configured(folder or ".", given.get("config"), bool(given.get("isolated")))
        values = resolve(given, table)
        return cls(options_from(values),
                   frozenset(select(values["select"], values["ignore"])), values["per-file-ignores"],
                   config_file, values, frozenset(table))

    def codes_for(self, path: str | os.PathLike) -> frozenset[str]:
        """The codes reported in ``path``: ours, less those its per-file-ignores leave out (as
        in ruff, even a code ``select`` names)."""
        left_out = tuple(code for glob, codes in self.per_file_ignores.items()
                         if matches(Path(path), (glob,)) for code in codes)
        return frozenset(code for code in self.codes if not code.startswith(left_out))


def markdown_table() -> str:
    """The README's table of settings, generated from :data:`SETTINGS` (a test keeps them equal)."""
    rows = ["| `rfa-lint check` | flake8, `[flake8]` | `[tool.rfa-lint]` | takes | default | what it does |",
            "| --- | --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        cli = (f"`{s.short + ', ' if s.short else ''}--{s.name}`" if s.cli else
               f"`{s.env}` (environment)" if s.env else "")
        flake8 = f"`--rfa-{s.name}`" if s.flake8 else ""
        pyproject = f"`{s.name}`" if s.toml else ""
        takes = "a flag" + ("; true or false in a config file" if s.flake8 or s.toml else "")
        takes = takes if s.is_flag else s.allowed
        default = f"`{_shown(s.default)}`" if _shown(s.default) else ""
        text = [markdown.replace("*", "\\*") for markdown in (takes, s.help)]  # globs are no emphasis
        rows.append(f"| {cli} | {flake8} | {pyproject} | {text[0]} | {default} | {text[1]} |")
    return "\n".join(rows) + "\n"
