"""The empirical receptive-field oracle: measure an RF as the support of an input gradient.

With every weight positive, every activation replaced by the identity and every max pool by an
average pool of the same window, a network is a sum of products of positive numbers, so no
input position that any path reaches can cancel out: the input positions with a nonzero
gradient of one output position are exactly those in its receptive field.  (Layer norms and
bicubic taps bring negative terms; with random weights an exact zero is not to be expected.)
Per spatial axis the measured RF is ``last - first + 1`` of that support, summed as absolute
values over channels and the other axes: the maximum RF (the union of all paths), in float64.

Clipping.  A position's window [A, B] is measured as [max(A, 0), min(B, size - 1)].  A window
that touches neither border of the image was not cut, so its extent is the RF itself.  One that
touches both borders covers the image, so the RF is at least ``size``: the measured extent is
``min(rf, size)``, which is also the RF itself when it fits.  A window that touches exactly one
border may have been cut on that side or may end there by chance: :meth:`AxisSupport.extent`
refuses it, and the caller picks an image where the measured position's window is centred.
So the analytic RF ``rf`` is checked as ``min(rf, size) == extent`` (an infinite RF included).

Phases.  After an upsampling (transposed conv, interpolation) neighbouring output positions can
see different numbers of input positions, as they fall differently on the coarser grid.  The
oracle measures ``phases`` consecutive output positions (from the centre on every axis at once,
one batch element each: every layer here acts on each axis separately, so an axis's support
depends only on the position along that axis) and keeps the largest extent, the maximum RF
over positions.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from rfa_lint.frontends.torch import to_plain
from rfa_lint.rf import EnrichedNetworkNode, graph_from_plain

#: Activations, by the name torch gives them whatever the form (``nn.ReLU``, ``F.relu``,
#: ``torch.relu_``, ``x.sigmoid()``): the oracle runs them as the identity.
ACTIVATIONS = frozenset(
    {
        "relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish",
        "sigmoid", "hardsigmoid", "hardswish", "tanh", "softplus", "prelu",
    }
)
_MAX_POOLS = {"max_pool1d": F.avg_pool1d, "max_pool2d": F.avg_pool2d, "max_pool3d": F.avg_pool3d}
_ADAPTIVE_MAX_POOLS = {
    "adaptive_max_pool1d": F.adaptive_avg_pool1d,
    "adaptive_max_pool2d": F.adaptive_avg_pool2d,
    "adaptive_max_pool3d": F.adaptive_avg_pool3d,
}


def _max_pool_args(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   return_indices=False):
    return input, kernel_size, stride, padding, dilation, ceil_mode, return_indices


class Linearised(TorchFunctionMode):
    """Run a model as the oracle needs it: activations are the identity, max pools average.

    An average pool has the max pool's window (kernel, stride, padding, ceil mode; adaptive ones
    the same output size); it has no dilation, so a dilated max pool is refused rather than
    measured wrongly.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "").rstrip("_")
        if name in ACTIVATIONS:
            return args[0] if args else kwargs["input"]
        if name in _MAX_POOLS:
            x, kernel, stride, padding, dilation, ceil_mode, indices = _max_pool_args(*args, **kwargs)
            if indices or any(d != 1 for d in _tuple(dilation)):
                raise ValueError(f"{name} with dilation {dilation} / indices has no average twin")
            return _MAX_POOLS[name](x, kernel, stride, padding, ceil_mode, count_include_pad=True)
        if name in _ADAPTIVE_MAX_POOLS:
            x, size, indices = _adaptive_args(*args, **kwargs)
            if indices:
                raise ValueError(f"{name} with indices has no average twin")
            return _ADAPTIVE_MAX_POOLS[name](x, size)
        return func(*args, **kwargs)


def _adaptive_args(input, output_size, return_indices=False):
    return input, output_size, return_indices


