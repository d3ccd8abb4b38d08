"""rfa-lint: receptive-field analysis of neural-network models, as a linter.

The public API keeps the seed library's names, call shapes and defaults (``rfa_lint.graphs``,
``rfa_lint.utils.graph_utils``, ``rfa_lint.architectures``, ``rfa_lint.encodings``).  Framework
frontends and the picture renderer load on first use, so ``import rfa_lint`` imports neither
torch nor tensorflow.
"""

from importlib import import_module
from typing import Any

from rfa_lint.rf import EnrichedNetworkNode, LayerDefinition
from rfa_lint.utils.graph_utils import input_resolution_range

__version__ = "0.1.0"

_LAZY = {
    "create_graph_from_pytorch_model": "rfa_lint.frontends.torch",
    "create_graph_from_tensorflow_model": "rfa_lint.frontends.keras",
    "visualize_architecture": "rfa_lint.render",
}

__all__ = [
    "EnrichedNetworkNode",
    "LayerDefinition",
    "input_resolution_range",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rfa_lint' has no attribute {name!r}")
