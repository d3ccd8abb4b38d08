"""The seed's ``Digraph``: a model on its way to an RF graph (``to_graph``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

from torch import nn

from rfa_lint.frontends.torch import create_graph_from_pytorch_model
from rfa_lint.rf.graph import EnrichedNetworkNode, InfoFilter


@dataclass
class Digraph:
    """The model ``ref_mod`` with the seed's options: its RF filter and custom layer classes.

    Squeeze-and-excitation modules are traced into (the seed's ``make_graph`` shows them too).
    """

    ref_mod: nn.Module
    filter_rf: str | InfoFilter | None = None
    custom_layers: tuple[str, ...] = ()

    def to_graph(self) -> EnrichedNetworkNode:
        """The output node of the model's graph; warns about nodes cut off from the rest."""
        graph = create_graph_from_pytorch_model(
            self.ref_mod, self.filter_rf, custom_layers=self.custom_layers, display_se_modules=True
        )
        self._check_for_lone_node({node.name: node for node in graph.all_layers})
        return graph

    @staticmethod
    def _check_for_lone_node(nodes: Mapping[str, EnrichedNetworkNode]) -> None:
        """Warn about each node with neither predecessors nor successors: control flow that
        skipped the layer's computation leaves such a node."""
        for node in nodes.values():
            if not node.predecessors and not node.successors:
                warnings.warn(
                    f"layer {node.layer_info.name!r} ({node.name}) has no predecessors and no "
                    "successors: control flow may have skipped its computation",
                    UserWarning,
                    stacklevel=3,
                )
