"""Building models without weight memory, and without breaking the Python around the weights.

The technique of accelerate's ``init_empty_weights``: a parameter goes to the ``meta`` device as
it is registered, every other tensor stays real.  So a constructor that computes with tensors
(stochastic depth's ``[x.item() for x in torch.linspace(0, rate, depth)]``, YOLO's anchor
checks ``if (a[-1] - a[0]).sign() != ...``, ``torch.nonzero`` on a mask) runs as it would
normally.  Two refinements keep the memory off:

- a tensor factory called inside a module's ``__init__`` makes a meta tensor when its values
  cannot matter (``torch.empty``) or when it is weight-sized (:data:`WEIGHT_SIZED` elements):
  a layer's weight is never allocated just to be moved;
- a call that meets real and meta tensors (a constructor running ``self.forward`` on a real
  probe image to learn its strides) runs on meta copies of the real ones.

A constructor that reads the values of a meta weight still fails; the sandbox child then builds
the model for real (:func:`building(meta=False) <building>`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import sys
from typing import Any, Iterator

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._pytree import tree_map

from rfa_lint.frontends import TraceError

#: Elements from which a tensor made in a module's ``__init__`` is taken as a weight (4 MiB of
#: float32): larger than any table of per-layer rates, anchors or indices a constructor reads.
WEIGHT_SIZED = 2**20

_FACTORIES = _device_constructors()
_UNINITIALISED = {torch.empty, torch.empty_strided}
#: factories whose arguments are the size of the tensor they make
_SIZED = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn}


def initialising(frame: Any) -> Any:
    """The object an ``__init__`` frame initialises (None for other frames)."""
    code = frame.f_code
    if code.co_name != "__init__" or not code.co_argcount:
        return None
    return frame.f_locals.get(code.co_varnames[0])


def _in_module_init(frame: Any) -> bool:
    while frame is not None:
        if isinstance(initialising(frame), nn.Module):
            return True
        frame = frame.f_back
    return False


def _elements(func: Any, args: tuple, kwargs: dict) -> int:
    """The number of elements a factory call of :data:`_SIZED` asks for (0 for other factories:
    ``torch.tensor(data)``, ``linspace``, whose sizes come from data)."""
    if func not in _SIZED:
        return 0
    size = kwargs.get("size", args[0] if args else None)
    if isinstance(size, (tuple, list, torch.Size)):
        dims = size
    else:
        dims = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        if len(dims) != len(args):
            return 0
    try:
        return math.prod(int(d) for d in dims)
    except (TypeError, ValueError):
        return 0


def _mixed(args: tuple, kwargs: dict) -> bool:
    """Whether a call's arguments (and the lists among them) hold real and meta tensors both.

    Read shallowly, not by ``tree_flatten``: this runs on every torch call of a build."""
    devices = set()
    for value in (*args, *kwargs.values()):
        for leaf in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(leaf, Tensor):
                devices.add(leaf.is_meta)
    return len(devices) == 2


def _as_meta(leaf: Any) -> Any:
    return leaf.detach().to("meta") if isinstance(leaf, Tensor) and not leaf.is_meta else leaf


class _WeightsOnMeta(TorchFunctionMode):
    """Weight-sized and uninitialised tensors made in a module's ``__init__`` are meta; calls
    that meet real and meta tensors run on meta copies (see the module docstring)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FACTORIES:
            if kwargs.get("device") is None and self._weight(func, args, kwargs):
                kwargs["device"] = "meta"
            return func(*args, **kwargs)
        if _mixed(args, kwargs):
            args, kwargs = tree_map(_as_meta, (args, kwargs))
        return func(*args, **kwargs)

    @staticmethod
    def _weight(func, args: tuple, kwargs: dict) -> bool:
        sized = func in _UNINITIALISED or _elements(func, args, kwargs) >= WEIGHT_SIZED
        return sized and _in_module_init(sys._getframe(2))


def _registering_on_meta(register: Any) -> Any:
    """``nn.Module.register_parameter`` that moves the parameter to meta (keeping its class,
    ``requires_grad`` and attributes), as accelerate does."""

    @functools.wraps(register)
    def register_parameter(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        param = module._parameters.get(name)
        if param is not None and not param.is_meta and not is_lazy(param):
            attributes = dict(param.__dict__)
            moved = type(param)(param.detach().to("meta"), requires_grad=param.requires_grad)
            moved.__dict__.update(attributes)
            module._parameters[name] = moved

    return register_parameter


@contextlib.contextmanager
def building(meta: bool = True) -> Iterator[None]:
    """Build models in here with their parameters on ``meta`` (nothing changes when not
    ``meta``: a real build, under the sandbox's memory limit)."""
    if not meta:
        yield
        return
    original = nn.Module.register_parameter
    nn.Module.register_parameter = _registering_on_meta(original)
    try:
        with _WeightsOnMeta():
            yield
    finally:
        nn.Module.register_parameter = original


_META_WORDS = re.compile(r"\bmeta\b|_meta|meta_", re.IGNORECASE)


def needs_values(error: BaseException) -> bool:
    """Whether ``error`` (or an error it came from) is torch refusing to read a meta tensor's
    values: ``.item()``, ``nonzero``, an op without a meta kernel, a meta-CPU mismatch.  A real
    build may then succeed."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # a TraceError's own words name the meta tensor it traced on: only its cause counts
        if not isinstance(current, TraceError) and _META_WORDS.search(str(current)):
            return True
        current = current.__cause__  # not __context__: what was being handled when it was raised
    return False