def _tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def positive_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Make every weight positive, float64 and about 1/fan-in (so deep nets stay in range).

    The weights are random (uniform in [0.5, 1.5] / fan-in) rather than constant: a constant
    projection of a layer norm's output is exactly zero (its outputs sum to zero per position).
    """
    generator = torch.Generator().manual_seed(seed)
    model.double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 1
            values = torch.rand(parameter.shape, generator=generator, dtype=torch.float64) + 0.5
            parameter.copy_(values / fan_in)
            parameter.requires_grad_(False)
    return model


@dataclass(frozen=True)
class AxisSupport:
    """The measured support on one axis of an image of ``size`` positions, one window per phase."""

    size: int
    windows: tuple[tuple[int, int], ...]  # (first, last) per measured phase

    @property
    def extent(self) -> int:
        """The largest extent over the phases; refuses a window cut on one side only."""
        for first, last in self.windows:
            if (first == 0) != (last == self.size - 1):
                raise ValueError(
                    f"window [{first}, {last}] of an axis of {self.size} touches one border only: "
                    "it may be clipped; measure on a larger image"
                )
        return max(last - first + 1 for first, last in self.windows)


def expected_extent(rf, size: int):
    """What the oracle measures for an RF of ``rf`` (analytic, possibly infinite) on ``size``."""
    return min(rf, size)


def disagreement(node: EnrichedNetworkNode, supports: tuple[AxisSupport, ...]) -> dict | None:
    """None when the node's RF max is what was measured and its min is no larger, else the
    numbers per axis: analytic max and min, measured extent and image size."""
    sizes = [s.size for s in supports]
    measured = tuple(s.extent for s in supports)
    high = tuple(expected_extent(r, n) for r, n in zip(_axes(node.rf_max_per_axis, sizes), sizes))
    low = tuple(expected_extent(r, n) for r, n in zip(_axes(node.rf_min_per_axis, sizes), sizes))
    if high == measured and all(lo <= m for lo, m in zip(low, measured)):
        return None
    return {
        "max": _plain(node.rf_max_per_axis), "min": _plain(node.rf_min_per_axis),
        "measured": measured, "image": tuple(sizes),
    }


def _axes(values: tuple, sizes: list[int]) -> tuple:
    """One value per axis: a single value (a global node's infinity) stands for every axis."""
    return values * len(sizes) if len(values) == 1 else values


def _plain(values) -> tuple:
    """Fractions shown as floats in a failure message."""
    return tuple(v if isinstance(v, int) else float(v) for v in values)


def measure(
    model: nn.Module,
    input_shape: Sequence[int],
    layers: dict[str, nn.Module],
    phases: int = 1,
    seed: int = 0,
) -> dict[str, tuple[AxisSupport, ...]]:
    """The support of each of ``layers``' outputs (name -> module), per spatial axis.

    ``model`` must already be :func:`positive_`; ``input_shape`` is (1, channels, *spatial).
    One forward pass on ``phases`` images; one backward pass per layer; one thread (the tensors
    are small, and threads only contend on a shared machine).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(model, input_shape, layers, phases, seed)
    finally:
        torch.set_num_threads(threads)


def _measure(model, input_shape, layers, phases, seed) -> dict[str, tuple[AxisSupport, ...]]:
    generator = torch.Generator().manual_seed(seed)
    shape = (phases, *input_shape[1:])
    x = (torch.rand(shape, generator=generator, dtype=torch.float64) + 0.5).requires_grad_(True)
    with _outputs(layers) as outputs, Linearised():
        try:
            model(x)
        except _Collected:
            pass
    result = {}
    for name in layers:
        y = outputs[name]
        gradient, = torch.autograd.grad(_probe(y, phases, generator), x, retain_graph=True)
        result[name] = _supports(gradient, tuple(shape[2:]))
    return result


class _Collected(Exception):
    """Every measured layer has run: the rest of the forward pass (a big head) is skipped."""


@contextlib.contextmanager
def _outputs(layers: dict[str, nn.Module]) -> Iterator[dict[str, Tensor]]:
    """Collect each layer's (first) output tensor while the context is open."""
    outputs: dict[str, Tensor] = {}
    handles = []
    for name, module in layers.items():
        def hook(module, args, output, name=name):
            outputs.setdefault(name, _first_tensor(output))
            if len(outputs) == len(layers):
                raise _Collected
        handles.append(module.register_forward_hook(hook))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def _first_tensor(output) -> Tensor:
    """A layer's output, or the first of several (a tuple, a segmentation model's dict)."""
    if isinstance(output, Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output
    return next(v for v in values if isinstance(v, Tensor))


def _probe(y: Tensor, phases: int, generator: torch.Generator) -> Tensor:
    """Batch element t looks at position centre + t on every axis, channels mixed positively."""
    centre = [n // 2 for n in y.shape[2:]]
    if any(c + phases > n for c, n in zip(centre, y.shape[2:])):
        raise ValueError(f"a map of {tuple(y.shape[2:])} has no room for {phases} phases")
    weights = torch.rand(y.shape[1], generator=generator, dtype=y.dtype) + 0.5
    return sum((y[(t, slice(None), *(c + t for c in centre))] * weights).sum() for t in range(phases))


def _supports(gradient: Tensor, spatial: tuple[int, ...]) -> tuple[AxisSupport, ...]:
    magnitude = gradient.abs().sum(dim=1)  # (phases, *spatial)
    axes = []
    for axis, size in enumerate(spatial):
        others = [d + 1 for d in range(len(spatial)) if d != axis]
        line = magnitude.sum(dim=others) if others else magnitude
        windows = []
        for row in line:
            hit = torch.nonzero(row).flatten()
            if not len(hit):  # e.g. a transposed conv with kernel < stride: a position reads nothing
                raise ValueError("a probed position does not depend on the input")
            windows.append((int(hit[0]), int(hit[-1])))
        axes.append(AxisSupport(size, tuple(windows)))
    return tuple(axes)


def analytic(model: nn.Module, input_shape: Sequence[int]) -> tuple[dict, EnrichedNetworkNode]:
    """rfa-lint's plain graph traced at ``input_shape`` and the graph's output node."""
    plain = to_plain(model, input_shape=tuple(input_shape))
    return plain, graph_from_plain(plain)


def node_of(graph: EnrichedNetworkNode, module_path: str) -> EnrichedNetworkNode:
    """The one graph node of the module at ``module_path``."""
    found = [n for n in graph.all_layers if module_path in n.module_paths]
    if len(found) != 1:
        raise LookupError(f"{len(found)} nodes for module {module_path!r}")
    return found[0]
