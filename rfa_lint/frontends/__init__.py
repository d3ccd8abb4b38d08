"""Framework frontends: a live model object -> plain receptive-field graph data.

Each frontend module (``torch``, ``keras``) offers the same four names, which the sandbox child
uses without knowing the framework:

- ``building_context()``: a context manager to build models in (no weight memory) that records
  the source site of every layer created inside it;
- ``is_model(obj)``: whether ``obj`` is a model of that framework;
- ``to_plain(model, input_shape=None, *, resolution=None, declared=None)``: the model's graph
  as JSON-able data, in the form of :func:`rfa_lint.rf.graph.graph_to_plain` plus an
  ``"unsupported"`` list, traced at ``resolution`` first (per-axis sizes; one size for every
  axis), then at ``declared`` (the model's own input size), then at common sizes; every node
  carries ``map_in`` / ``map_out`` (its traced map sizes) and ``spans_map``;
- the seed-named ``create_graph_from_*_model`` returning an ``EnrichedNetworkNode``.

Importing this package imports no framework.
"""

from __future__ import annotations

import functools
import os
import sysconfig
from types import ModuleType
from typing import Callable

_STDLIB = tuple({os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})


class TraceError(RuntimeError):
    """The model's data flow could not be recorded (its forward / call raised at every size)."""


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
