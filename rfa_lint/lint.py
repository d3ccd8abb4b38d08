"""One file -> findings: the single pipeline behind both front doors (flake8 and the CLI).

source (ast: candidates) -> sandbox (child: plain graphs) -> rf analysis -> findings placed on
the lines of this file that built each layer, one finding per (line, code).
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import os
import textwrap
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from rfa_lint import logs, notebook, rules
from rfa_lint.noqa import without_noqa
from rfa_lint.cache import Cache
from rfa_lint.files import local_modules, module_text, python_files
from rfa_lint.positions import Span, place
from rfa_lint.results import Analysis, Finding, ModelRecord, printable
from rfa_lint.rf import EnrichedNetworkNode, graph_from_plain, productive_from
from rfa_lint.rf.analysis import input_rf, judged
from rfa_lint.rf.graph import GraphTooLarge, broadcast, graph_limits, per_axis
from rfa_lint.rules import json_numbers
from rfa_lint.sandbox import FileOutcome, analyse_models
from rfa_lint.sandbox.child import FRAMEWORK_ORDER
from rfa_lint.sandbox.status import Status
from rfa_lint.settings import Options
from rfa_lint.source import (Candidate, SourceInfo, imported_frameworks, may_define_model, might_define_model,
                             read_source, shape_json, shape_of, defined)

log = logging.getLogger(__name__)

#: The most work the linter's own process spends on one model's graph, whatever a child sends.
#: The largest real networks measured stay far below: 1,397 nodes (timm hrnet_w64), 2,508 edges
#: (torchvision densenet201), 14 stride products at one node and 18,039 paths (timm volo_d5_224).
GRAPH_NODES = 5_000  # analysis walks successors per global layer: quadratic in the worst case
GRAPH_EDGES = 50_000
GRAPH_PATHS = 100_000  # incoming receptive-field entries, summed over the nodes
GRAPH_STRIDE_PRODUCTS = 64  # distinct stride products meeting at one node
#: What data that is not what it claims to be (a child's graph, a cache entry) raises when read.
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError, RecursionError)


def decode(data: bytes) -> str:
    """Source bytes -> text, honouring a PEP 263 coding cookie; raises UnicodeDecodeError."""
    try:
        return importlib.util.decode_source(data)
    except SyntaxError as exc:  # unknown coding cookie
        raise UnicodeDecodeError("utf-8", data, 0, 1, str(exc)) from None


def lint_file(path: str, options: Options, noqa: bool = False, cache: Cache | None = None) -> list[Finding]:
    """Lint one file on disk; with ``noqa``, drop findings silenced by ``# noqa`` comments."""
    return analyse_file(path, options, noqa, cache).findings


def analyse_file(path: str, options: Options, noqa: bool = False, cache: Cache | None = None) -> Analysis:
    with open(path, "rb") as handle:
        return analyse_bytes(path, handle.read(), options, noqa, cache)


def analyse_bytes(
    path: str, data: bytes, options: Options, noqa: bool = False, cache: Cache | None = None
) -> Analysis:
    """Analyse a file's bytes: a file Python could not decode gets RFA910 instead of a crash.
    A notebook is analysed as the module its code cells make, and its findings placed in its
    cells."""
    if notebook.is_notebook(path):
        return _analyse_notebook(path, data, options, noqa, cache)
    try:
        text = decode(data)
    except UnicodeDecodeError as exc:
        if not might_define_model(data.decode("utf-8", "replace")):
            return Analysis([])
        return Analysis([_whole_file(path, "RFA910", rules.Detail(f"{exc.reason} at byte {exc.start}"))])
    analysis = analyse_source(path, text, options, cache)
    return replace(analysis, findings=without_noqa(analysis.findings, text)) if noqa else analysis


def _analyse_notebook(path: str, data: bytes, options: Options, noqa: bool, cache: Cache | None) -> Analysis:
    """A notebook nbformat cannot read is RFA909 (it does not parse), unless it names no framework."""
    try:
        cells = notebook.read(data)
    except notebook.NotANotebook as exc:
        if not might_define_model(data.decode("utf-8", "replace")):
            return Analysis([])
        return Analysis([_whole_file(path, "RFA909", rules.Detail(str(exc)))])
    analysis = analyse_source(path, cells.text, options, cache)
    found = without_noqa(analysis.findings, cells.text) if noqa else analysis.findings
    models = [replace(m, cell=cells.place(m.line)[0], line=cells.place(m.line)[1]) for m in analysis.models]
    return replace(analysis, findings=[_in_cell(f, cells) for f in found], models=models)


