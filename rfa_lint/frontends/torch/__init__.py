"""PyTorch frontend: a live ``nn.Module`` -> plain receptive-field graph data with source sites.

Models are built under :func:`building_context` (weights on the ``meta`` device, the source site
of every module remembered, :mod:`.sites`) and traced by running ``forward`` on a meta tensor at
the lint resolution (:mod:`.trace`).  Layers of the dispatch table (:mod:`.table`) are single
nodes; every other torch call moves or mixes positions as :mod:`.ops` says, on the layouts of
:mod:`.layout`.
"""

from rfa_lint.frontends import TraceError

from .sites import building_context, is_model
from .table import LayerHandler, register_layer_handler
from .trace import create_graph_from_pytorch_model, to_plain

__all__ = [
    "LayerHandler",
    "TraceError",
    "building_context",
    "create_graph_from_pytorch_model",
    "is_model",
    "register_layer_handler",
    "to_plain",
]
