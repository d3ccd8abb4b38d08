"""The ``rfa-lint`` command: a thin adapter from click options to :mod:`rfa_lint.lint`."""

from __future__ import annotations

import os
import stat
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import click

from rfa_lint import __version__, logs, rules
from rfa_lint.atomic import write_atomically
from rfa_lint.cache import Cache, default_folder
from rfa_lint.files import matches, python_files
from rfa_lint.lint import analyse_bytes, analyse_files, unknown_models, without_blocks
from rfa_lint.numbers import fmt
from rfa_lint.noqa import Unparsable, add_noqa, add_noqa_to_notebook
from rfa_lint.notebook import is_notebook
from rfa_lint.rf import graph_from_plain
from rfa_lint.report import FORMATS
from rfa_lint.results import Analysis, Finding
from rfa_lint.sandbox import count_interrupts
from rfa_lint.settings import BY_NAME, PYPROJECT, SETTINGS, Options, Project, Setting, anchored, resolve

PROGRESS_MIN_FILES = 10
SKIPPED_LISTED = 20  # skipped models named on stderr; --format json lists them all


class _DefaultToCheck(click.Group):
    """``rfa-lint PATH...`` means ``rfa-lint check PATH...``; ``rfa-lint rule CODE`` explains."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args.insert(0, "check")
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rfa-lint")
def main() -> None:
    """Receptive-field lint: flag layers that cannot contribute at your input resolution.

    \b
      rfa-lint models/ --res 32        lint files and folders (same as: rfa-lint check ...)
      rfa-lint rule RFA101             explain a rule
      rfa-lint explain net.py --res 16 where a model's compute goes to waste, what to change
      rfa-lint server                  a language server for editors (LSP on stdio)
    """
    count_interrupts()  # Ctrl-C ends a run at once, whichever thread watches a child


class _Checked(click.ParamType):
    """A setting's own check as a click type: a bad value is click's usage error (exit 2)."""

    def __init__(self, setting: Setting) -> None:
        self.setting, self.name = setting, setting.metavar or setting.name

    def convert(self, value, param, ctx):
        try:
            return self.setting.check(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _setting_options(command):
    """One click option per command-line setting of :data:`rfa_lint.settings.SETTINGS`, in its order.

    None means "not given", so ``[tool.rfa-lint]`` and then the setting's default apply.
    """
    for setting in reversed([s for s in SETTINGS if s.cli]):
        names = [name for name in (setting.short, f"--{setting.name}") if name]
        if setting.is_flag:
            kind = {"is_flag": True}
        else:
            kind = {"type": click.Choice(setting.choices) if setting.choices else _Checked(setting),
                    "metavar": setting.metavar}
        command = click.option(*names, setting.dest, default=None, help=setting.help_text, **kind)(command)
    return command


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, allow_dash=True))
@_setting_options
def check(paths: tuple[str, ...], **given) -> None:
    """Lint PATHS (files and folders; - for stdin) and report findings.

    Exit status: 1 when there are findings, 0 when clean, 2 on usage errors.  Defaults come from
    [tool.rfa-lint] in the nearest pyproject.toml (or the --config file); options given here win.
    """
    given = anchored({setting.name: given[setting.dest] for setting in SETTINGS if setting.cli}, os.getcwd())
    try:
        run = resolve(given, {})
    except ValueError as exc:  # RFA_LINT_LOG
        raise click.UsageError(str(exc)) from None
    logs.configure(run["verbose"], run["log"])
    stdin = _stdin_name(paths, run)
    graph_dir, quiet = run["graph-dir"], run["quiet"]
    try:  # a bad [tool.rfa-lint] or --config: a usage error, before any work
        files = [stdin] if stdin else _files(paths, given)
        projects = {folder: Project.load(folder, given) for folder in {os.path.dirname(f) for f in files}}
        for config, names in {p.config: p.options.models for p in projects.values() if p.config}.items():
            for name in unknown_models(config, names, files):
                raise ValueError(f"{config}: [tool.rfa-lint.models.{name}] names no class, function or "
                                 f"assignment of the project")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if run["show-files"] or run["show-settings"]:
        click.echo(_settings_report(run, projects) if run["show-settings"] else
                   "".join(f"{file}\n" for file in files), nl=False)
        return
    _require_isolation(projects.values())
    cache = None if run["no-cache"] else Cache(run["cache-dir"] or default_folder(), graphs=bool(graph_dir))
    show_progress = not quiet and len(files) >= PROGRESS_MIN_FILES
    started, analyses, drawing = time.perf_counter(), [], bool(graph_dir)

    def project_of(path: str) -> Project:
        return projects[os.path.dirname(path)]

    jobs = run["jobs"] or os.cpu_count() or 1
    results = (_analyse_stdin(stdin, project_of(stdin).options, cache) if stdin else
               analyse_files(files, lambda path: project_of(path).options, jobs, cache))
    for index, (path, analysis, seconds) in enumerate(results, start=1):
        project = project_of(path)
        if drawing and analysis.graphs:
            drawing = _draw(path, analysis.graphs, graph_dir, run["graph-format"], project.options.resolution)
        analyses.append((path, replace(analysis, graphs={})))
        if show_progress:
            click.echo(f"rfa-lint: [{index}/{len(files)}] {path} ({seconds:.1f}s)", err=True)
    analyses = without_blocks(analyses)  # blocks of models analysed in other files of the run
    codes = {path: project_of(path).codes_for(path) for path in files}
    reported = {path: [f for f in a.findings if f.code in codes[path]] for path, a in analyses}
    if run["add-noqa"]:
        sys.exit(_add_noqa(reported, quiet))
    findings = [f for found in reported.values() for f in found]
    coverage = [(path, a.models) for path, a in analyses]
    _report(run, findings, coverage)
    if not quiet:
        resolutions = sorted({fmt(p.options.resolution) for p in projects.values()})
        seconds = time.perf_counter() - started
        click.echo(_summary(len(files), coverage, findings, resolutions, seconds), err=True)
        if findings:
            first = min(f.code for f in findings)
            click.echo(f"rfa-lint: 'rfa-lint rule {first}' explains a code; --add-noqa silences today's "
                       "findings (a baseline)", err=True)
        _list_skipped(coverage, codes.__getitem__)
    missing = _missing_frameworks(findings)
    if missing:
        files_missing = len({f.path for f in findings if f.code == "RFA912"})
        click.echo(_environment_error(missing, files_missing), err=True)
        sys.exit(2)
    sys.exit(1 if findings and not run["exit-zero"] else 0)


#: what to install for a framework the child could not import
FRAMEWORK_PACKAGES = {"torch": "torch", "keras": "tensorflow"}


def _missing_frameworks(findings: list[Finding]) -> list[str]:
    """The frameworks that reported RFA912 findings name (a run that checked nothing must fail)."""
    named = {f.details.get("framework", "") for f in findings if f.code == "RFA912"}
    return sorted({part for text in named for part in text.split(" and ") if part})


def _environment_error(frameworks: list[str], files: int) -> str:
    """Exit 2's message: what is missing, where, and (under pre-commit) the hook's line to add."""
    names = " and ".join(frameworks)
    text = (f"rfa-lint: error: {names} {'is' if len(frameworks) == 1 else 'are'} not installed where "
            f"rfa-lint runs ({sys.executable}), so the models of {_plural(files, 'file')} were not "
            "checked; install it there, or run rfa-lint in your models' environment")
    if os.environ.get("PRE_COMMIT"):
        packages = ", ".join(FRAMEWORK_PACKAGES.get(f, f) for f in frameworks)
        text += (f"\nrfa-lint: pre-commit runs this hook in an environment of its own: add "
                 f"`additional_dependencies: [{packages}]` to the rfa-lint hook in .pre-commit-config.yaml "
                 "(or use the README's `repo: local`, `language: system` hook)")
    return text


def _stdin_name(paths: tuple[str, ...], run: dict) -> str | None:
    """The name of the source to read from stdin (``-`` unless --stdin-filename gives one), or
    None when PATHS are files and folders; impossible combinations are usage errors."""
    if run["config"] and run["isolated"]:
        raise click.UsageError("--config and --isolated contradict each other: give one")
    if "-" not in paths and paths:
        if run["stdin-filename"]:
            raise click.UsageError("--stdin-filename names the source read from stdin: "
                                   "give PATHS '-' or none")
        return None
    if not paths and not run["stdin-filename"]:
        raise click.UsageError("Missing argument 'PATHS...' (files, folders, or - for stdin).")
    if len(paths) > 1:
        raise click.UsageError("'-' (stdin) is linted alone: give no other PATHS with it")
    if run["add-noqa"]:
        raise click.UsageError("--add-noqa edits files: it cannot edit stdin")
    return run["stdin-filename"] or "-"


def _files(paths: tuple[str, ...], given: dict) -> list[str]:
    """The files to lint, each path walked with the excludes of the settings that apply to it.

    A run that executes nothing asks git nothing either (git runs a repository's configuration).
    """
    found: dict[Path, None] = {}
    for path in paths:
        project = Project.load(path, given)
        values = project.values
        exclude = (*values["exclude"], *values["extend-exclude"])
        root = project.config.parent if project.config and not values["config"] else Path.cwd()
        if not (values["force-exclude"] and _excluded(Path(path), exclude, root)):
            found.update(dict.fromkeys(python_files([path], run_git=not values["no-exec"], exclude=exclude)))
    return [str(file) for file in found]


def _excluded(path: Path, exclude: tuple[str, ...], root: Path) -> bool:
    """Whether ``path`` or a folder it is in, below the project's ``root``, matches ``exclude``."""
    absolute = Path(os.path.abspath(path))
    return any(matches(folder, exclude) for folder in (absolute, *absolute.parents)
               if folder == absolute or (folder != root and folder.is_relative_to(root)))


def _analyse_stdin(name: str, options: Options, cache: Cache | None) -> Iterator[tuple[str, Analysis, float]]:
    """The source on stdin, analysed (in the sandbox, as any file) under ``name``."""
    started = time.perf_counter()
    analysis = analyse_bytes(name, sys.stdin.buffer.read(), options, noqa=True, cache=cache)
    yield name, analysis, time.perf_counter() - started


def _add_noqa(reported: dict[str, list[Finding]], quiet: bool) -> int:
    """Put ``# noqa: CODES`` on each line with a reported finding (ruff's ``--add-noqa``).

    Only files with findings are written, each atomically and keeping its mode.  Exit status 1
    when a file could not take all its comments (libcst cannot parse it, or a line is gone).
    """
    comments, edited, complete = 0, 0, True
    for path, findings in reported.items():
        if findings:
            wanted: dict[Any, set[str]] = {}  # a line, or a notebook's (cell, line)
            for finding in findings:
                place = finding.line if finding.cell is None else (finding.cell, finding.line)
                wanted.setdefault(place, set()).add(finding.code)
            added, placed_all = _add_noqa_to(path, wanted)
            comments, edited, complete = comments + added, edited + bool(added), complete and placed_all
    if not quiet:
        click.echo(f"rfa-lint: added {_plural(comments, 'noqa comment')} to {_plural(edited, 'file')}",
                   err=True)
    return 0 if complete else 1


def _add_noqa_to(path: str, wanted: dict[Any, set[str]]) -> tuple[int, bool]:
    """How many lines of ``path`` got or extended a noqa comment, and whether all ``wanted`` did.
    A notebook's comments go into its cells (``wanted`` holds (cell, line) places)."""
    target = os.path.realpath(path)  # a link stays a link to the edited file
    with open(target, "rb") as handle:
        source = handle.read()
    try:
        added = add_noqa_to_notebook(source, wanted) if is_notebook(path) else add_noqa(source, wanted)
    except Unparsable as exc:
        click.echo(f"rfa-lint: {path}: left alone: {exc}", err=True)
        return 0, False
    if added.source != source:
        write_atomically(target, added.source, mode=stat.S_IMODE(os.stat(target).st_mode))
    if added.unplaceable:
        lines = ", ".join(f"cell {p[0]} line {p[1]}" if isinstance(p, tuple) else str(p)
                          for p in sorted(added.unplaceable))
        click.echo(f"rfa-lint: {path}: no line {lines} to put a noqa comment on", err=True)
    return added.changed, not added.unplaceable


def _report(run: dict, findings: list[Finding], coverage: list) -> None:
    """The report, where --output-file says, and --statistics after it; after a JSON, SARIF or
    workflow-command report they go to stderr, so that the report stays one document."""
    report = FORMATS[run["format"]](findings, coverage)
    statistics = _statistics(findings) if run["statistics"] else ""
    if run["format"] == "text":
        report, statistics = report + statistics, ""
    _write(report, run["output-file"])
    click.echo(statistics, err=True, nl=False)


def _statistics(findings: list[Finding]) -> str:
    """flake8's ``--statistics``: per code, how many findings, the code and its rule's name."""
    counts = Counter(finding.code for finding in findings)
    return "".join(f"{counts[code]:<5} {code} {rules.get(code).name}\n" for code in sorted(counts))


def _settings_report(run: dict, projects: dict[str, Project]) -> str:
    """The run's settings, then per folder of the files the file its project settings come from,
    each of their values, and the codes they report."""
    def lines(values: Mapping[str, Any], names: Iterable[str]) -> str:
        return "".join(f"  {name} = {BY_NAME[name].display(values[name])}\n" for name in names)

    from rfa_lint.sandbox.isolation import in_force

    blocks = [f"run (command line and defaults):\n{lines(run, [s.name for s in SETTINGS if not s.toml])}"
              f"  # isolation: {in_force(run['isolation']).describe()}\n"]
    for folder, project in sorted(projects.items()):
        source = project.config or "no configuration file" + (" (--isolated)" if run["isolated"] else "")
        blocks.append(f"{folder or '.'}: {source}\n{lines(project.values, PYPROJECT)}"
                      f"  # codes reported (per-file-ignores aside): {', '.join(sorted(project.codes))}\n")
    return "\n".join(blocks)


def _require_isolation(projects: Iterable[Project]) -> None:
    """Exit 2 before anything runs when a project that runs model code requires the kernel's
    isolation and the kernel refuses it."""
    from rfa_lint.sandbox import isolation

    for project in projects:
        if project.options.execute and project.options.limits.isolation == "required":
            try:
                isolation.for_run("required")
            except isolation.Refused as exc:
                click.echo(f"rfa-lint: {exc}", err=True)
                sys.exit(2)


def _log_as_the_environment_says() -> None:
    """The log of a command without --verbose: where ``RFA_LINT_LOG`` says, if anywhere."""
    try:
        logs.configure(target=resolve({}, {})["log"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(files: int, coverage: list, findings: list, resolutions: list[str], seconds: float) -> str:
    """``rfa-lint: 3 files, 5 models analysed, 2 skipped, 4 findings at 32px in 1.2s``."""
    models = [m for _, records in coverage for m in records]
    analysed = sum(m.analysed for m in models)
    at = f" at {', '.join(resolutions)}px" if resolutions else ""
    return (f"rfa-lint: {_plural(files, 'file')}, {_plural(analysed, 'model')} analysed, "
            f"{len(models) - analysed} skipped, {_plural(len(findings), 'finding')}{at} in {seconds:.1f}s")


def _list_skipped(coverage: list, codes_of) -> None:
    """Name the skipped models whose code is not reported as a finding, with the fix for each."""
    skipped = [(path, m) for path, records in coverage for m in records
               if not m.analysed and m.code not in codes_of(path)]
    if not skipped:
        return
    click.echo("rfa-lint: not analysed (select RFA9 to report these as findings):", err=True)
    for path, model in skipped[:SKIPPED_LISTED]:
        click.echo(f"  {path}:{model.line}: {model.code} {model.reason}", err=True)
    if len(skipped) > SKIPPED_LISTED:
        click.echo(f"  ... and {len(skipped) - SKIPPED_LISTED} more (--format json lists them all)", err=True)


def _draw(path: str, graphs: dict[str, dict], folder: str, picture_format: str, res: tuple[int, ...]) -> bool:
    """One picture per analysed model; without ``dot``, say how to get it, and False: stop drawing."""
    from rfa_lint import render  # graphviz loads only when pictures are asked for

    os.makedirs(folder, exist_ok=True)
    for model, plain in graphs.items():
        target = Path(folder, render.picture_name(path, model, root=os.getcwd()))
        try:
            render.render_to_file(graph_from_plain(plain), target, picture_format, input_res=res,
                                  source_root=os.getcwd())
        except render.GraphvizNotFound as exc:
            click.echo(f"rfa-lint: {exc}", err=True)
            return False
    return True


def _write(report: str, output_file: str | None) -> None:
    """Print, or replace ``output_file`` atomically: never a half-written report."""
    if not output_file:
        click.echo(report, nl=False)
        return
    write_atomically(output_file, report.encode("utf-8"))


@main.command(short_help="Explain a rule, or list them all.")
@click.argument("code", required=False)
def rule(code: str | None) -> None:
    """Explain rule CODE (e.g. RFA101), or list all rules."""
    if code is None:
        for known in rules.RULES.values():
            click.echo(f"{known.code}  {known.name:<28} {known.summary}")
        return
    try:
        click.echo(rules.explain(code.upper()))
    except KeyError as exc:
        raise click.BadParameter(exc.args[0], param_hint="CODE") from None


@main.command(short_help="A language server for editors (LSP on stdio).")
def server() -> None:
    """Run a Language Server on stdin/stdout (diagnostics, hover, noqa quick fix) for editors."""
    from rfa_lint import lsp  # pygls loads only for the server

    _log_as_the_environment_says()
    lsp.serve()


@main.command(short_help="Where a model's compute goes to waste, and what to change.")
@click.argument("path", type=click.Path(exists=True))
@click.option("--model", metavar="NAME", help="Explain only this model (its class or factory name).")
@click.option("--res", type=_Checked(BY_NAME["res"]), metavar="N|HxW",
              help="Input resolution (default: [tool.rfa-lint] res, else 224).")
@click.option("--format", "output_format", type=click.Choice(("text", "json", "html")), default="text",
              show_default=True, help="Report format; html is one self-contained page.")
@click.option("--output-file", type=_Checked(BY_NAME["output-file"]), metavar="FILE",
              help="Write the report here, not to stdout.")
@click.option("--diff", is_flag=True,
              help="Show each suggestion that changes literal arguments in PATH as a unified diff "
                   "(printed only; nothing is written).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
def explain(path: str, model: str | None, res: tuple[int, ...] | None, output_format: str,
            output_file: str | None, diff: bool, no_cache: bool) -> None:
    """Explain where the models of PATH waste parameters and compute at a resolution, and which
    architecture edits fix it (each measured by analysing the edited graph).

    Exit status: 0 when a model was explained, 1 when none could be, 2 on usage errors.
    """
    from rfa_lint import explain as explaining  # only this command needs it

    _log_as_the_environment_says()
    explained, skipped = [], []
    cache = None if no_cache else Cache(default_folder(), graphs=True)
    for file in map(str, python_files([path])):
        try:
            options = Project.load(os.path.dirname(file), {"res": res}).options
        except ValueError as exc:  # a bad [tool.rfa-lint]: a usage error
            raise click.UsageError(str(exc)) from None
        found, records = explaining.explain_file(file, options, model, cache, root=os.getcwd())
        if diff and is_notebook(file):
            click.echo(f"rfa-lint: --diff shows no diff of a notebook yet: {file}", err=True)
        elif diff:
            text = Path(file).read_text(encoding="utf-8")
            found = [explaining.with_diffs(e, text) for e in found]
        explained += found
        skipped += [(file, r) for r in records if not r.analysed and model in (None, r.name)]
    for file, record in skipped:
        where = f"{file}:{record.line}" if record.cell is None else f"{file}:cell {record.cell}:{record.line}"
        click.echo(f"rfa-lint: not explained: {where}: {record.code} {record.reason}", err=True)
    if not explained:
        click.echo(f"rfa-lint: no model {model!r} analysed in {path}" if model else
                   f"rfa-lint: no model analysed in {path}", err=True)
        sys.exit(1)
    _write(explaining.render(explained, output_format), output_file)
