"""Suggestions: edits of the graph, each measured by analysing the edited graph again.

The candidates are the model's own levers on the receptive field (:mod:`.edits`): each
downsampling step removed, a large stem kernel shrunk, and small combinations of these; and each
downsampling step moved later (to one of the next few steps or plain windows on the main path),
which keeps the final map but puts the layers between on a finer grid.  Each candidate is tried
alone and followed by a cut after the last stage that still has a productive window.  Every
combination is re-analysed (verdict counts) and its MACs recomputed from its own map sizes
(:mod:`.cost`).  Then:

- *efficiency*: nothing unproductive left and fewer MACs; ranked by the compute saved times the
  share of contributing (productive or critical) layers kept;
- *performance*: the whole depth kept (no cut), more layers productive and as few unproductive
  left as any edit achieves; cheapest first;
- *resolution*: the smallest input size with no unproductive layer, the model unchanged.

Only outcomes that no other beats on both counts are shown (more layers kept or productive,
fewer MACs), each with the fewest edits that reach it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

from .cost import remapped, total_macs
from .edits import Edit, Layers, apply, cut, downsamplings, editable, moves, stem
from .facts import Census, built, census

SHOWN = 3  # suggestions shown per kind
MAX_EDITS = 4  # edits combined at most (the seed's performance ResNet takes four)
MAX_COMBINATIONS = 400  # RF edits combined, at most, before each is tried with a cut
MOVE_PLACES = 3  # the places each downsampling is tried at, when moved later
LARGEST_RESOLUTION = 8192  # searched up to here for a size with no unproductive layer


@dataclass(frozen=True)
class Suggestion:
    kind: str  # "efficiency", "performance" or "resolution"
    title: str
    edits: tuple[Edit, ...]
    unproductive_after: int
    critical_after: int
    productive_after: int
    macs_factor: float
    resolution: tuple[int, ...] | None = None  # the size analysed (a resolution suggestion's new one)
    diff: str = field(default="", compare=False)
    by_hand: tuple[str, ...] = field(default=(), compare=False)  # edits --diff cannot write, and why

    def to_json(self) -> dict[str, Any]:
        edits = [e.to_json() for e in self.edits]
        if self.kind == "resolution":
            edits = [{"op": "resolution", "to": list(self.resolution or ())}]
        return {"kind": self.kind, "title": self.title, "edits": edits,
                "unproductive_after": self.unproductive_after, "critical_after": self.critical_after,
                "productive_after": self.productive_after, "macs_factor": round(self.macs_factor, 4),
                "diff": self.diff, "by_hand": list(self.by_hand)}


@dataclass(frozen=True)
class _Measured:
    edits: tuple[Edit, ...]
    found: Census
    macs: int

    @property
    def cut(self) -> bool:
        return any(e.op == "cut" for e in self.edits)


def suggestions(plain: dict[str, Any], resolution: Sequence[int], skip_1x1: bool = False) -> list[Suggestion]:
    """The few suggestions that matter, efficiency first, then performance, then resolution."""
    base = editable(plain)
    layers = built(base)
    before = census(layers, resolution, skip_1x1)
    macs = total_macs(base, resolution) or 1
    combos = _combinations(base, layers)
    measured = [m for combo in combos for m in _measure(base, combo, resolution, skip_1x1)]
    chosen = _efficiency(measured, before, macs) + _performance(measured, before, macs)
    found = _resolution(layers, resolution, skip_1x1, before, base, macs)
    return chosen + ([found] if found else [])


def _combinations(plain: dict[str, Any], layers: Layers) -> list[tuple[Edit, ...]]:
    """Up to :data:`MAX_EDITS` RF edits together (fewer when there are many), none included;
    then each downsampling moved alone to each of its next :data:`MOVE_PLACES` places."""
    steps = downsamplings(layers)
    levers = [e for e in (stem(layers), *steps) if e is not None]
    combos: list[tuple[Edit, ...]] = [()]
    for size in range(1, min(MAX_EDITS, len(levers)) + 1):
        more = list(itertools.combinations(levers, size))
        if len(combos) + len(more) > MAX_COMBINATIONS:
            break
        combos += more
    return combos + [(m,) for m in moves(plain, layers, steps, MOVE_PLACES)]


def _measure(base: dict[str, Any], edits: tuple[Edit, ...], resolution, skip_1x1) -> list[_Measured]:
    """The edited graph measured, then also cut after its last productive block (when it has a
    head to keep and something to cut, and the cut keeps where a downsampling moved to)."""
    edited = remapped(apply(base, edits), resolution)
    layers = built(edited)
    found = census(layers, resolution, skip_1x1)
    result = [_Measured(edits, found, total_macs(edited, resolution))] if edits else []
    shorter = cut(edited, layers, found.productive)
    kept = shorter and {spec["name"] for spec in shorter[0]["nodes"]}
    if shorter is not None and all(name in kept for e in edits for name in e.into):  # a move's landing stays
        edited, edit = shorter
        result.append(_Measured((*edits, edit), census(built(edited), resolution, skip_1x1),
                                total_macs(edited, resolution)))
    return result


def _efficiency(measured: list[_Measured], before: Census, macs: int) -> list[Suggestion]:
    """Nothing unproductive, fewer MACs; ranked by the share of compute saved times the share of
    contributing layers (productive or critical) kept, so that neither gutting the network nor
    saving little comes first."""
    fit = _front([m for m in measured if m.found.unproductive == 0 and m.macs < macs], _contributing)
    base = max(_contributing(before), 1)
    fit.sort(key=lambda m: (-(1 - m.macs / macs) * _contributing(m.found) / base, len(m.edits)))
    return [_suggestion("efficiency", m, macs) for m in fit[:SHOWN]]


def _performance(measured: list[_Measured], before: Census, macs: int) -> list[Suggestion]:
    """The whole depth kept (no cut), more layers productive, the fewest unproductive left;
    cheapest first."""
    kept = [m for m in measured if not m.cut and len(m.found.productive) > len(before.productive)]
    least = min((m.found.unproductive for m in kept), default=0)
    fewest = [m for m in kept if m.found.unproductive == least]
    fit = _front(fewest, lambda found: len(found.productive))
    fit.sort(key=lambda m: (m.macs, len(m.edits)))
    return [_suggestion("performance", m, macs) for m in fit[:SHOWN]]


def _contributing(found: Census) -> int:
    return len(found.productive) + found.critical


def _front(measured: list[_Measured], gain) -> list[_Measured]:
    """The outcomes no other beats on both ``gain`` and MACs, each with the fewest edits."""
    best: dict[tuple, _Measured] = {}
    for m in sorted(measured, key=lambda m: len(m.edits)):
        best.setdefault((gain(m.found), m.macs, m.found.critical), m)
    return [m for m in best.values()
            if not any(gain(o.found) >= gain(m.found) and o.macs <= m.macs and (gain(o.found), o.macs)
                       != (gain(m.found), m.macs) for o in best.values())]


def _suggestion(kind: str, m: _Measured, macs: int) -> Suggestion:
    return Suggestion(kind, "; ".join(e.title for e in m.edits), m.edits, m.found.unproductive,
                      m.found.critical, len(m.found.productive), m.macs / macs)


def _resolution(layers: Layers, resolution: Sequence[int], skip_1x1: bool, before: Census,
                plain: dict[str, Any], macs: int) -> Suggestion | None:
    """The smallest size, every side at least ``resolution``'s, with no unproductive layer
    (being unproductive stops for good as the size grows, so a bisection finds it)."""
    if before.unproductive == 0:
        return None

    def at(side: int) -> tuple[int, ...]:
        return tuple(max(r, side) for r in resolution)

    def clean(side: int) -> bool:
        return census(layers, at(side), skip_1x1).unproductive == 0

    low, high = max(resolution), LARGEST_RESOLUTION
    if not clean(high):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if clean(middle) else (middle, high)
    size = at(high)
    found = census(layers, size, skip_1x1)
    shown = "x".join(map(str, size)) if len(set(size)) > 1 else str(size[0])
    return Suggestion("resolution", f"train at {shown}px: the smallest input with no unproductive layer",
                      (), 0, found.critical, len(found.productive), total_macs(plain, size) / macs, size)
