"""Source sites: where each module was built, and building models without weight memory.

Models are built under :func:`building_context`: weights go to the ``meta`` device and every
module remembers the user-code stack of its constructor call, so a linter can point at the line
that built a layer in whichever file it lints.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

import rfa_lint
from rfa_lint.frontends import user_code

Site = tuple[str, int]

_SITES_ATTRIBUTE = "_rfa_lint_sites"  # in the module's __dict__, so deep copies keep it

user_file = user_code(torch, rfa_lint)


def _initialising(frame: Any) -> Any:
    """The object an ``__init__`` frame initialises (None for other frames)."""
    code = frame.f_code
    if code.co_name != "__init__" or not code.co_argcount:
        return None
    return frame.f_locals.get(code.co_varnames[0])


def _in_module_init(frame: Any) -> bool:
    while frame is not None:
        if isinstance(_initialising(frame), nn.Module):
            return True
        frame = frame.f_back
    return False


def user_stack(frame: Any, constructing: nn.Module | None = None) -> tuple[Site, ...]:
    """(file, line) of every user frame from ``frame`` outwards, innermost first."""
    sites = []
    while frame is not None:
        path = user_file(frame.f_code.co_filename)
        if path and (constructing is None or _initialising(frame) is not constructing):
            sites.append((path, frame.f_lineno))
        frame = frame.f_back
    return tuple(sites)


def sites_of(module: nn.Module) -> tuple[Site, ...]:
    return module.__dict__.get(_SITES_ATTRIBUTE, ())


class _MetaWeights(TorchFunctionMode):
    """Tensor factories called while a module is being constructed make meta tensors.

    Only there: a factory function computing layer widths with real tensor values before the
    constructors run (torchvision's RegNet) keeps working, which a global meta device breaks.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (
            func in _FACTORIES
            and kwargs.get("device") is None
            and _in_module_init(sys._getframe(1))
        ):
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


_FACTORIES = _device_constructors()


@contextlib.contextmanager
def building_context() -> Iterator[None]:
    """Build models in here: weights go to the ``meta`` device and every module keeps its site.

    The site of a module is the creation stack of its constructor call in user code (the
    ``self.conv = nn.Conv2d(...)`` line, a call inside ``nn.Sequential(...)``, a helper's
    ``return nn.Conv2d(...)`` and the line calling the helper), so a linter can choose the frame
    in the file it lints.  ``nn.Module.__init__`` is patched only while the context is active.
    """
    original_init = nn.Module.__init__

    @functools.wraps(original_init)
    def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.__dict__[_SITES_ATTRIBUTE] = user_stack(sys._getframe(1), constructing=self)

    nn.Module.__init__ = recording_init
    try:
        with _MetaWeights():
            yield
    finally:
        nn.Module.__init__ = original_init


def is_model(obj: Any) -> bool:
    return isinstance(obj, nn.Module)