def _in_cell(finding: Finding, cells: notebook.Notebook) -> Finding:
    """A finding on the notebook's module, placed in its cell (the file's own: at cell 1, line 1)."""
    if finding.end_line is None and finding.line == 1:
        return replace(finding, cell=cells.place(1)[0])
    cell, line = cells.place(finding.line)
    end_line = None if finding.end_line is None else cells.place(finding.end_line)[1]
    return replace(finding, cell=cell, line=line, end_line=end_line)


def analyse_files(
    paths: Sequence[str], options_for: Callable[[str], Options], jobs: int = 1, cache: Cache | None = None
) -> Iterator[tuple[str, Analysis, float]]:
    """(path, analysis, seconds) for each file, in order, analysing up to ``jobs`` at once.

    ``options_for(path)`` gives each file the settings of its own project.  Each file's models
    run in child processes, so threads suffice to overlap them.  Whatever goes wrong with one
    file becomes a finding of that file (RFA999 for rfa-lint's own failures), never the run's end.
    """
    def one(path: str) -> tuple[str, Analysis, float]:
        start = time.perf_counter()
        try:
            analysis = analyse_file(path, options_for(path), noqa=True, cache=cache)
        except OSError as exc:
            values = rules.ModelDetail(path, exc.strerror or str(exc))
            analysis = Analysis([_whole_file(path, "RFA901", values)])
        except Exception as exc:  # a bug of ours must not hide the other files' findings
            analysis = Analysis([_whole_file(path, "RFA999", rules.Detail(logs.internal_error(path, exc)))])
        return path, analysis, time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        yield from pool.map(one, paths)


def analyse_source(path: str, text: str, options: Options, cache: Cache | None = None) -> Analysis:
    """One file's analysis; with a cache, an unchanged file's is read back instead of run.

    A file that cannot reach a framework has no model, which its text and its package's texts
    tell without parsing: that is most code, and it costs no cache lookup (flake8 runs the plugin
    on every file, so this is the plugin's whole cost there).
    """
    if not may_define_model(Path(path), text):
        return Analysis([])
    too_large = _too_large(path, text, options.max_file_kib)
    if too_large is not None:
        return too_large
    if cache is None:
        return _analyse_source(path, text, options)
    stored = cache.load(path, text, options)
    if stored is not None:
        try:
            analysis = _cached(path, text, *stored)
        except MALFORMED as exc:  # not an entry rfa-lint wrote: analyse again, which rewrites it
            log.info("%s: the cache entry is malformed (%s: %s): analysing again", path,
                     type(exc).__name__, exc)
        else:
            log.debug("%s: from the cache", path)
            return analysis
    else:
        log.debug("%s: not in the cache", path)
    analysis = _analyse_source(path, text, options)
    if analysis.cacheable:
        cache.store(path, text, options, analysis.rows(), analysis.graphs, analysis.reads)
    else:
        log.debug("%s: not cached (a result the machine decided: a timeout, the memory limit, a crash)", path)
    return analysis


