"""The seed's ``rfa_toolbox.encodings.pytorch``: custom layer handlers, on rfa-lint's table."""

from __future__ import annotations

import warnings
from typing import Any, Callable

from torch import nn

from rfa_lint.frontends.base import Shape
from rfa_lint.frontends.torch import create_graph_from_pytorch_model
from rfa_lint.frontends.torch.table import NAMED_HANDLERS
from rfa_lint.rf.graph import LayerDefinition

__all__ = ["add_custom_layer_handler", "create_graph_from_pytorch_model", "toggle_coerce_torch_functional"]


def add_custom_layer_handler(
    class_name: str,
    name_handler: Callable[[nn.Module, str], str] = lambda module, name: name,
    kernel_size_provider: Callable[[nn.Module], Any] = lambda module: 1,
    stride_size_provider: Callable[[nn.Module], Any] = lambda module: 1,
    filters_provider: Callable[[nn.Module], int | None] = lambda module: None,
    units_provider: Callable[[nn.Module], int | None] = lambda module: None,
) -> None:
    """Describe the modules of class ``class_name`` by these providers (the seed's call).

    The handler applies where the class is named in ``create_graph_from_pytorch_model``'s
    ``custom_layers``; its modules are then single layers, nothing inside them traced.  For a
    class you can import, ``rfa_lint.frontends.register_layer_handler`` applies always.
    """

    def handler(module: nn.Module, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
        return LayerDefinition(
            name_handler(module, class_name),
            kernel_size=kernel_size_provider(module),
            stride_size=stride_size_provider(module),
            filters=filters_provider(module),
            units=units_provider(module),
        )

    NAMED_HANDLERS[class_name] = handler


def toggle_coerce_torch_functional(
    coerce: bool = True, kernel_size: int = 1, stride_size: int = 1, handler_idx: int = -2
) -> None:
    """Does nothing (deprecated in the seed too): functional calls are traced with their own
    kernel and stride (``F.max_pool2d(x, 3, 2)`` is a 3x3/2 pool), so nothing is coerced."""
    warnings.warn(
        "toggle_coerce_torch_functional is no longer needed: rfa-lint traces functional calls "
        "with their own kernel and stride",
        DeprecationWarning,
        stacklevel=2,
    )
