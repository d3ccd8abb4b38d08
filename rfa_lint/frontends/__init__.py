"""Framework frontends: a live model object -> plain receptive-field graph data.

Each frontend module (``torch``, ``keras``) offers the same six names, which the sandbox child
uses without knowing the framework:

- ``building_context(meta=True)``: a context manager to build models in (no weight memory;
  with ``meta`` False a real build) that records the source site of every layer created inside it;
- ``needs_values(error)``: whether a build or trace failed only for want of weight values (a
  real build may then succeed), and ``image_parts(model)``: the ``(name, part)`` s of a model
  that may take its image, to trace when the whole model needs values (a detector's backbone);
- ``is_model(obj)``: whether ``obj`` is a model of that framework;
- ``to_plain(model, input_shape=None, *, resolution=None, declared=None)``: the model's graph
  as JSON-able data, in the form of :func:`rfa_lint.rf.graph.graph_to_plain` plus an
  ``"unsupported"`` list, traced at ``resolution`` first (per-axis sizes; one size for every
  axis), then at ``declared`` (the model's own input size), then at common sizes; every node
  carries ``map_in`` / ``map_out`` (its traced map sizes) and ``spans_map``; the torch frontend
  also takes ``inputs`` (a forward's other inputs) and ``real`` (trace a model built for real);
- the seed-named ``create_graph_from_*_model`` returning an ``EnrichedNetworkNode``.

Both build their plain graph with :class:`.base.PlainGraph` and describe layers by one handler
signature, :data:`.base.LayerHandler`: ``handler(layer, in_shape, out_shape) -> LayerDefinition``,
where the shapes are the traced spatial sizes of the dims the op runs on (a tuple of ints per
tensor, None where unknown; torch: dims ``2:``, channels first; keras: the dims between batch
and channels), and the ``LayerDefinition`` gives one value per such dim (or one for all).

Adding a layer kind:

- your own layer class, in either framework: ``register_layer_handler(LayerClass, handler)``
  (:func:`.base.register_layer_handler`, also importable from here), e.g. in the model file
  inside ``try: ... except ImportError``.  Its layers become single nodes (nothing inside
  them is traced) and the registration comes before the frontend's own table, subclasses
  included.  The seed's ``rfa_lint.encodings.pytorch.add_custom_layer_handler(class_name,
  ...providers)`` builds such a handler from per-module providers, for the classes named in
  ``custom_layers`` only;
- a built-in kind of torch: an entry of ``LAYER_KINDS`` in :mod:`.torch.table` (a family and,
  for ``spatial``, a handler), plus its functional form in ``FUNCTIONAL_FORMS`` if it has one;
- a built-in kind of keras: an entry of ``_HANDLERS`` in :mod:`.keras`.

Importing this package imports no framework.
"""

from __future__ import annotations

import functools
import os
import sysconfig
from types import ModuleType
from typing import Callable

from rfa_lint.frontends.base import LayerHandler, PlainGraph, Shape, register_layer_handler

__all__ = ["InputsUnknown", "LayerHandler", "PlainGraph", "Shape", "TraceError", "register_layer_handler",
           "user_code"]

_STDLIB = tuple({os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})


class TraceError(RuntimeError):
    """The model's data flow could not be recorded (its forward / call raised at every size)."""


class InputsUnknown(TraceError):
    """A forward input whose shape nothing the model holds says; ``names`` names them."""

    def __init__(self, names: list[str], why: str) -> None:
        super().__init__(why)
        self.names = names


def user_code(*packages: ModuleType) -> Callable[[str], str | None]:
    """A cached test giving the absolute path of a file of user code, or None.

    Files inside ``packages`` (the framework, rfa_lint), the standard library and pseudo files
    (``<frozen ...>``) are not user code; installed third-party packages are, since the linter
    lints their files too (torchvision's models).
    """
    excluded = tuple(os.path.realpath(os.path.dirname(p.__file__)) + os.sep for p in packages)

    @functools.lru_cache(maxsize=None)
    def user_file(filename: str) -> str | None:
        if filename.startswith("<"):
            return None
        real = os.path.realpath(filename)
        if real.startswith(excluded):
            return None
        for root in _STDLIB:  # a system-wide site-packages lies inside the stdlib directory
            if real.startswith(root) and "-packages" + os.sep not in real[len(root):]:
                return None
        return os.path.abspath(filename)

    return user_file