def _too_large(path: str, text: str, max_kib: int) -> Analysis | None:
    """RFA917 for a file larger than ``max_kib``, before anything parses or tokenizes it (the
    cache's key tokenizes too): parsing costs memory and time in proportion to the text."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= max_kib << 10:
        return None
    values = rules.Detail(f"{-(-size >> 10)} KiB, more than max-file-size {max_kib} KiB")
    finding = _whole_file(path, "RFA917", values)
    record = ModelRecord(os.path.basename(path), 1, False, "RFA917", finding.message)
    return Analysis([finding], models=[record])


def _cached(path: str, text: str, rows: Mapping[str, Any], graphs: Mapping[str, Any]) -> Analysis:
    """The analysis a cache entry holds; one of ``MALFORMED`` when it is not one rfa-lint could
    have written for this text (:meth:`Analysis.from_rows`), or a graph is past the limits."""
    for plain in graphs.values():
        _graph(plain)
    return Analysis.from_rows(path, text, rows, graphs)


def _analyse_source(path: str, text: str, options: Options) -> Analysis:
    info = read_source(text)
    if info.syntax_error:
        line, col, message = info.syntax_error
        values = rules.Detail(message)
        return Analysis([Finding(path, line, col, "RFA909", rules.get("RFA909").render(values),
                                 details=_not_analysed(os.path.basename(path), "RFA909", values))])
    frameworks = _frameworks(path, text, info)
    if not frameworks:
        return Analysis([])  # nothing the file imports, itself or through siblings, makes models
    findings = [_stray(path, text, line, col, comment) for line, col, comment in info.stray_directives]
    runnable = []
    for candidate in info.candidates:
        candidate = _with_config(candidate, options.models)
        if not candidate.directive_error:
            candidate = replace(candidate, directive_error=_request_error(candidate))
        if candidate.directive_error:
            values = rules.Detail(candidate.directive_error)
            findings.append(_model_finding(path, text, candidate, "RFA911", values))
        elif not candidate.skip:
            runnable.append(candidate)
    if not runnable:
        return Analysis(sorted(findings))
    if not options.execute:  # only what the text shows to be a model: nothing confirms the rest
        disabled = [(c, _model_finding(path, text, c, "RFA900", rules.Model(c.name)))
                    for c in runnable if c.framework]
        return Analysis(sorted(findings + [f for _, f in disabled]),
                        models=[_skipped(c, f) for c, f in disabled])
    requests = [{**_request(c), "resolution": list(options.resolution)} for c in runnable]
    outcome = analyse_models(os.path.abspath(path), text, frameworks[0], requests, options.limits, frameworks)
    report = _Report(path, text, options, info.handoff_lines)
    report.outcome(runnable, outcome, frameworks)
    analysis = Analysis(sorted(findings + report.findings()), report.graphs, report.models,
                        report.cacheable and outcome.clean, outcome.reads)
    return without_blocks([(path, analysis)])[0][1]


def without_blocks(analyses: list[tuple[str, Analysis]]) -> list[tuple[str, Analysis]]:
    """Drop the skipped models that an analysed model of the same files builds.

    ``DoubleConv(cin, cout)`` needs arguments on its own, but ``UNet`` (in this file or another
    one of the run) builds it and was analysed with it inside: it is a block, not a model the
    user expects analysed, and not worth a "needs arguments" report.
    """
    built = {item for _, analysis in analyses for model in analysis.models for item in model.builds}
    result = []
    for path, analysis in analyses:
        target = printable(os.path.abspath(path))  # as the records hold it
        blocks = {(m.line, m.code) for m in analysis.models
                  if not m.analysed and m.code and rules.get(m.code).marks_block
                  and (target, m.name) in built}
        if blocks:
            analysis = replace(
                analysis,
                findings=[f for f in analysis.findings if (f.line, f.code) not in blocks],
                models=[m for m in analysis.models if (m.line, m.code) not in blocks],
            )
        result.append((path, analysis))
    return result


def _frameworks(path: str, text: str, info: SourceInfo) -> list[str]:
    """The frameworks the file's models may use, torch first.

    Those it imports; for a file that imports none itself (``from .parts import *``), those its
    own package's modules import, which Python loads with it.
    """
    found = set(info.frameworks)
    if not found and info.candidates:
        for module in local_modules(Path(path), text):
            found |= imported_frameworks(module_text(module))
    return [f for f in FRAMEWORK_ORDER if f in found]


def _with_config(candidate: Candidate, models: Mapping[str, Mapping[str, Any]]) -> Candidate:
    """Fill build arguments from pyproject's ``[tool.rfa-lint.models]``; comments win."""
    config = models.get(candidate.name)
    if not config or candidate.build_args or candidate.build_kwargs or candidate.skip:
        return candidate
    return replace(
        candidate,
        build_args=tuple(config.get("args", ())),
        build_kwargs=tuple(dict(config.get("kwargs", {})).items()),
        input_shape=candidate.input_shape or shape_of(config.get("input-shape")),
        skip=bool(config.get("skip", False)),
    )


def unknown_models(config: Path, names: Iterable[str], files: Iterable[str]) -> list[str]:
    """The names of ``[tool.rfa-lint.models.NAME]`` tables that no Python file of the config's
    project defines (as a class, a function or an assignment): a misspelt name would otherwise
    leave its model without the settings meant for it, silently.

    The run's files are read first; the project's other files (as a walk of its folder finds
    them) only for a name those do not define, since a run often lints part of a project.
    """
    missing = set(names)
    for group in (files, (str(p) for p in python_files([config.parent]))):
        for file in group:
            if not missing:
                return []
            missing -= defined(module_text(Path(file)), missing)
    return sorted(missing)


