"""One file -> findings: the single pipeline behind both front doors (flake8 and the CLI).

source (ast: candidates) -> sandbox (child: plain graphs) -> rf analysis -> findings placed on
the lines of this file that built each layer, one finding per (line, code).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import string
import textwrap
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from rfa_lint import rules
from rfa_lint.noqa import without_noqa
from rfa_lint.cache import Cache, direct_imports, local_modules
from rfa_lint.rf import (
    EnrichedNetworkNode,
    Verdict,
    classify,
    graph_from_plain,
    input_feature_map,
    input_resolution_range,
    kernel_covers_feature_map,
    kernel_fit_from,
    productive_from,
)
from rfa_lint.rf.graph import GraphTooLarge, broadcast, graph_limits, per_axis
from rfa_lint.sandbox import FileOutcome, ModelOutcome, analyse_models
from rfa_lint.sandbox.child import FRAMEWORK_ORDER
from rfa_lint.settings import Options, options_from, parse_resolution  # noqa: F401 (re-exported)
from rfa_lint.source import Candidate, SourceInfo, imported_frameworks, might_define_model, read_source

FINDING_KINDS = ("conv", "pool")  # layers with a kernel; pass-through, merges and heads never are
VERDICT_CODES = {Verdict.UNPRODUCTIVE: "RFA101", Verdict.CRITICAL: "RFA102", Verdict.BORDER: "RFA103"}
STATUS_CODES = {
    "needs-arguments": "RFA902", "build-failed": "RFA903", "trace-failed": "RFA904",
    "timeout": "RFA906", "memory-limit": "RFA907", "crashed": "RFA908",
    "import-failed": "RFA901", "framework-missing": "RFA912", "needs-inputs": "RFA913",
    "download-blocked": "RFA914",
}
#: The diagnostics the file's own text decides.  Any other RFA9xx (an import that failed, a
#: build that raised, a timeout, a crash) may depend on what is installed or on the machine's
#: load, which the cache key does not see: such a result is never cached, the next run retries.
CACHEABLE_CODES = frozenset({"RFA900", "RFA902", "RFA905", "RFA909", "RFA910", "RFA911", "RFA913", "RFA915",
                             "RFA916"})
#: The most work the linter's own process spends on one model's graph, whatever a child sends.
#: The largest real networks measured stay far below: 1,397 nodes (timm hrnet_w64), 2,508 edges
#: (torchvision densenet201), 14 stride products at one node and 18,039 paths (timm volo_d5_224).
GRAPH_NODES = 5_000  # analysis walks successors per global layer: quadratic in the worst case
GRAPH_EDGES = 50_000
GRAPH_PATHS = 100_000  # incoming receptive-field entries, summed over the nodes
GRAPH_STRIDE_PRODUCTS = 64  # distinct stride products meeting at one node
#: What data that is not what it claims to be (a child's graph, a cache entry) raises when read.
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError, RecursionError)


def printable(text: str) -> str:
    """``text`` with each character that does not print escaped as Python would (``\\n``,
    ``\\x1b``, ``\\u2028``).

    Names come from user code (a layer's, a layer type's, a file's): escaped, none can start a
    line of its own in a report (a forged finding, a ``::error`` workflow command) or move a
    terminal's cursor.  Every finding and model record passes through here, so every format and
    both front doors show the same escaped text.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", printable(self.path))
        object.__setattr__(self, "message", printable(self.message))

    @property
    def text(self) -> str:
        return f"{self.code} {self.message}"


def decode(data: bytes) -> str:
    """Source bytes -> text, honouring a PEP 263 coding cookie; raises UnicodeDecodeError."""
    try:
        return importlib.util.decode_source(data)
    except SyntaxError as exc:  # unknown coding cookie
        raise UnicodeDecodeError("utf-8", data, 0, 1, str(exc)) from None


@dataclass(frozen=True)
class ModelRecord:
    """One model of a file and what became of it: the run's coverage.

    ``code`` is the RFA9xx code of a model that was not analysed (``reason`` says why, in the
    words of that code's message); ``traced`` the spatial input size the graph was traced at,
    which differs from the linted resolution when the model refused that one; ``builds`` the
    ``(file, class)`` of the user-code model classes an analysed model is made of.
    """

    name: str
    line: int
    analysed: bool
    code: str | None = None
    reason: str = ""
    traced: tuple[int, ...] | None = None
    builds: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", printable(self.name))
        object.__setattr__(self, "reason", printable(self.reason))
        object.__setattr__(self, "builds", tuple((printable(f), printable(n)) for f, n in self.builds))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "line": self.line, "analysed": self.analysed,
                "code": self.code, "reason": self.reason,
                "traced": list(self.traced) if self.traced else None,
                "builds": [list(item) for item in self.builds]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRecord:
        """The record of :meth:`to_json` data; ValueError for anything else (cached data is read
        from a folder others may write)."""
        name, line, analysed, code, reason, traced, builds = (
            data[key] for key in ("name", "line", "analysed", "code", "reason", "traced", "builds"))
        if not (_is(name, str) and _is(line, int) and line >= 1 and _is(analysed, bool)
                and (code is None or _is(code, str) and code in rules.RULES) and _is(reason, str)
                and (traced is None or _is(traced, list) and all(_is(v, int) and v >= 1 for v in traced))
                and _is(builds, list) and all(_is(item, list) and len(item) == 2
                                              and all(_is(part, str) for part in item) for item in builds)):
            raise ValueError("not a model record")
        return cls(name, line, analysed, code, reason, tuple(traced) if traced else None,
                   tuple((file, name_) for file, name_ in builds))


def _is(value: Any, kind: type) -> bool:
    """``isinstance``, except that a bool is no int (JSON's ``true`` is no line number)."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


@dataclass(frozen=True)
class Analysis:
    """A file's findings, its models' coverage, and the plain graph of every model analysed."""

    findings: list[Finding]
    graphs: dict[str, dict] = field(default_factory=dict)
    models: list[ModelRecord] = field(default_factory=list)
    #: False when a result may depend on more than the cache key sees (see CACHEABLE_CODES):
    #: a child that did not finish cleanly, an import that failed, a build that raised
    cacheable: bool = True


def lint_file(path: str, options: Options, noqa: bool = False, cache: Cache | None = None) -> list[Finding]:
    """Lint one file on disk; with ``noqa``, drop findings silenced by ``# noqa`` comments."""
    return analyse_file(path, options, noqa, cache).findings


def analyse_file(path: str, options: Options, noqa: bool = False, cache: Cache | None = None) -> Analysis:
    with open(path, "rb") as handle:
        return analyse_bytes(path, handle.read(), options, noqa, cache)


def analyse_bytes(
    path: str, data: bytes, options: Options, noqa: bool = False, cache: Cache | None = None
) -> Analysis:
    """Analyse a file's bytes: a file Python could not decode gets RFA910 instead of a crash."""
    try:
        text = decode(data)
    except UnicodeDecodeError as exc:
        if not might_define_model(data.decode("utf-8", "replace")):
            return Analysis([])
        return Analysis([_finding(path, 1, 0, "RFA910", detail=f"{exc.reason} at byte {exc.start}")])
    analysis = analyse_source(path, text, options, cache)
    return replace(analysis, findings=without_noqa(analysis.findings, text)) if noqa else analysis


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
            analysis = Analysis([_finding(path, 1, 0, "RFA901", model=path, detail=exc.strerror or str(exc))])
        except Exception as exc:  # a bug of ours must not hide the other files' findings
            analysis = Analysis([_finding(path, 1, 0, "RFA999", detail=f"{type(exc).__name__}: {exc}")])
        return path, analysis, time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        yield from pool.map(one, paths)


def analyse_source(path: str, text: str, options: Options, cache: Cache | None = None) -> Analysis:
    """One file's analysis; with a cache, an unchanged file's is read back instead of run."""
    if cache is None or not might_define_model(text):
        return _analyse_source(path, text, options)
    stored = cache.load(path, text, options)
    if stored is not None:
        try:
            return _from_rows(path, text, *stored)
        except MALFORMED:
            pass  # not an entry rfa-lint wrote: analyse again, which rewrites it
    analysis = _analyse_source(path, text, options)
    if analysis.cacheable:
        rows = {"findings": [[f.line, f.col, f.code, f.message] for f in analysis.findings],
                "models": [m.to_json() for m in analysis.models]}
        cache.store(path, text, options, rows, analysis.graphs)
    return analysis


def _from_rows(path: str, text: str, rows: Mapping[str, Any], graphs: Mapping[str, Any]) -> Analysis:
    """The analysis a cache entry holds, or ValueError (or TypeError, KeyError) when it is not
    one rfa-lint could have written for this text: each finding a known code on a line of the
    file, in its rule's words; each model record well-typed; each graph one the limits allow."""
    last_line = len(text.splitlines()) + 1  # at least as many as Python counts
    findings = []
    for line, col, code, message in rows["findings"]:
        if not (_is(line, int) and 1 <= line <= last_line and _is(col, int) and 0 <= col <= len(text)
                and _is(code, str) and code in rules.RULES and _is(message, str)
                and _message_pattern(code).fullmatch(message)):
            raise ValueError("not a finding")
        findings.append(Finding(path, line, col, code, message))
    for plain in graphs.values():
        _graph(plain)
    return Analysis(findings, dict(graphs), [ModelRecord.from_json(m) for m in rows["models"]])


@functools.cache
def _message_pattern(code: str) -> re.Pattern[str]:
    """The messages :func:`_finding` writes for ``code``: the rule's words around printable
    values, maybe followed by a note in parentheses."""
    parts = string.Formatter().parse(rules.get(code).message)
    pattern = "".join(re.escape(text) + (".*" if name is not None else "") for text, name, _, _ in parts)
    return re.compile(pattern + r"( \(.*\))?")


def _analyse_source(path: str, text: str, options: Options) -> Analysis:
    if not might_define_model(text):
        return Analysis([])
    info = read_source(text)
    if info.syntax_error:
        line, col, message = info.syntax_error
        return Analysis([_finding(path, line, col, "RFA909", detail=message)])
    frameworks = _frameworks(path, text, info)
    if not frameworks:
        return Analysis([])  # nothing the file imports, itself or through siblings, makes models
    findings, runnable = [], []
    for candidate in info.candidates:
        candidate = _with_config(candidate, options.models)
        if not candidate.directive_error and not _json_safe(_request(candidate)):
            candidate = replace(candidate, directive_error="build arguments must be JSON-like literals "
                                "(numbers, strings, booleans, None, lists, tuples, dicts)")
        if candidate.directive_error:
            findings.append(_model_finding(path, candidate, "RFA911", detail=candidate.directive_error))
        elif not candidate.skip:
            runnable.append(candidate)
    if not runnable:
        return Analysis(sorted(findings))
    if not options.execute:  # only what the text shows to be a model: nothing confirms the rest
        disabled = [(c, _model_finding(path, c, "RFA900")) for c in runnable if c.framework]
        return Analysis(sorted(findings + [f for _, f in disabled]),
                        models=[_skipped(c, f) for c, f in disabled])
    requests = [{**_request(c), "resolution": list(options.resolution)} for c in runnable]
    outcome = analyse_models(os.path.abspath(path), text, frameworks[0], requests, options.limits, frameworks)
    report = _Report(path, options, info.handoff_lines)
    report.outcome(runnable, outcome, frameworks)
    analysis = Analysis(sorted(findings + report.findings()), report.graphs, report.models, report.cacheable)
    return without_blocks([(path, analysis)])[0][1]


#: How a block fails on its own: the net that builds it says how, and was analysed with it.
BLOCK_CODES = frozenset({"RFA902", "RFA903", "RFA904", "RFA913"})


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
                  if not m.analysed and m.code in BLOCK_CODES and (target, m.name) in built}
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
        for module in local_modules(Path(path), text, _direct_imports):
            found |= imported_frameworks(_read_text(module))
    return [f for f in FRAMEWORK_ORDER if f in found]


