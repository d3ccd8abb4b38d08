"""What a model is at a resolution: each layer's row, the verdict counts, and the waste.

Layers are judged as the linter judges them (:func:`rfa_lint.rf.analysis.judged`: convolutions and
pooling windows with a finite receptive field), so ``explain`` and ``check`` count the same
layers.  Parameters are counted once per module, however often it is called; the model's total
is every parameter it has (:func:`model_params`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rfa_lint import notebook
from rfa_lint.rf import EnrichedNetworkNode, Kind, Verdict, classify, graph_from_plain
from rfa_lint.rf.analysis import judged

from .cost import Map, node_macs, node_maps

#: The layer kinds a table row is given to: those that read positions or hold the weights.
ROW_KINDS = (Kind.CONV, Kind.POOL, Kind.DENSE, Kind.GLOBAL, Kind.ATTENTION, Kind.RESIZE)


def built(plain: dict[str, Any]) -> list[EnrichedNetworkNode]:
    """The plain graph's nodes, built, in its order."""
    index = {spec["name"]: i for i, spec in enumerate(plain["nodes"])}
    nodes = graph_from_plain(plain).all_layers
    return sorted(nodes, key=lambda n: index[n.name])


@dataclass(frozen=True)
class Census:
    """The verdicts of the judged layers at a resolution."""

    verdicts: dict[int, Verdict]  # node index -> verdict, judged layers only

    def count(self, verdict: Verdict) -> int:
        return sum(v is verdict for v in self.verdicts.values())

    @property
    def unproductive(self) -> int:
        return self.count(Verdict.UNPRODUCTIVE)

    @property
    def critical(self) -> int:
        return self.count(Verdict.CRITICAL)

    @property
    def productive(self) -> set[int]:
        return {i for i, v in self.verdicts.items() if v is Verdict.PRODUCTIVE}


def census(layers: Sequence[EnrichedNetworkNode], resolution: Sequence[int],
           skip_1x1: bool = False) -> Census:
    """Verdicts at ``resolution``; with ``skip_1x1`` (the linter's filter-kernel-size-1), 1x1
    layers are not judged."""
    return Census({
        i: classify(node, resolution, skip_1x1)
        for i, node in enumerate(layers)
        if judged(node) and not (skip_1x1 and all(k == 1 for k in node.layer_info.kernel))
    })


@dataclass(frozen=True)
class LayerRow:
    """One row of the layer table."""

    path: str
    site: str
    kind: Kind
    kernel: tuple | None
    stride: tuple
    dilation: tuple
    rf_min: tuple
    rf_max: tuple
    verdict: str | None  # None: not judged (heads, resizes)
    map_out: Map | None
    params: int
    macs: int


def rows(plain: dict[str, Any], layers: Sequence[EnrichedNetworkNode], found: Census,
         resolution: Sequence[int], root: str | os.PathLike | None = None) -> list[LayerRow]:
    """The table: one row per layer of :data:`ROW_KINDS`, in execution order."""
    maps, macs = node_maps(plain, resolution), node_macs(plain, resolution)
    table = []
    for i, (spec, node) in enumerate(zip(plain["nodes"], layers)):
        layer = node.layer_info
        if layer.kind not in ROW_KINDS:
            continue
        verdict = found.verdicts.get(i)
        table.append(LayerRow(
            path=name_of(node), site=site_of(node, root), kind=layer.kind,
            kernel=None if layer.is_infinite else layer.kernel, stride=layer.stride,
            dilation=tuple(layer.dilation) if isinstance(layer.dilation, tuple) else (layer.dilation,),
            rf_min=node.rf_min_per_axis, rf_max=node.rf_max_per_axis,
            verdict=verdict.name.lower() if verdict else None, map_out=maps[i],
            params=spec.get("params", 0), macs=macs[i],
        ))
    return table


def name_of(node: EnrichedNetworkNode) -> str:
    return node.module_paths[0] if node.module_paths else node.name


def site_of(node: EnrichedNetworkNode, root: str | os.PathLike | None = None) -> str:
    """``file:line`` of the call that built the layer (innermost), the file relative to ``root``
    when under it, else its name; in a notebook ``file:cell N:line``."""
    if not node.sites:
        return ""
    path, line = node.sites[0]
    target, base = Path(path).resolve(), Path(root or os.getcwd()).resolve()
    shown = target.relative_to(base).as_posix() if target.is_relative_to(base) else target.name
    return notebook.site(shown, path, line)


@dataclass(frozen=True)
class Share:
    """Part of a total: ``amount`` of ``total``."""

    amount: int
    total: int

    @property
    def fraction(self) -> float:
        return self.amount / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "total": self.total, "share": round(self.fraction, 4)}


@dataclass(frozen=True)
class Waste:
    """Parameters and MACs in unproductive and in critical layers."""

    params: dict[str, Share]  # "unproductive" / "critical" -> share
    macs: dict[str, Share]
    counts: dict[str, int]  # "unproductive" / "critical" / "judged" -> layers

    def to_json(self) -> dict[str, Any]:
        return {"params": {k: v.to_json() for k, v in self.params.items()},
                "macs": {k: v.to_json() for k, v in self.macs.items()},
                "layers": dict(self.counts)}


def model_params(plain: dict[str, Any]) -> int:
    """Every weight of the model, as its frontend counted them where it was built (class tokens
    and position embeddings included); for a graph without that count, its layers' weights,
    each module once."""
    if plain.get("params") is not None:
        return int(plain["params"])
    owners = {tuple(spec.get("module_paths") or ()) or (spec["name"],): spec.get("params", 0)
              for spec in plain["nodes"]}
    return sum(owners.values())


WASTED = {"unproductive": Verdict.UNPRODUCTIVE, "critical": Verdict.CRITICAL}


def waste(plain: dict[str, Any], layers: Sequence[EnrichedNetworkNode], found: Census,
          resolution: Sequence[int]) -> Waste:
    """Shares of the model's parameters and MACs (at ``resolution``) in unproductive and in
    critical layers.  A module called several times counts its parameters once, under the
    worse verdict of its calls."""
    macs = node_macs(plain, resolution)
    owners: dict[tuple, tuple[int, int]] = {}  # module -> (params, 0 / 1 critical / 2 unproductive)
    for i, (spec, node) in enumerate(zip(plain["nodes"], layers)):
        key = tuple(node.module_paths) or (node.name,)
        severity = {Verdict.UNPRODUCTIVE: 2, Verdict.CRITICAL: 1}.get(found.verdicts.get(i), 0)
        params, known = spec.get("params", 0), owners.get(key, (0, 0))
        owners[key] = (max(params, known[0]), max(severity, known[1]))
    total_params, total_macs = model_params(plain), sum(macs)
    param_shares, mac_shares = {}, {}
    for word, verdict in WASTED.items():
        severity = 2 if verdict is Verdict.UNPRODUCTIVE else 1
        param_shares[word] = Share(sum(p for p, s in owners.values() if s == severity), total_params)
        mac_shares[word] = Share(sum(macs[i] for i, v in found.verdicts.items() if v is verdict), total_macs)
    counts = {"unproductive": found.unproductive, "critical": found.critical, "judged": len(found.verdicts)}
    return Waste(param_shares, mac_shares, counts)
