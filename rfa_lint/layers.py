"""What one layer of an analysed model is at a resolution: for editors' hovers.

A finding says what is wrong; a hover says what a layer *is* (its receptive field, its verdict,
the range of resolutions its model uses fully), whatever the verdict.  Everything here comes
from an analysis's plain graphs, so a cached analysis answers as well as a fresh one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from rfa_lint.numbers import fmt
from rfa_lint.rf import classify, graph_from_plain, input_resolution_range
from rfa_lint.rf.analysis import Verdict, judged, productive_from

VERDICT_WORDS = {
    Verdict.PRODUCTIVE: "productive",
    Verdict.BORDER: "border case: past the image on some axes",
    Verdict.CRITICAL: "critical: the last layer that adds context",
    Verdict.UNPRODUCTIVE: "unproductive: its input already sees the whole image",
}


@dataclass(frozen=True)
class LayerFacts:
    model: str
    module_paths: tuple[str, ...]
    kind: str | None
    kernel: tuple
    stride: tuple
    rf_min: tuple
    rf_max: tuple
    verdict: Verdict
    productive_from: tuple
    resolution: tuple[int, ...]
    model_range: tuple[tuple, tuple]

    def markdown(self) -> str:
        """A hover's text: the layer, then its numbers, one per line."""
        name = ", ".join(f"`{p}`" for p in self.module_paths) or "(unnamed layer)"
        low, high = self.model_range
        return "\n".join([
            f"**{name}** ({self.kind}, kernel {fmt(self.kernel)}, stride {fmt(self.stride)}) "
            f"in `{self.model}`",
            "",
            f"- receptive field (RF): min {fmt(self.rf_min)}, max {fmt(self.rf_max)} px",
            f"- at {fmt(self.resolution)} px: {VERDICT_WORDS[self.verdict]}",
            f"- this layer is productive from {fmt(self.productive_from)} px",
            f"- `{self.model}` uses resolutions from {fmt(low)} to {fmt(high)} px fully",
        ])


def on_line(graphs: Mapping[str, dict], path: str, line: int, resolution: Sequence[int],
            filter_kernel_size_1: bool = False) -> list[LayerFacts]:
    """The layers of the analysed models that were built at ``path:line``."""
    target = os.path.abspath(path)
    found = []
    for model, plain in graphs.items():
        graph = graph_from_plain(plain)
        here = [node for node in graph.all_layers
                if judged(node) and any(os.path.abspath(f) == target and n == line for f, n in node.sites)]
        if not here:
            continue
        model_range = input_resolution_range(graph, filter_kernel_size_1=filter_kernel_size_1)
        found += [LayerFacts(model, node.module_paths, node.layer_info.kind, node.layer_info.kernel,
                             node.layer_info.stride, node.rf_min_per_axis, node.rf_max_per_axis,
                             classify(node, resolution, filter_kernel_size_1), productive_from(node),
                             tuple(resolution), model_range)
                  for node in here]
    return found
