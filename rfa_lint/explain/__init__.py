"""``rfa-lint explain``: where a model's parameters and compute go to waste at a resolution, and
which edits of its architecture fix it, each measured on the edited graph.

The models come from the linter's own pipeline (:func:`rfa_lint.lint.analyse_file`: the same
discovery, sandbox and cache), as the plain graphs of the models it analysed.  This package only
reads them:

- :mod:`.facts`: per layer its row (RF, verdict, map size, parameters, MACs); the waste;
- :mod:`.cost`: map sizes and MACs of a graph at a resolution, edited or not;
- :mod:`.edits` / :mod:`.suggest`: what-if edits and the suggestions they make;
- :mod:`.diff`: the suggestion as a unified diff of the user's file, where it is literal;
- :mod:`.text`, :mod:`.page` (HTML, with :mod:`.chart`): the reports; :meth:`Explanation.to_json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from rfa_lint.cache import Cache
from rfa_lint.lint import analyse_file
from rfa_lint.results import ModelRecord
from rfa_lint.rf import input_resolution_range
from rfa_lint.settings import Options

from .cost import node_macs
from .facts import LayerRow, Waste, built, census, model_params, rows, waste
from .suggest import Suggestion, suggestions


@dataclass(frozen=True)
class Explanation:
    """One analysed model at a resolution."""

    path: str
    model: str
    resolution: tuple[int, ...]
    range: tuple[tuple, tuple]  # (min per axis, max per axis) of the productive range
    layers: list[LayerRow]
    waste: Waste
    params: int
    macs: int
    suggestions: list[Suggestion]
    plain: dict[str, Any] = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "model": self.model, "resolution": list(self.resolution),
            "range": [_number_list(self.range[0]), _number_list(self.range[1])],
            "params": self.params, "macs": self.macs,
            "layers": [_row_json(row) for row in self.layers],
            "waste": self.waste.to_json(),
            "suggestions": [s.to_json() for s in self.suggestions],
        }


def explain_plain(path: str, model: str, plain: dict[str, Any], options: Options,
                  root: str | os.PathLike | None = None) -> Explanation:
    """The explanation of one model's plain graph at the options' resolution."""
    res, skip_1x1 = options.resolution, options.filter_kernel_size_1
    layers = built(plain)
    found = census(layers, res, skip_1x1)
    table = rows(plain, layers, found, res, root)
    spent = waste(plain, layers, found, res)
    low, high = input_resolution_range(layers[plain["output"]], filter_kernel_size_1=skip_1x1)
    return Explanation(path, model, tuple(res), (tuple(low), tuple(high)), table, spent,
                       model_params(plain), sum(node_macs(plain, res)),
                       suggestions(plain, res, skip_1x1), plain)


def explain_file(path: str, options: Options, model: str | None = None, cache: Cache | None = None,
                 root: str | os.PathLike | None = None) -> tuple[list[Explanation], list[ModelRecord]]:
    """The explanations of a file's analysed models (only ``model``, when named), and the
    records of all its models (those skipped say why)."""
    analysis = analyse_file(path, options, noqa=True, cache=cache)
    explained = [explain_plain(path, name, plain, options, root)
                 for name, plain in analysis.graphs.items() if model in (None, name)]
    return explained, analysis.models


def with_diffs(explanation: Explanation, text: str) -> Explanation:
    """The explanation with each suggestion's diff of the user's file (where it is literal) and
    what is left to do by hand."""
    from .diff import suggestion_patch  # libcst loads only when diffs are asked for

    patches = [suggestion_patch(explanation.path, text, explanation.plain, s.edits)
               for s in explanation.suggestions]
    edited = [replace(s, diff=p.diff, by_hand=p.by_hand) for s, p in zip(explanation.suggestions, patches)]
    return replace(explanation, suggestions=edited)


def render(explanations: Sequence[Explanation], output_format: str) -> str:
    """The report in ``text``, ``json`` (a list, one object per model) or ``html``."""
    if output_format == "json":
        return json.dumps([e.to_json() for e in explanations], indent=1) + "\n"
    if output_format == "html":
        from .page import page  # matplotlib and graphviz load only for the page
        return page(explanations)
    from .text import report
    return report(explanations)


def _row_json(row: LayerRow) -> dict[str, Any]:
    return {"path": row.path, "site": row.site, "kind": row.kind,
            "kernel": _number_list(row.kernel), "stride": _number_list(row.stride),
            "dilation": _number_list(row.dilation), "rf_min": _number_list(row.rf_min),
            "rf_max": _number_list(row.rf_max), "verdict": row.verdict,
            "map_out": list(row.map_out) if row.map_out else None, "params": row.params, "macs": row.macs}


def _number_list(values: Sequence | None) -> list | None:
    """Per-axis numbers for strict JSON: an infinite one is null, a fraction a float."""
    if values is None:
        return None
    return [None if v == float("inf") else int(v) if float(v).is_integer() else float(v) for v in values]
