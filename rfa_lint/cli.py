"""The ``rfa-lint`` command: a thin adapter from click options to :mod:`rfa_lint.lint`."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click

from rfa_lint import __version__, config, rules
from rfa_lint.cache import Cache, default_folder
from rfa_lint.files import python_files
from rfa_lint.lint import analyse_files, options_from
from rfa_lint.rf import graph_from_plain
from rfa_lint.report import FORMATS

PROGRESS_MIN_FILES = 10


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
    """


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--res", help="Input resolution: N or HxW (e.g. 32, 32x48). Default 224.")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="text", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report here, not stdout.")
@click.option("--select", help="Comma-separated codes or prefixes to report (default: all).")
@click.option("--ignore", help="Comma-separated codes or prefixes to leave out.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds per file's child process (60).")
@click.option("--memory-limit", type=click.IntRange(min=256), help="MiB of address space per child (6144).")
@click.option("--no-exec", is_flag=True, default=None, help="Never run model code (RFA900 per model).")
@click.option("--filter-kernel-size-1", is_flag=True, default=None, help="Skip 1x1 layers.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True,
              help="Files analysed at once.")
@click.option("--graph-dir", type=click.Path(file_okay=False), help="Draw each analysed model here.")
@click.option("--graph-format", type=click.Choice(["svg", "png", "pdf", "dot"]), default="svg",
              show_default=True, help="Picture format for --graph-dir.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Result cache folder (default: .rfa_cache in the project root, else the user cache).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")
def check(paths, res, fmt, output_file, select, ignore, timeout, memory_limit, no_exec,
          filter_kernel_size_1, jobs, graph_dir, graph_format, no_cache, cache_dir, exit_zero, quiet) -> None:
    """Lint PATHS (files and folders) and report findings.

    Exit status: 1 when there are findings, 0 when clean, 2 on usage errors.  Defaults come from
    [tool.rfa-lint] in the nearest pyproject.toml; options given here win.
    """
    try:
        settings = config.merged(paths[0], {
            "res": res, "timeout": timeout, "memory-limit": memory_limit, "no-exec": no_exec,
            "filter-kernel-size-1": filter_kernel_size_1,
            "select": _split(select) or None, "ignore": _split(ignore) or None,
        })
        options = options_from(settings)
        codes = rules.select(settings.get("select", ["RFA"]), settings.get("ignore", []))
    except (ValueError, KeyError) as exc:
        raise click.UsageError(str(exc).strip("'\"")) from None
    files = [str(p) for p in python_files(paths)]
    cache = None if no_cache else Cache(cache_dir or default_folder(), graphs=bool(graph_dir))
    show_progress = not quiet and len(files) >= PROGRESS_MIN_FILES
    started, findings = time.perf_counter(), []
    for index, (path, analysis, seconds) in enumerate(analyse_files(files, options, jobs, cache), start=1):
        findings += [f for f in analysis.findings if f.code in codes]
        if graph_dir and analysis.graphs:
            graph_dir = _draw(path, analysis.graphs, graph_dir, graph_format, options.resolution)
        if show_progress:
            click.echo(f"rfa-lint: [{index}/{len(files)}] {path} ({seconds:.1f}s)", err=True)
    _write(FORMATS[fmt](findings), output_file)
    if not quiet:
        click.echo(f"rfa-lint: {len(files)} files, {len(findings)} findings at "
                   f"{'x'.join(map(str, options.resolution))}px "
                   f"in {time.perf_counter() - started:.1f}s", err=True)
    sys.exit(1 if findings and not exit_zero else 0)


def _draw(path: str, graphs: dict[str, dict], folder: str, fmt: str, res: tuple[int, ...]) -> str | None:
    """One picture per analysed model; without ``dot``, say how to get it and stop drawing."""
    from rfa_lint import render  # graphviz loads only when pictures are asked for

    os.makedirs(folder, exist_ok=True)
    for model, plain in graphs.items():
        target = Path(folder, render.picture_name(path, model, root=os.getcwd()))
        try:
            render.render_to_file(graph_from_plain(plain), target, fmt, input_res=res,
                                  source_root=os.getcwd())
        except render.GraphvizNotFound as exc:
            click.echo(f"rfa-lint: {exc}", err=True)
            return None
    return folder


def _write(report: str, output_file: str | None) -> None:
    """Print, or replace ``output_file`` atomically: never a half-written report."""
    if not output_file:
        click.echo(report, nl=False)
        return
    target = Path(output_file)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(report)
    os.replace(tmp, target)


@main.command()
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
        raise click.BadParameter(str(exc).strip("'\""), param_hint="CODE") from None