@functools.lru_cache(maxsize=256)
def _direct_imports(module: Path) -> tuple[Path, ...]:
    return tuple(direct_imports(module, _read_text(module)))


def _read_text(module: Path) -> str:
    try:
        return module.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _with_config(candidate: Candidate, models: Mapping[str, Mapping[str, Any]]) -> Candidate:
    """Fill build arguments from pyproject's ``[tool.rfa-lint.models]``; comments win."""
    config = models.get(candidate.name)
    if not config or candidate.build_args or candidate.build_kwargs or candidate.skip:
        return candidate
    return replace(
        candidate,
        build_args=tuple(config.get("args", ())),
        build_kwargs=tuple(dict(config.get("kwargs", {})).items()),
        input_shape=candidate.input_shape or _shape(config.get("input-shape")),
        skip=bool(config.get("skip", False)),
    )


def _json_safe(request: dict[str, Any]) -> bool:
    """Requests cross to the child as JSON: sets, bytes or complex numbers cannot."""
    try:
        json.dumps(request, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(value) if value else None


def _request(candidate: Candidate) -> dict[str, Any]:
    return {
        "name": candidate.name,
        "kind": candidate.kind,
        "evidence": candidate.evidence,
        "annotation": candidate.annotation,
        "returns": list(candidate.returns),
        "build_args": list(candidate.build_args),
        "build_kwargs": dict(candidate.build_kwargs),
        "input_shape": list(candidate.input_shape) if candidate.input_shape else None,
    }


@dataclass(frozen=True)
class _Hit:
    """One layer instance that raised a code, with the model it belongs to."""

    model: str
    node: EnrichedNetworkNode
    fields: dict[str, Any]
    weight: Any  # the instance with the largest weight names the finding
    note: str = ""  # said when its model was traced at another size than the linted one


class _Report:
    """Turns a file's model outcomes into findings, one per (line, code), and its coverage."""

    def __init__(self, path: str, options: Options, handoff_lines: frozenset[int]) -> None:
        self.path, self.options, self.handoff_lines = path, options, handoff_lines
        self.layer_hits: dict[tuple[int, str], list[_Hit]] = defaultdict(list)
        self.model_findings: list[Finding] = []
        self.graphs: dict[str, dict] = {}
        self.models: list[ModelRecord] = []
        self.cacheable = True

    def findings(self) -> list[Finding]:
        layers = [_layer_finding(self.path, line, code, hits)
                  for (line, code), hits in self.layer_hits.items()]
        return self.model_findings + layers

    def outcome(self, candidates: list[Candidate], outcome: FileOutcome, frameworks: list[str]) -> None:
        if outcome.failure:  # the file as a whole: its import failed, or its child died there
            code = STATUS_CODES[outcome.failure.status]
            finding = _finding(self.path, 1, 0, code, model=os.path.basename(self.path),
                               framework=" and ".join(frameworks), detail=outcome.failure.detail,
                               **_limit_fields(self.options))
            self.model_findings.append(finding)
            self.models.append(ModelRecord(os.path.basename(self.path), 1, False, code, finding.message))
            self.cacheable = False
            return
        for candidate in candidates:
            result = outcome.models.get(candidate.name)
            if result is None or result.status == "not-a-model":
                continue  # Python says it is no model: the text's guess was wrong
            if result.status == "ok":
                self.graph(candidate, result.graph)
            else:
                self.skipped(candidate, result)

    def skipped(
        self, candidate: Candidate, result: ModelOutcome, code: str | None = None, **fields: Any
    ) -> None:
        code = code or STATUS_CODES[result.status]
        finding = _model_finding(self.path, candidate, code, detail=result.detail, params=result.detail,
                                 **_limit_fields(self.options), **fields)
        self.model_findings.append(finding)
        self.models.append(_skipped(candidate, finding))
        self.cacheable = self.cacheable and code in CACHEABLE_CODES

    def graph(self, candidate: Candidate, plain: dict) -> None:
        """Findings of one analysed model; a resolution it cannot be judged at, or a graph past
        the limits, skips it."""
        try:
            graph = _graph(plain)
        except MALFORMED as exc:
            detail = str(exc) if isinstance(exc, GraphTooLarge) else \
                f"it is malformed ({type(exc).__name__}: {textwrap.shorten(str(exc), 200)})"
            self.skipped(candidate, ModelOutcome("ok", detail=detail), "RFA916")
            return
        traced = _traced_size(plain)
        res = self.options.resolution
        if len(res) > 1 and traced is not None and len(res) != len(traced):
            self.skipped(candidate, ModelOutcome("ok"), "RFA915",
                         res=fmt(res), given=len(res), axes=len(traced))
            return
        self.graphs[candidate.name] = plain
        builds = tuple((str(f), str(n)) for f, n in plain.get("classes", ()))
        self.models.append(ModelRecord(candidate.name, candidate.line, True, traced=traced, builds=builds))
        note = _fallback_note(res, traced)
        at_resolution = not note  # traced at the linted size: its map sizes are the real ones
        for node in graph.all_layers:
            if not _judged(node):
                continue
            if self.options.filter_kernel_size_1 and all(k == 1 for k in node.layer_info.kernel):
                continue
            line = _site_line(node.sites, self.path, self.handoff_lines) or candidate.line
            verdict = classify(node, res, self.options.filter_kernel_size_1)
            if verdict in VERDICT_CODES:
                self.layer_hits[(line, VERDICT_CODES[verdict])].append(
                    _Hit(candidate.name, node, _verdict_fields(node, res), max(productive_from(node)), note)
                )
            feature_map = node.map_in if at_resolution else None
            if kernel_covers_feature_map(node, res, feature_map):
                fields, min_res = _kernel_fields(node, res, feature_map)
                hit = _Hit(candidate.name, node, fields, max(min_res), note)
                self.layer_hits[(line, "RFA104")].append(hit)
        self.model_findings += [_unsupported(self.path, candidate, item, self.handoff_lines)
                                for item in plain.get("unsupported", ())]
        low, high = input_resolution_range(graph, filter_kernel_size_1=self.options.filter_kernel_size_1)
        res_axes, low, high = broadcast(per_axis(res, 1), low, high)
        side = ("below the minimum" if any(r < lo for r, lo in zip(res_axes, low))
                else "above the maximum" if any(r > hi for r, hi in zip(res_axes, high)) else None)
        if side:
            finding = _model_finding(self.path, candidate, "RFA110", res=fmt(res), side=side,
                                     min_res=fmt(low), max_res=fmt(high))
            self.model_findings.append(_noted(finding, note))


def _graph(plain: Mapping[str, Any]) -> EnrichedNetworkNode:
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


def _judged(node: EnrichedNetworkNode) -> bool:
    """A conv or pool with a finite RF; a pool that reads one position per output (AvgPool2d(1),
    an adaptive pool to the size it gets) is no window, whatever its input sees."""
    info = node.layer_info
    if info.kind not in FINDING_KINDS or not node.has_finite_rf:
        return False
    return info.kind != "pool" or any(k > 1 for k in info.effective_kernel)


def _skipped(candidate: Candidate, finding: Finding) -> ModelRecord:
    return ModelRecord(candidate.name, candidate.line, False, finding.code, finding.message)


def _traced_size(plain: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The spatial size the graph was traced at: the input node's output map."""
    nodes = plain.get("nodes") or [{}]
    size = nodes[0].get("map_out")
    return tuple(int(v) for v in size) if size else None


def _fallback_note(res: tuple[int, ...], traced: tuple[int, ...] | None) -> str:
    """What a finding says when the model refused the linted resolution and was traced at
    another: its layers' receptive fields hold, but shape-dependent layers were sized there."""
    if traced is None or broadcast(per_axis(res, 1), traced)[0] == traced:
        return ""
    return f"traced at {fmt(traced)}px: the model refused {fmt(res)}px"


def _noted(finding: Finding, note: str) -> Finding:
    return replace(finding, message=f"{finding.message} ({note})") if note else finding


def _limit_fields(options: Options) -> dict[str, str]:
    return {"seconds": f"{options.limits.timeout:g}", "limit": f"{options.limits.memory_mb} MiB"}


def _site_line(sites: Iterable[Sequence], path: str, handoff_lines: frozenset[int]) -> int | None:
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


def _input_rf(node: EnrichedNetworkNode) -> tuple:
    inputs = [p.rf_min_per_axis for p in node.predecessors] or [(1,)]
    return tuple(min(axis) for axis in zip(*broadcast(*inputs)))


def _verdict_fields(node: EnrichedNetworkNode, res: tuple[int, ...]) -> dict[str, Any]:
    own = node.rf_min_per_axis
    res_axes, own_axes = broadcast(per_axis(res, 1), own)
    names = AXIS_NAMES.get(len(own_axes), tuple(str(i) for i in range(len(own_axes))))
    return {
        "res": fmt(res),
        "input_rf": fmt(_input_rf(node)),
        "own_rf": fmt(own),
        "productive_from": fmt(productive_from(node)),
        "axes": ", ".join(n for n, rf, r in zip(names, own_axes, res_axes) if rf > r),
    }


AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _kernel_fields(
    node: EnrichedNetworkNode, res: tuple[int, ...], feature_map: Sequence[int] | None
) -> tuple[dict[str, Any], tuple]:
    min_res = kernel_fit_from(node)
    return {
        "res": fmt(res),
        "kernel": fmt(node.layer_info.effective_kernel),
        "feature_map": fmt(input_feature_map(node, res, feature_map)),
        "min_res": fmt(min_res),
    }, min_res


def _layer_finding(path: str, line: int, code: str, hits: list[_Hit]) -> Finding:
    """One finding for all instances of a line: named after the instance that needs the most."""
    worst = max(hits, key=lambda h: h.weight)
    name = worst.node.module_paths[0] if worst.node.module_paths else worst.node.name
    layer = f"'{name}'"
    if len({h.model for h in hits}) > 1:
        layer += f" in {worst.model}"
    if len(hits) > 1:
        layer += f" (+{len(hits) - 1} more)"
    fields = dict(worst.fields)
    if code in ("RFA101", "RFA102"):
        fields["productive_from"] = fmt(_max_axes([productive_from(h.node) for h in hits]))
    return _noted(_finding(path, line, 0, code, layer=layer, **fields), worst.note)


def _max_axes(values: list[tuple]) -> tuple:
    return tuple(max(axis) for axis in zip(*broadcast(*values)))


def _unsupported(
    path: str, candidate: Candidate, item: Mapping[str, Any], handoff_lines: frozenset[int]
) -> Finding:
    line = _site_line(item.get("sites", ()), path, handoff_lines) or candidate.line
    paths = item.get("module_paths") or [item.get("type", "?")]
    return _finding(path, line, 0, "RFA905",
                    layer=f"'{paths[0]}'", type=item.get("type", "?"), model=candidate.name)


def _model_finding(path: str, candidate: Candidate, code: str, **fields: Any) -> Finding:
    return _finding(path, candidate.line, candidate.column, code, model=candidate.name, **fields)


def _finding(path: str, line: int, col: int, code: str, **fields: Any) -> Finding:
    return Finding(path, line, col, code, rules.get(code).message.format_map(_Defaults(fields)))


class _Defaults(dict):
    """Template fields a message does not need may be missing; show them as empty."""

    def __missing__(self, key: str) -> str:
        return ""


def fmt(values: Iterable[Any] | Any) -> str:
    """Per-axis numbers as people write them: ``203``, ``7x1``, ``inf``, ``12.5``."""
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    texts = [_number(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"{float(value):.1f}"
    return str(int(value)) if float(value).is_integer() else f"{float(value):.1f}"
