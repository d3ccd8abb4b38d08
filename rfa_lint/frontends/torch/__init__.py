"""PyTorch frontend: a live ``nn.Module`` -> plain receptive-field graph data with source sites.

Models are built under :func:`building_context` (parameters on the ``meta`` device, every other
tensor real, :mod:`.weights`; the source site of every module remembered, :mod:`.sites`) and
traced by running ``forward`` on a meta tensor at the lint resolution (:mod:`.trace`).  Layers
of the dispatch table (:mod:`.table`) and classes registered with
:func:`rfa_lint.frontends.register_layer_handler` are single nodes; every other torch call
moves or mixes positions as :mod:`.ops` says, on the layouts of :mod:`.layout`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from torch import nn

from rfa_lint.frontends import TraceError
from rfa_lint.frontends.base import LayerHandler, register_layer_handler
from rfa_lint.rf.graph import EnrichedNetworkNode, InfoFilter, filter_from, graph_from_plain

from .sites import building_context, is_model
from .table import opaque_layers
from .trace import image_parts, to_plain
from .weights import needs_values

__all__ = [
    "LayerHandler",
    "TraceError",
    "building_context",
    "create_graph_from_pytorch_model",
    "image_parts",
    "is_model",
    "needs_values",
    "register_layer_handler",
    "to_plain",
]


def create_graph_from_pytorch_model(
    model: nn.Module,
    filter_rf: str | InfoFilter | None = None,
    input_res: int | Sequence[int] = 224,
    custom_layers: Iterable[str] | None = None,
    display_se_modules: bool = False,
    input_shape: Sequence[int] | None = None,
) -> EnrichedNetworkNode:
    """The seed's entry point, with its arguments in its order: the output node of the graph.

    ``filter_rf`` is the seed's RF filter for every node (``"inf"``, None, or a function).
    ``input_res`` is the first size tried; the seed's full shape ``(1, 3, 399, 399)`` is taken
    as ``input_shape``.  ``custom_layers`` names module classes to take as single layers,
    described by their handler (``rfa_lint.encodings.pytorch.add_custom_layer_handler``) or
    else as acting per position; unless ``display_se_modules``, torchvision's
    ``SqueezeExcitation`` is one such layer, so its global context stays out of the RF sizes.
    """
    if not isinstance(input_res, int):
        input_shape, input_res = input_shape or tuple(input_res), 224
    opaque = set(custom_layers or ()) | (set() if display_se_modules else {"SqueezeExcitation"})
    with opaque_layers(model, opaque):
        plain = to_plain(model, input_shape, input_res=input_res)
    return graph_from_plain(plain, filter_from(filter_rf))
