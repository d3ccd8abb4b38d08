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

import rfa_lint
from rfa_lint.frontends import user_code

from .weights import initialising, building

Site = tuple[str, int]

_SITES_ATTRIBUTE = "_rfa_lint_sites"  # in the module's __dict__, so deep copies keep it

user_file = user_code(torch, rfa_lint)


def user_stack(frame: Any, constructing: nn.Module | None = None) -> tuple[Site, ...]:
    """(file, line) of every user frame from ``frame`` outwards, innermost first."""
    sites = []
    while frame is not None:
        path = user_file(frame.f_code.co_filename)
        if path and (constructing is None or initialising(frame) is not constructing):
            sites.append((path, frame.f_lineno))
        frame = frame.f_back
    return tuple(sites)


def sites_of(module: nn.Module) -> tuple[Site, ...]:
    return module.__dict__.get(_SITES_ATTRIBUTE, ())


@contextlib.contextmanager
def building_context(meta: bool = True) -> Iterator[None]:
    """Build models in here: weights go to the ``meta`` device (:mod:`.weights`; not when
    ``meta`` is False: a real build) and every module keeps its site.

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
        with building(meta):
            yield
    finally:
        nn.Module.__init__ = original_init


def is_model(obj: Any) -> bool:
    return isinstance(obj, nn.Module)