def _request_error(candidate: Candidate) -> str | None:
    """Why a candidate's build settings cannot reach the child, or None.

    Arguments cross as the text of a Python literal, read back with :func:`ast.literal_eval`, so
    a tuple stays a tuple (JSON has none); a value whose text is no literal (``inf``, ``nan``)
    cannot.  A model made by a top-level assignment takes no arguments: its assignment gives them.
    """
    if candidate.kind == "instance" and (candidate.build_args or candidate.build_kwargs):
        return (f"build(...) does not apply to '{candidate.name}': the assignment on line "
                f"{candidate.line} builds it (input(...) and skip do)")
    for value in (candidate.build_args, dict(candidate.build_kwargs)):
        try:
            same = ast.literal_eval(repr(value)) == value
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            same = False
        if not same:
            return "build arguments must be literals Python reads back (numbers, strings, booleans, None, " \
                   "tuples, lists, dicts, sets)"
    return None


def _stray(path: str, text: str, line: int, col: int, comment: str) -> Finding:
    """RFA911 at a ``# rfa-lint:`` comment that belongs to no model: its settings would be lost."""
    values = rules.Detail(f"{comment.lstrip('#').strip()!r} names no model (write it on a model's class, def "
                          "or top-level assignment line, or on the comment lines right above it)")
    span = place(text, line)
    return Finding(path, line, col, "RFA911", rules.get("RFA911").render(values), span.end_line, span.end_col,
                   _not_analysed("", "RFA911", values))


def _request(candidate: Candidate) -> dict[str, Any]:
    return {
        "name": candidate.name,
        "kind": candidate.kind,
        "line": candidate.line,
        "evidence": candidate.evidence,
        "annotation": candidate.annotation,
        "returns": list(candidate.returns),
        "only_builds": candidate.only_builds,
        "directed": candidate.directed,
        "build_args": repr(tuple(candidate.build_args)),
        "build_kwargs": repr(dict(candidate.build_kwargs)),
        "input_shape": shape_json(candidate.input_shape),
    }


@dataclass(frozen=True)
class _Hit:
    """One layer instance that raised a code: its model, its node, its message's values."""

    model: str
    node: EnrichedNetworkNode
    values: rules.LayerFields
    note: str = ""  # said when its model was traced at another size than the linted one


