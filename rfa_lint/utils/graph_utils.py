"""The seed library's ``rfa_toolbox.utils.graph_utils``: its helpers, on rfa-lint's RF core.

The verdicts are :func:`rfa_lint.rf.analysis.classify`'s, so these lists agree with the
linter's findings; where the seed's own numbers are off, docs/seed-differences.md says how.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from rfa_lint.rf import analysis
from rfa_lint.rf.analysis import Verdict, classify
from rfa_lint.rf.graph import EnrichedNetworkNode, Number, public

Nodes = list[EnrichedNetworkNode]


def obtain_all_nodes(output_node: EnrichedNetworkNode) -> Nodes:
    """Every node of the graph of ``output_node`` (any node will do), in creation order."""
    return list(output_node.all_layers)


def filters_non_convolutional_node(nodes: Sequence[EnrichedNetworkNode]) -> Nodes:
    """The nodes of the feature extractor: those whose minimum RF is finite on every axis
    (dense heads and everything after a global pooling see the whole input)."""
    return [node for node in nodes if node.has_finite_rf]


def filters_non_infinite_rf_sizes(rf_sizes: Sequence[Any]) -> list[Any]:
    """The RF sizes (scalars or per-axis tuples) with no infinite axis."""
    return [size for size in rf_sizes if not any(math.isinf(v) for v in _axes(size))]


def filter_layers_not_expanding_receptive_field(nodes: Sequence[EnrichedNetworkNode]) -> Nodes:
    """The nodes whose kernel grows the RF: drops kernels that are 1, or infinite, everywhere."""
    return [
        node for node in nodes
        if not all(k == 1 for k in node.layer_info.kernel)
        and not all(math.isinf(k) for k in node.layer_info.kernel)
    ]


def obtain_border_layers(
    output_node: EnrichedNetworkNode, input_resolution: Any, filter_dense: bool = True
) -> Nodes:
    """The layers unproductive at ``input_resolution`` (:meth:`EnrichedNetworkNode.is_border`);
    ``filter_dense`` leaves out those that see the whole input."""
    nodes = [node for node in output_node.all_layers if node.is_border(input_resolution)]
    return filters_non_convolutional_node(nodes) if filter_dense else nodes


def obtain_all_critical_layers(
    output_node: EnrichedNetworkNode, input_resolution: Any, filter_dense: bool = True
) -> Nodes:
    """The layers whose minimum RF exceeds ``input_resolution`` on every axis (critical, and the
    unproductive ones among them); ``filter_dense`` leaves out those that see the whole input."""
    nodes = [
        node for node in output_node.all_layers
        if classify(node, input_resolution) in (Verdict.CRITICAL, Verdict.UNPRODUCTIVE)
    ]
    return filters_non_convolutional_node(nodes) if filter_dense else nodes


def unproductive_resolution(node: EnrichedNetworkNode) -> Any:
    """The largest resolution at which the layer is still unproductive, per axis:
    one less than :func:`rfa_lint.rf.analysis.unproductive_below`."""
    return public(tuple(v - 1 for v in analysis.unproductive_below(node)))


def find_smallest_resolution_with_no_unproductive_layer(graph: EnrichedNetworkNode) -> tuple[Number, ...]:
    """Per axis, the smallest resolution at which no layer with a window is unproductive."""
    return analysis.input_resolution_range(graph, lower_bound=True)[0]


def input_resolution_range(
    graph: EnrichedNetworkNode,
    filter_all_inf_rf: bool = True,
    filter_kernel_size_1: bool = False,
    cardinality: int | None = 2,
    lower_bound: bool = False,
    kernel_fit: bool = False,
) -> tuple[tuple[Number, ...], tuple[Number, ...]]:
    """The seed's call and defaults: :func:`rfa_lint.rf.analysis.input_resolution_range`
    reported on two axes unless ``cardinality`` says otherwise (None: the graph's own)."""
    return analysis.input_resolution_range(
        graph, filter_all_inf_rf, filter_kernel_size_1, cardinality, lower_bound, kernel_fit
    )


def _axes(size: Any) -> tuple:
    return tuple(size) if isinstance(size, (tuple, list)) else (size,)
