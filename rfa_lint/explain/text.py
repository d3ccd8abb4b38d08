"""The plain-text report: per model a header, the layer table, the waste sentence, suggestions."""

from __future__ import annotations

import textwrap
from typing import Sequence

from rfa_lint.numbers import fmt

from . import Explanation
from .facts import LayerRow, Waste
from .suggest import Suggestion

KIND_HEADINGS = {
    "efficiency": "efficiency: fewer MACs, nothing unproductive",
    "performance": "performance: more layers productive, at a cost",
    "resolution": "resolution: the model unchanged",
}
WIDTH = 100  # prose is wrapped; the table is as wide as its columns
COLUMNS = ("layer", "site", "kind", "kernel", "stride", "dil", "rf min", "rf max", "verdict", "map",
           "params", "MACs")


def report(explanations: Sequence[Explanation]) -> str:
    return "\n".join(model_report(e) for e in explanations)


def model_report(e: Explanation) -> str:
    lines = [f"{e.path}: {e.model} at {fmt(e.resolution)}px "
             f"(productive range {fmt(e.range[0])}-{fmt(e.range[1])}px); "
             f"{quantity(e.params)} parameters, {quantity(e.macs)} MACs per image",
             "", *table(e.layers), "", textwrap.fill(sentence(e.model, e.resolution, e.waste), WIDTH), ""]
    lines += suggestion_lines(e.suggestions)
    return "\n".join(lines) + "\n"


def table(layers: Sequence[LayerRow]) -> list[str]:
    cells = [COLUMNS] + [cells_of(row) for row in layers]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    numeric = {COLUMNS.index(c) for c in ("params", "MACs")}
    return ["  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in cells]


def cells_of(row: LayerRow) -> tuple[str, ...]:
    return (row.path, row.site, row.kind, fmt(row.kernel) if row.kernel else "all", fmt(row.stride),
            fmt(row.dilation), fmt(row.rf_min), fmt(row.rf_max), row.verdict or "-",
            "x".join(map(str, row.map_out)) if row.map_out else "-", quantity(row.params), quantity(row.macs))


def sentence(model: str, resolution: Sequence[int], spent: Waste) -> str:
    """The waste in one sentence a team lead can act on."""
    counts, at = spent.counts, f"{fmt(resolution)}px"
    if not counts["unproductive"] and not counts["critical"]:
        return f"At {at}, every convolution and pooling layer of {model} adds context: nothing is wasted."
    params, macs = spent.params["unproductive"], spent.macs["unproductive"]
    text = (f"At {at}, {counts['unproductive']} of {counts['judged']} convolution and pooling layers of "
            f"{model} are unproductive (their input already sees the whole image): they hold "
            f"{percent(params.fraction)} of its parameters ({quantity(params.amount)} of "
            f"{quantity(params.total)}) and spend {percent(macs.fraction)} of its compute "
            f"({quantity(macs.amount)} of {quantity(macs.total)} MACs per image)")
    if counts["critical"]:
        text += (f"; {counts['critical']} more are critical ({percent(spent.params['critical'].fraction)} "
                 f"of the parameters, {percent(spent.macs['critical'].fraction)} of the compute)")
    return text + ". Remove them, or make them see less (suggestions below)."


def suggestion_lines(suggestions: Sequence[Suggestion]) -> list[str]:
    if not suggestions:
        return ["No suggestion: no edit tried leaves fewer layers unproductive."]
    lines = ["Suggestions, each measured on the edited graph:"]
    kind = None
    for s in suggestions:
        if s.kind != kind:
            kind, number = s.kind, 0
            lines.append(f"  {KIND_HEADINGS[kind]}")
        number += 1
        lines += textwrap.wrap(f"{number}. {s.title}", WIDTH,
                               initial_indent="    ", subsequent_indent="       ")
        lines.append(f"       {outcome(s)}")
        lines += [f"       {line}" for line in s.diff.splitlines()]
        for note in s.by_hand:
            lines += textwrap.wrap(note, WIDTH, initial_indent="       ", subsequent_indent="         ")
    return lines


def outcome(s: Suggestion) -> str:
    saving = f" (saves {percent(1 - s.macs_factor)})" if s.macs_factor < 1 else ""
    return (f"after: {s.unproductive_after} unproductive, {s.critical_after} critical, "
            f"{s.productive_after} productive; MACs x{s.macs_factor:.3g}{saving}")


def percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def quantity(value: int) -> str:
    """``11689512`` -> ``11.7M``; small numbers as they are."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return str(value)