class _Report:
    """Turns a file's model outcomes into findings, one per (line, code), and its coverage."""

    def __init__(self, path: str, text: str, options: Options, handoff_lines: frozenset[int]) -> None:
        self.path, self.text, self.options, self.handoff_lines = path, text, options, handoff_lines
        self.layer_hits: dict[tuple[int, str], list[_Hit]] = defaultdict(list)
        self.model_findings: list[Finding] = []
        self.graphs: dict[str, dict] = {}
        self.models: list[ModelRecord] = []
        self.cacheable = True

    def findings(self) -> list[Finding]:
        layers = [_layer_finding(self.path, self.text, line, code, hits)
                  for (line, code), hits in self.layer_hits.items()]
        # one per place and message: models built from one file (a YOLO yaml's Detection, Pose and
        # Segmentation models) report the same unsupported layer at the same line once
        return list(dict.fromkeys(self.model_findings + layers))

    def outcome(self, candidates: list[Candidate], outcome: FileOutcome, frameworks: list[str]) -> None:
        if outcome.failure:  # the file as a whole: its import failed, or its child died there
            rule = rules.BY_STATUS[outcome.failure.status]
            name = os.path.basename(self.path)
            failure = rules.Failure(name, outcome.failure.detail, self.options.limits.memory_mb,
                                    tuple(frameworks))
            finding = _whole_file(self.path, rule.code, rule.failure_values(failure))
            self.model_findings.append(finding)
            self.models.append(ModelRecord(name, 1, False, rule.code, finding.message))
            self.cacheable = bool(rule.cacheable)
            return
        for candidate in candidates:
            result = outcome.models.get(candidate.name)
            if candidate.directed and result is not None and result.status == Status.NOT_A_MODEL:
                detail = f"'{candidate.name}' has a directive but is no model: {result.detail}"
                self.skipped(candidate, "RFA911", rules.Detail(detail))
                continue
            if result is None or result.status == Status.NOT_A_MODEL:
                continue  # Python says it is no model: the text's guess was wrong
            if result.status == Status.OK and result.graph is not None:
                self.graph(candidate, result.graph)
            else:
                rule = rules.BY_STATUS[result.status]
                failure = rules.Failure(candidate.name, result.detail, self.options.limits.memory_mb)
                self.skipped(candidate, rule.code, rule.failure_values(failure))

    def skipped(self, candidate: Candidate, code: str, values: rules.Fields) -> None:
        finding = _model_finding(self.path, self.text, candidate, code, values)
        self.model_findings.append(finding)
        self.models.append(_skipped(candidate, finding))
        self.cacheable = self.cacheable and bool(rules.get(code).cacheable)

    def graph(self, candidate: Candidate, plain: dict) -> None:
        """Findings of one analysed model; a resolution it cannot be judged at, or a graph past
        the limits, skips it."""
        try:
            graph = _graph(plain)
        except MALFORMED as exc:
            detail = str(exc) if isinstance(exc, GraphTooLarge) else \
                f"it is malformed ({type(exc).__name__}: {textwrap.shorten(str(exc), 200)})"
            self.skipped(candidate, "RFA916", rules.ModelDetail(candidate.name, detail))
            return
        traced = _traced_size(plain)
        res = self.options.resolution
        if len(res) > 1 and traced is not None and len(res) != len(traced):
            axes = rules.ResolutionAxes(candidate.name, res, len(res), len(traced))
            self.skipped(candidate, "RFA915", axes)
            return
        self.graphs[candidate.name] = plain
        builds = tuple((str(f), str(n)) for f, n in plain.get("classes", ()))
        self.models.append(ModelRecord(candidate.name, candidate.line, True, traced=traced, builds=builds,
                                       built=plain.get("built")))
        note = _fallback_note(res, traced)
        self.layers(candidate, graph, note)
        self.model_findings += [_unsupported(self.path, self.text, candidate, item, self.handoff_lines)
                                for item in plain.get("unsupported", ())]
        model = rules.AnalysedModel(candidate.name, graph, res, self.options.filter_kernel_size_1)
        for rule in rules.MODEL_RULES:
            values = rule.decide(model)
            if values is not None:
                self.model_findings.append(_noted(_model_finding(self.path, self.text, candidate, rule.code,
                                                                 values), note))

    def layers(self, candidate: Candidate, graph: EnrichedNetworkNode, note: str) -> None:
        """Ask each layer rule about each judged layer; a hit goes to the line that built it."""
        skip_1x1 = self.options.filter_kernel_size_1
        at_resolution = not note  # traced at the linted size: its map sizes are the real ones
        for node in graph.all_layers:
            if not judged(node) or skip_1x1 and all(k == 1 for k in node.layer_info.kernel):
                continue
            handoff = self.handoff_lines if node.module_paths else frozenset()  # an op is its own line
            line = site_line(node.sites, self.path, handoff) or candidate.line
            feature_map = tuple(node.map_in) if at_resolution and node.map_in is not None else None
            layer = rules.Layer(node, self.options.resolution, feature_map, skip_1x1)
            for rule in rules.LAYER_RULES:
                values = rule.decide(layer)
                if isinstance(values, rules.LayerFields):
                    self.layer_hits[(line, rule.code)].append(_Hit(candidate.name, node, values, note))


def _graph(plain: dict[str, Any]) -> EnrichedNetworkNode:
    """The receptive-field graph of a plain graph, built within the limits (``GRAPH_*``):
    :class:`GraphTooLarge` past them, one of ``MALFORMED`` for data that is no graph."""
    nodes = plain["nodes"]
    if len(nodes) > GRAPH_NODES:
        raise GraphTooLarge(f"{len(nodes)} nodes, more than the limit of {GRAPH_NODES}")
    edges = sum(len(spec.get("predecessors", ())) for spec in nodes)
    if edges > GRAPH_EDGES:
        raise GraphTooLarge(f"{edges} edges, more than the limit of {GRAPH_EDGES}")
    with graph_limits(GRAPH_PATHS, GRAPH_STRIDE_PRODUCTS):
        return graph_from_plain(plain)


def _skipped(candidate: Candidate, finding: Finding) -> ModelRecord:
    return ModelRecord(candidate.name, candidate.line, False, finding.code, finding.message)


def _traced_size(plain: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The spatial size the graph was traced at: the input node's output map."""
    nodes = plain.get("nodes") or [{}]
    size = nodes[0].get("map_out")
    return tuple(int(v) for v in size) if size else None


def _fallback_note(res: tuple[int, ...], traced: tuple[int, ...] | None) -> str:
    """The note of a model traced at another size than the linted one; none when it was not."""
    if traced is None or broadcast(per_axis(res, 1), traced)[0] == traced:
        return ""
    return rules.traced_elsewhere(res, traced)


def _noted(finding: Finding, note: str) -> Finding:
    return replace(finding, message=f"{finding.message} ({note})") if note else finding


def site_line(sites: Iterable[Sequence], path: str, handoff_lines: frozenset[int]) -> int | None:
    """The line of this file that built the layer, from its creation stack (innermost first).

    The innermost frame in this file, unless it is a helper's ``return`` of the layer itself
    (``return nn.Conv2d(...)``): that hands it to the caller, whose line (``self.conv1 =
    conv3x3(...)``) says which layer it is.  A layer built inside a container in the returned
    expression stays on its own line, so no layer is reported at two lines.
    """
    target = os.path.abspath(path)
    lines = [line for file, line in sites if os.path.abspath(file) == target]
    while len(lines) > 1 and lines[0] in handoff_lines:
        lines.pop(0)
    return lines[0] if lines else None


def _layer_finding(path: str, text: str, line: int, code: str, hits: list[_Hit]) -> Finding:
    """One finding for all instances of a line: named after the instance that needs the most."""
    worst = max(hits, key=lambda h: max(h.values.needs))
    per_model = Counter({worst.model: 0}) + Counter(h.model for h in hits)  # the named one's model first
    values = replace(worst.values, layer=rules.instances(worst.values.layer, per_model))
    node = worst.node
    details = {
        "model": worst.model,
        "layers": list(dict.fromkeys(p for h in hits for p in h.node.module_paths or [h.node.name])),
        "instances": len(hits),
        "rf_min": json_numbers(node.rf_min_per_axis),
        "rf_max": json_numbers(node.rf_max_per_axis),
        "input_rf": json_numbers(input_rf(node)),
        "resolution": json_numbers(worst.values.res),
        "productive_from": json_numbers(_max_axes([productive_from(h.node) for h in hits])),
        **worst.values.details(),
    }
    return _noted(_finding(path, place(text, line), code, values, details), worst.note)


def _max_axes(values: list[tuple]) -> tuple:
    return tuple(max(axis) for axis in zip(*broadcast(*values)))


def _unsupported(
    path: str, text: str, candidate: Candidate, item: Mapping[str, Any], handoff_lines: frozenset[int]
) -> Finding:
    line = site_line(item.get("sites", ()), path, handoff_lines) or candidate.line
    layer = (item.get("module_paths") or [""])[0] or candidate.name  # "": the model itself
    values = rules.Unsupported(f"'{layer}'", str(item.get("type", "?")))
    details = _not_analysed(candidate.name, "RFA905", values)
    return _finding(path, place(text, line), "RFA905", values, details)


def _model_finding(path: str, text: str, candidate: Candidate, code: str, values: rules.Fields) -> Finding:
    details = values.details() or _not_analysed(candidate.name, code, values)
    return _finding(path, place(text, candidate.line), code, values, details)


def _whole_file(path: str, code: str, values: rules.Fields) -> Finding:
    """A finding about the file as a whole: at its start, without a span."""
    model = getattr(values, "model", os.path.basename(path))
    details = {**_not_analysed(model, code, values), **values.details()}
    return Finding(path, 1, 0, code, rules.get(code).render(values), details=details)


def _not_analysed(model: str, code: str, values: rules.Fields) -> dict[str, Any]:
    """The details of a finding that something was not analysed: which model, and why (the
    error or the parameters the message names, else the rule's summary)."""
    reason = getattr(values, "detail", None) or getattr(values, "params", None) or rules.get(code).summary
    return {"model": model, "reason": reason}


def _finding(path: str, span: Span, code: str, values: rules.Fields, details: Mapping[str, Any]) -> Finding:
    message = rules.get(code).render(values)
    return Finding(path, span.line, span.col, code, message, span.end_line, span.end_col, details)
