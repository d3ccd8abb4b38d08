"""rfa-lint's analytic receptive fields against the empirical oracle (tests/oracle.py).

The oracle measures the maximum RF of a layer as the support of the input gradient of one of
its output positions; rfa-lint's ``rf_max_per_axis`` must equal it (clipped to the image, see
tests/oracle.py) and ``rf_min_per_axis`` must not exceed it.  Four parts: a Hypothesis property
over random conv / pool / merge networks in 1-3 axes, the same with upsampling, single constructs
(taps that read only padding at the traced size drop out of the minimum as of the maximum), and
layers of real torchvision models (integration).
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from torch import nn

from oracle import AxisSupport, analytic, disagreement, measure, node_of, positive_

# --- the oracle itself ------------------------------------------------------------------------


def test_oracle_measures_hand_derived_fields_through_relu_and_max_pool():
    # conv 3/2: 3 (j 2); max pool 3/2: 3 + 2 * 2 = 7 (j 4); conv 3, dilation 2: 7 + 4 * 4 = 23.
    # A real max pool would pass one position of each window back, a ReLU zero some.
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(3, 2, 3, dilation=2, padding=2)
    )
    layers = {"conv": model[0], "pool": model[2], "dilated": model[3]}
    measured = measure(positive_(model), (1, 2, 64, 64), layers)
    assert {name: tuple(s.extent for s in axes) for name, axes in measured.items()} == {
        "conv": (3, 3), "pool": (7, 7), "dilated": (23, 23)
    }


def test_oracle_keeps_the_widest_phase_after_upsampling():
    # nearest x2 then conv 2 (no padding): (2m, 2m+1) read input m, (2m+1, 2m+2) read m, m + 1
    model = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv1d(1, 1, 2))
    (axis,) = measure(positive_(model), (1, 1, 40), {"conv": model[1]}, phases=2)["conv"]
    assert sorted(last - first + 1 for first, last in axis.windows) == [1, 2]
    assert axis.extent == 2


def test_a_window_touching_one_border_is_refused():
    assert AxisSupport(10, ((2, 5),)).extent == 4
    assert AxisSupport(10, ((0, 9),)).extent == 10  # covers the image: compared as min(rf, 10)
    with pytest.raises(ValueError, match="touches one border"):
        AxisSupport(10, ((0, 5),)).extent


# --- generated architectures ------------------------------------------------------------------


class Add(nn.Module):
    def forward(self, *xs):
        return sum(xs[1:], xs[0])


class Cat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, dim=1)


class Interpolate(nn.Module):
    """``F.interpolate(x, **options)`` called from a forward, as model code does (nn.Upsample is
    the module)."""

    def __init__(self, **options) -> None:
        super().__init__()
        self.options = options

    def forward(self, x):
        return F.interpolate(x, **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.options.items())


class Net(nn.Module):
    """Layers wired by index: input 0 is the image, input i + 1 is the output of layer i."""

    def __init__(self, layers: list[nn.Module], wiring: list[tuple[int, ...]]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.wiring = wiring

    def forward(self, x):
        values = [x]
        for layer, inputs in zip(self.layers, self.wiring):
            values.append(layer(*(values[i] for i in inputs)))
        return values[-1]


_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_POOL = {
    "max": {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d},
    "avg": {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d},
}
_INTERPOLATION = {1: ("nearest", "linear"), 2: ("nearest", "bilinear", "bicubic"), 3: ("nearest", "trilinear")}
#: Input positions an interpolated position reads beyond its nearest one (scale factor >= 2).
_EXTRA_TAPS = {"nearest": 0, "linear": 1, "bilinear": 1, "trilinear": 1, "bicubic": 3}
#: Largest image side (the generator stops adding layers before an image would need more).
_MAX_SIDE = {1: 96, 2: 96, 3: 64}
#: Largest side of a map over the image's (upsampled maps stay small: 3-D ones cost the cube).
_MAX_ZOOM = {1: 3, 2: 2, 3: 2}


def _side(bound: int, phases: int, max_jump: int) -> int:
    """An image side on which every probed window lies strictly inside (see tests/oracle.py):
    a window of at most ``bound`` pixels, shifted by padding by less than its size, around the
    centre, plus ``phases`` steps of at most ``max_jump``."""
    return max(40, 2 * bound + 2 * phases * max_jump + 16)


@dataclass
class Builder:
    """Grows a random network one layer at a time, with what it needs to size the image.

    ``bound`` is an upper bound of the RF (in input pixels) of the newest layer, ``jump`` the
    product of the downsampling strides so far (upsampling not divided out: an upper bound of the
    grid step), ``phases`` the product of the upsampling factors (positions that can differ),
    ``modulus`` what every later kernel span must be a multiple of, ``ragged`` whether an
    upsampling whose positions read different numbers of inputs came before (both explained in
    :func:`architectures`), ``zoom`` the largest side of the newest map over the image's.
    """

    dims: int
    channels: int
    layers: list = field(default_factory=list)
    wiring: list = field(default_factory=list)
    bound: int = 1
    jump: int = 1
    max_jump: int = 1
    phases: int = 1
    modulus: int = 1
    ragged: bool = False
    zoom: Fraction = Fraction(1)

    @property
    def side(self) -> int:
        return _side(self.bound, self.phases, self.max_jump)

    def fits(self, bound: int, jump: int, phases: int = 1) -> bool:
        """Whether a layer leaving these figures keeps the image within its largest side."""
        return _side(bound, self.phases * phases, max(self.max_jump, jump)) <= _MAX_SIDE[self.dims]

    def add(self, layer: nn.Module, inputs: tuple[int, ...], channels: int) -> None:
        self.layers.append(layer)
        self.wiring.append(inputs)
        self.channels = channels

    @property
    def last(self) -> int:
        return len(self.layers)


def _spans(draw, dims: int, modulus: int, symmetric: bool = False) -> tuple[list[int], list[int]]:
    """Per axis (kernel, dilation) whose span d * (k - 1) is a multiple of ``modulus`` (even when
    ``symmetric``: a window centred on its position)."""
    kernels, dilations = [], []
    step = math.lcm(modulus, 2 if symmetric else 1)
    for _ in range(dims):
        if step == 1:
            k, d = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        else:
            k, d = step * draw(st.integers(0, 2)) + 1, 1
            if symmetric and k > 1 and draw(st.booleans()) and (k - 1) % 2 == 0:
                k, d = (k - 1) // 2 + 1, 2  # the same span, dilated
        kernels.append(k)
        dilations.append(d if k > 1 else 1)
    return kernels, dilations


def _groups(draw, channels: int) -> int:
    return draw(st.sampled_from([g for g in range(1, channels + 1) if channels % g == 0]))


def _conv(draw, b: Builder) -> bool:
    kernels, dilations = _spans(draw, b.dims, b.modulus)
    strides = _strides(draw, b)
    spans = [d * (k - 1) for k, d in zip(kernels, dilations)]
    paddings = [draw(st.integers(0, s // 2)) for s in spans]
    jump = b.jump * max(strides)
    bound = b.bound + max(spans) * b.jump
    if not b.fits(bound, jump):
        return False
    groups = _groups(draw, b.channels)
    out = groups * draw(st.integers(1, max(1, 4 // groups)))
    layer = _CONV[b.dims](b.channels, out, kernels, strides, paddings, dilations, groups)
    b.add(layer, (b.last,), out)
    b.bound, b.jump, b.max_jump = bound, jump, max(b.max_jump, jump)
    b.modulus, b.zoom = _after_stride(b.modulus, strides), b.zoom / min(strides)
    return True


def _strides(draw, b: Builder) -> list[int]:
    """Per-axis strides; one for all axes while a modulus is pending (it is one per network),
    none after a ragged upsampling (a stride would keep only some phases, maybe the narrower)."""
    if b.ragged:
        return [1] * b.dims
    if b.modulus == 1:
        return [draw(st.integers(1, 3)) for _ in range(b.dims)]
    return [draw(st.integers(1, 3))] * b.dims


def _after_stride(modulus: int, strides: list[int]) -> int:
    """A stride s makes every later span s times longer on the grid the modulus counts."""
    return modulus // math.gcd(modulus, strides[0]) if modulus > 1 else 1


def _pool(draw, b: Builder) -> bool:
    kind = draw(st.sampled_from(["max", "avg"]))
    kernels, _ = _spans(draw, b.dims, b.modulus)
    kernels = [min(k, 4) if b.modulus == 1 else k for k in kernels]
    strides = _strides(draw, b)
    paddings = [draw(st.integers(0, k // 2)) for k in kernels]
    jump = b.jump * max(strides)
    bound = b.bound + (max(kernels) - 1) * b.jump
    if not b.fits(bound, jump):
        return False
    ceil_mode = draw(st.booleans())
    layer = _POOL[kind][b.dims](kernels, strides, paddings, ceil_mode=ceil_mode)
    b.add(layer, (b.last,), b.channels)
    b.bound, b.jump, b.max_jump = bound, jump, max(b.max_jump, jump)
    b.modulus, b.zoom = _after_stride(b.modulus, strides), b.zoom / min(strides)
    return True


def _block(draw, b: Builder) -> bool:
    """A residual add or a concat of 1-2 stride-1 branches, each window centred on its position
    (odd effective kernels, padding half the span), as in ResNet and Inception blocks."""
    start, channels = b.last, b.channels
    merge = draw(st.sampled_from(["add", "cat"]))
    ends, widths, bound = [start], [channels], b.bound
    for _ in range(draw(st.integers(1, 2))):
        at, width, grown = start, channels, 0
        for _ in range(draw(st.integers(1, 2))):
            kernels, dilations = _spans(draw, b.dims, b.modulus, symmetric=True)
            spans = [d * (k - 1) for k, d in zip(kernels, dilations)]
            if not b.fits(b.bound + (grown + max(spans)) * b.jump, b.jump):
                break
            grown += max(spans)
            if draw(st.booleans()):
                groups = _groups(draw, width)
                out = width if merge == "add" else groups * draw(st.integers(1, max(1, 4 // groups)))
                layer = _CONV[b.dims](width, out, kernels, 1, [s // 2 for s in spans], dilations, groups)
            else:
                kind = draw(st.sampled_from(["max", "avg"]))
                kernels = [s + 1 for s in spans]  # pools are not dilated here
                layer, out = _POOL[kind][b.dims](kernels, 1, [s // 2 for s in spans]), width
            b.layers.append(layer)
            b.wiring.append((at,))
            at, width = len(b.layers), out
        ends.append(at)
        widths.append(width)
        bound = max(bound, b.bound + grown * b.jump)
    if len(set(ends)) < 2:
        return False  # no branch had room for a layer
    if merge == "add":
        b.add(Add(), tuple(ends), channels)
    else:
        b.add(Cat(), tuple(ends), sum(widths))
    b.bound = bound
    return True


def _upsample(draw, b: Builder) -> bool:
    """A transposed conv, nn.Upsample or F.interpolate by a factor of 2 or 3."""
    if b.modulus != 1:
        return False  # an upsampling reads an input whose windows all have the same extent
    factor = draw(st.sampled_from([2, 3]))
    if b.zoom * factor > _MAX_ZOOM[b.dims]:
        return False
    kind = draw(st.sampled_from(["transposed", "Upsample", "interpolate"]))
    if kind == "transposed":
        kernel = draw(st.integers(factor, 5))  # kernel >= stride: every position reads an input
        taps, ragged = kernel - 1, kernel % factor != 0
    else:
        mode = draw(st.sampled_from(_INTERPOLATION[b.dims]))
        # an odd factor puts every third position exactly on an input position: one tap
        taps, ragged = _EXTRA_TAPS[mode], _EXTRA_TAPS[mode] > 0 and factor % 2 == 1
    bound = b.bound + taps * b.jump
    if not b.fits(bound, b.jump, factor):
        return False
    if kind == "transposed":
        groups = _groups(draw, b.channels)
        out = groups * draw(st.integers(1, max(1, 4 // groups)))
        padding = draw(st.integers(0, kernel - 1))
        output_padding = draw(st.integers(0, factor - 1))
        layer = _CONV_T[b.dims](b.channels, out, kernel, factor, padding, output_padding, groups)
    elif kind == "Upsample":
        layer, out = nn.Upsample(scale_factor=factor, mode=mode), b.channels
    else:
        layer, out = Interpolate(scale_factor=factor, mode=mode), b.channels
    b.add(layer, (b.last,), out)
    b.bound, b.phases, b.modulus, b.ragged = bound, b.phases * factor, factor, b.ragged or ragged
    b.zoom *= factor
    return True


@st.composite
def architectures(draw, dims: int, upsampling: bool) -> tuple[Net, tuple[int, ...], int]:
    """(model, input shape, phases): a chain of convs, pools and merge blocks; with
    ``upsampling``, transposed convs and interpolations too.

    The analytic RF (one number per layer, padding ignored) is exact only where every output
    position of a layer has the same window extent.  After an upsampling by u, neighbouring
    positions fall differently on the coarse grid; a later window of W fine positions then always
    covers the same number of coarse ones only when u divides W - 1.  So after an upsampling
    every kernel span is a multiple of u (counted on the fine grid), and merge branches keep
    their windows centred (then nested, so the widest is the union).  An upsampling whose
    positions read different numbers of taps (a transposed conv with kernel % stride != 0,
    linear interpolation by an odd factor) is followed by no stride: windows of W fine positions
    stay ragged unless u divides W - 1 + kernel (the extra taps) too, and a stride could keep only
    the narrower ones.
    """
    b = Builder(dims, draw(st.integers(1, 3)))
    in_channels = b.channels
    makers = [_conv, _pool, _block] + ([_upsample] * 2 if upsampling else [])
    for _ in range(draw(st.integers(2, 6))):
        draw(st.sampled_from(makers))(draw, b)
    if not b.layers:
        _conv(draw, b)
    return Net(b.layers, b.wiring), (1, in_channels, *(b.side,) * dims), b.phases


# --- the property -----------------------------------------------------------------------------

_LAYERS = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
           nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd, nn.Upsample)


def _module_nodes(model: Net) -> list[str]:
    """Paths of the layers that are graph nodes of their own (the merges and F.interpolate are
    functional calls inside a module: checked where they are the output, and through later layers)."""
    return [f"layers.{i}" for i, layer in enumerate(model.layers) if isinstance(layer, _LAYERS)]


def describe(model: Net, shape: tuple[int, ...], phases: int = 1) -> str:
    """The network as a failure report shows it: one line per layer with its inputs."""
    lines = [f"layers.{i} <- {inputs}: {layer!r}" for i, (layer, inputs) in enumerate(zip(model.layers, model.wiring))]
    return "\n".join([*lines, f"input {shape}, {phases} phase(s)"])


def disagreements(model: Net, shape: tuple[int, ...], phases: int = 1) -> dict:
    """Every layer node (and the output) whose analytic RF disagrees with the oracle."""
    _, graph = analytic(model, shape)
    nodes = {path: node_of(graph, path) for path in _module_nodes(model)}
    layers = {path: model.get_submodule(path) for path in nodes}
    nodes["output"], layers["output"] = graph, model
    measured = measure(positive_(model), shape, layers, phases)
    found = {path: disagreement(node, measured[path]) for path, node in nodes.items()}
    return {path: numbers for path, numbers in found.items() if numbers}


#: ``RFA_ORACLE_EXAMPLES=N`` runs N fresh random examples per property instead of the fixed 20.
_STRESS = int(os.environ.get("RFA_ORACLE_EXAMPLES", "0"))
_PROPERTY = settings(
    max_examples=_STRESS or 20, deadline=None, derandomize=not _STRESS, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("dims", [1, 2, 3], ids=["1d", "2d", "3d"])
@_PROPERTY
@given(data=st.data())
def test_rf_max_is_the_gradient_support(dims, data):
    """Chains and residual / concat DAGs of convs (kernel, stride, dilation, padding, groups) and
    max / avg pools: every conv and pool layer and the output."""
    example = data.draw(architectures(dims, upsampling=False))
    note(describe(*example))
    assert disagreements(*example) == {}


@pytest.mark.parametrize("dims", [1, 2, 3], ids=["1d", "2d", "3d"])
@_PROPERTY
@given(data=st.data())
def test_rf_max_is_the_gradient_support_with_upsampling(dims, data):
    """The same with transposed convs, nn.Upsample and F.interpolate (nearest, (bi/tri)linear,
    bicubic) by 2 or 3, under the conditions of :func:`architectures` that make one number per
    layer exact; the maximum over the upsampling's phases is measured."""
    example = data.draw(architectures(dims, upsampling=True))
    note(describe(*example))
    assert disagreements(*example) == {}


# --- single constructs ------------------------------------------------------------------------


class Gate(nn.Module):
    """A squeeze-and-excitation gate: the map times a per-channel weight of the pooled map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))


class Framed(nn.Module):
    """A layer reading its input cropped (``x[..., start:stop, start:stop]``) and then padded
    with ``F.pad`` (``pad`` as F.pad takes it), as model code places maps against each other."""

    def __init__(self, layer: nn.Module, crop: tuple = (0, None), pad: tuple = (0, 0, 0, 0)) -> None:
        super().__init__()
        self.layer, self.crop, self.pad = layer, slice(*crop), pad

    def forward(self, x):
        return self.layer(F.pad(x[..., self.crop, self.crop], self.pad))

    def extra_repr(self) -> str:
        return f"crop={self.crop}, pad={self.pad}"


def _chain(*layers: nn.Module) -> Net:
    return Net(list(layers), [(i,) for i in range(len(layers))])


def _image(side: int, dims: int = 2) -> tuple[int, ...]:
    return (1, 1, *(side,) * dims)


def _right_padded_conv2() -> nn.Module:
    """A 2x2 conv as padding='same' pads it: nothing before, one position after."""
    return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(1, 1, 2))


#: name -> a function making (model, input shape, phases).  The measured RFs, by hand (rf += taps * j on the input
#: grid of an upsampling, j /= factor; rf += (k_eff - 1) * j otherwise):
_CONSTRUCTS = {
    # conv 3/2: 3 (j 2); transposed 4/2 reads 2 inputs: 3 + 1 * 2 = 5
    "transposed-k4-s2": lambda: (_chain(nn.Conv2d(1, 2, 3, 2, 1), nn.ConvTranspose2d(2, 2, 4, 2, 1)), _image(64), 2),
    # transposed 2/2 reads 1 input: 3
    "transposed-k2-s2": lambda: (_chain(nn.Conv2d(1, 2, 3, 2, 1), nn.ConvTranspose2d(2, 2, 2, 2)), _image(64), 2),
    # 3D transposed 3/2: 2 inputs at some positions: 3 + 1 * 2 = 5
    "transposed3d-k3-s2": lambda: (
        _chain(nn.Conv3d(1, 2, 3, 2, 1), nn.ConvTranspose3d(2, 2, 3, 2, 1)), _image(32, 3), 2
    ),
    "nearest-x2": lambda: (_chain(nn.Conv2d(1, 2, 3, 2, 1), nn.Upsample(scale_factor=2)), _image(64), 2),  # 3
    # bilinear reads 2 inputs: 3 + 1 * 2 = 5; bicubic 4: 3 + 3 * 2 = 9
    "bilinear-x2": lambda: (
        _chain(nn.Conv2d(1, 2, 3, 2, 1), nn.Upsample(scale_factor=2, mode="bilinear")), _image(64), 2
    ),
    "bicubic-x2-functional": lambda: (
        _chain(nn.Conv2d(1, 2, 3, 2, 1), Interpolate(scale_factor=2, mode="bicubic")), _image(64), 2
    ),
    "bilinear-x2-align-corners": lambda: (
        _chain(nn.Conv2d(1, 2, 3, 2, 1), Interpolate(scale_factor=2, mode="bilinear", align_corners=True)),
        _image(64), 2,
    ),
    # 32 -> 80 (2.5 x): still 2 inputs at most: 5; the phases repeat every 5 positions
    "bilinear-to-a-size": lambda: (
        _chain(nn.Conv2d(1, 2, 3, 2, 1), Interpolate(size=(80, 80), mode="bilinear")), _image(64), 5
    ),
    # linear by 3: 2 inputs except where a position falls on an input: 3 + 1 * 2 = 5
    "linear1d-x3": lambda: (_chain(nn.Conv1d(1, 2, 3, 2, 1), Interpolate(scale_factor=3, mode="linear")), _image(64, 1), 3),
    # downsampling: conv 3: 3; bilinear by 1/2 reads 2 inputs: 3 + 1 * 1 = 4 (j 2); area by 1/2
    # averages 2: 4 too
    "bilinear-down": lambda: (
        _chain(nn.Conv2d(1, 2, 3, 1, 1), Interpolate(scale_factor=0.5, mode="bilinear")), _image(64), 1
    ),
    "area-down": lambda: (_chain(nn.Conv2d(1, 2, 3, 1, 1), Interpolate(scale_factor=0.5, mode="area")), _image(64), 1),
    # conv 3/2: 3 (j 2); pixel shuffle by 2 reads one coarse position (j 1): 3; conv 3: 3 + 2 * 1 = 5
    "pixel-shuffle": lambda: (_chain(nn.Conv2d(1, 4, 3, 2, 1), nn.PixelShuffle(2), nn.Conv2d(1, 1, 3)), _image(64), 2),
    # conv 3: 3; pixel unshuffle by 2 sees 2x2 blocks: 3 + 1 * 1 = 4 (j 2); conv 3: 4 + 2 * 2 = 8
    "pixel-unshuffle": lambda: (
        _chain(nn.Conv2d(1, 1, 3, 1, 1), nn.PixelUnshuffle(2), nn.Conv2d(4, 1, 3)), _image(64), 1
    ),
    "trilinear-x2": lambda: (
        _chain(nn.Conv3d(1, 2, 3, 2, 1), nn.Upsample(scale_factor=2, mode="trilinear")), _image(32, 3), 2
    ),
    # conv 4/4 on 56: 4 (j 4) on a 14-map; adaptive 14 -> 7 reads 2 with stride 2: 4 + 1 * 4 = 8
    "adaptive-14-to-7": lambda: (_chain(nn.Conv2d(1, 2, 4, 4), nn.AdaptiveAvgPool2d(7)), _image(56), 1),
    # on 28 the map is 7 -> 7: each output reads one position: 4
    "adaptive-7-to-7": lambda: (_chain(nn.Conv2d(1, 2, 4, 4), nn.AdaptiveAvgPool2d(7)), _image(28), 1),
    # 8 -> 3: output i reads [floor(8i/3), ceil(8(i+1)/3)): [2, 6) at the centre, 4 wide: 4 + 3 * 4 = 16
    "adaptive-max-8-to-3": lambda: (_chain(nn.Conv2d(1, 2, 4, 4), nn.AdaptiveMaxPool2d(3)), _image(32), 1),
    # the gate's pooling sees everything: the conv after it sees the whole image (max), 5 (min)
    "se-gate": lambda: (_chain(nn.Conv2d(1, 2, 3, 1, 1), Gate(2), nn.Conv2d(2, 2, 3, 1, 1)), _image(40), 1),
    # conv 4/4 on 28: a 7-map; a 7x7 head spans it: 4 + 6 * 4 = 28, the whole image
    "head-spanning-the-map": lambda: (_chain(nn.Conv2d(1, 2, 4, 4), nn.Conv2d(2, 2, 7)), _image(28), 1),
    # conv 4/4 on 64: a 16-map; an ASPP branch of rate 36 there reads only padding with its
    # outer taps at every position: a 1x1 conv, 4 (every tap counted: 4 + 72 * 4 = 292), its
    # minimum too
    "dilated-taps-in-padding-only": lambda: (
        _chain(nn.Conv2d(1, 2, 4, 4), nn.Conv2d(2, 2, 3, padding=36, dilation=36)), _image(64), 1
    ),
    # conv 4/4 on 24: a 6-map; adaptive 6 -> 7 (vgg's avgpool below 224 px): output i reads
    # [floor(6i/7), ceil(6(i+1)/7)), one or two positions: 4 + 1 * 4 = 8 (no fractional kernel)
    "adaptive-6-to-7": lambda: (_chain(nn.Conv2d(1, 2, 4, 4), nn.AdaptiveAvgPool2d(7)), _image(24), 2),
}

# What one RF number per layer could not say before windows (issue 25), each derived by hand:
# phases after an upsampling, a stride keeping some of them, merges of shifted windows, and
# the filter antialiased interpolation widens.
# nearest x2 then conv 2: positions (2m, 2m+1) read input m only, (2m+1, 2m+2) read m and
# m + 1: max 2 (the path formula said 1 + 1 * 1/2 = 1.5)
# -> nearest-x2-then-conv-k2
# conv 1/2 (j 2), nearest x2 (j 1), conv 2: (2m+1, 2m+2) read coarse m, m + 1 = input 2m and
# 2m + 2: 3 (the path formula: 1 + 1 * 1 = 2)
# -> stride-nearest-conv-k2
# transposed 3/2 with padding 1: even outputs read 1 input, odd ones 2; a stride-2 conv
# keeps the even ones only: 1 (the path formula: 1 + 1 * 1 = 2)
# -> transposed-k3-s2-then-stride-2
# the same after a 3x3 conv: at q = 2m it reads [m, m + 1], at 2m + 1 [m, m + 2]; the
# stride keeps q = 2m: 2 (the path formula: 1 + 1 * 1 + 2 * 1/2 = 3)
# -> transposed-k3-s2-conv-k3-then-stride-2
# branch A: conv 3, padding 1: [p - 1, p + 1]; branch B: two convs 2 padded 0 left, 1 right
# (padding='same'): [p, p + 2]; their sum sees [p - 1, p + 2]: 4 (not max(3, 3))
# -> off-centre-branches
# bilinear by 1/2 with antialias: a triangle filter of half-width 2 input positions reads 4:
# 3 + 3 * 1 = 6 (the taps of plain bilinear: 4)
# -> bilinear-down-antialias
_CONSTRUCTS.update({
    "nearest-x2-then-conv-k2": lambda: (_chain(nn.Upsample(scale_factor=2), nn.Conv2d(1, 1, 2)), _image(40), 2),
    "stride-nearest-conv-k2": lambda: (
        _chain(nn.Conv2d(1, 1, 1, 2), nn.Upsample(scale_factor=2), nn.Conv2d(1, 1, 2)), _image(40), 2
    ),
    "transposed-k3-s2-then-stride-2": lambda: (
        _chain(nn.ConvTranspose2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 1, 2)), _image(40), 2
    ),
    "transposed-k3-s2-conv-k3-then-stride-2": lambda: (
        _chain(nn.ConvTranspose2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 1, 2)), _image(40), 2
    ),
    "bilinear-down-antialias": lambda: (
        _chain(nn.Conv2d(1, 2, 3, 1, 1), Interpolate(scale_factor=0.5, mode="bilinear", antialias=True)),
        _image(64), 1,
    ),
    # conv 8/8: 8 (j 8); transposed 4/2 padding 1 reads m - 1, m or m, m + 1: 16 (j 4); the
    # second one's pairs overlap by phase: 16 or 24 pixels (the path formula: 16 + 1 * 4 = 20);
    # pytorchcv's simplepose heads, where one RF per layer said 491 and the oracle 499
    "chained-transposed": lambda: (
        _chain(nn.Conv2d(1, 2, 8, 8), nn.ConvTranspose2d(2, 2, 4, 2, 1), nn.ConvTranspose2d(2, 2, 4, 2, 1)),
        _image(256), 8,
    ),
    # conv 3 padding 1: [p - 1, p + 1]; F.pad((1, 0, 1, 0)) then conv 3/2: entries 2m .. 2m + 2
    # are positions 2m - 1 .. 2m + 1, as a conv 3/2 padding 1 reads: their sum sees 3 + 2 = 5
    # (with the pad placed after, as one size change said: 6)
    "pad-before-then-stride-2": lambda: (
        Net([nn.Conv2d(1, 1, 3, padding=1), Framed(nn.Conv2d(1, 1, 3, 2), pad=(1, 0, 1, 0)),
             nn.Conv2d(1, 1, 3, 2, 1), Add()], [(0,), (1,), (1,), (2, 3)]),
        _image(40), 1,
    ),
    # x[..., :-1, :-1] and x[..., 1:, 1:] of a conv 3 padding 1, each through a 1x1: position p
    # reads p and p + 1, [p - 1, p + 2]: 4 (both crops taken as the first: 3)
    "crops-on-both-sides": lambda: (
        Net([nn.Conv2d(1, 1, 3, padding=1), Framed(nn.Conv2d(1, 1, 1), crop=(None, -1)),
             Framed(nn.Conv2d(1, 1, 1), crop=(1, None)), Add()], [(0,), (1,), (1,), (2, 3)]),
        _image(40), 1,
    ),
    # NASNet's adjust block in torch: pools 1/2 of the map and of the map cropped by one and
    # padded after (odd pixels): [2m - 1, 2m + 1] and [2m, 2m + 2]; concatenated: 4; a 3x3
    # after (j 2): 4 + 2 * 2 = 8
    "shifted-halves": lambda: (
        Net([nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(1, 2),
             Framed(nn.AvgPool2d(1, 2), crop=(1, None), pad=(0, 1, 0, 1)), Cat(), nn.Conv2d(2, 1, 3, padding=1)],
            [(0,), (1,), (1,), (2, 3), (4,)]),
        _image(40), 1,
    ),
    "off-centre-branches": lambda: (
        Net(
            [nn.Conv2d(1, 1, 3, padding=1), _right_padded_conv2(), _right_padded_conv2(), Add()],
            [(0,), (0,), (2,), (1, 3)],
        ),
        _image(40), 1,
    ),
})


@pytest.mark.parametrize("name", list(_CONSTRUCTS))
def test_construct(name):
    """Each upsampling, adaptive pool, gate and spanning head on its own, and the cases only
    windows get right (the second group above)."""
    model, shape, phases = _CONSTRUCTS[name]()
    assert disagreements(model, shape, phases) == {}, describe(model, shape, phases)


# --- real models ------------------------------------------------------------------------------

#: torchvision model -> (image side, layers checked): a shallow layer, some inside the image,
#: one or two whose RF exceeds it (compared clipped).  AlexNet at 320 keeps the window of the
#: centre of its even maps inside the image; GoogLeNet and Inception without aux heads.
REAL_MODELS = {
    "resnet18": (224, ["conv1", "layer1.1.conv2", "layer2.0.downsample.0", "layer3.0.conv2", "layer4.1.conv2"]),
    "vgg11": (224, ["features.3", "features.10", "features.16", "features.20", "avgpool"]),
    "alexnet": (320, ["features.0", "features.5", "features.10", "features.12", "avgpool"]),
    "squeezenet1_0": (224, ["features.3.expand3x3", "features.7.expand3x3", "features.12.expand3x3", "classifier.1"]),
    "mobilenet_v2": (224, ["features.3.conv.1.0", "features.8.conv.2", "features.14.conv.1.0", "features.18.0"]),
    "densenet121": (224, [
        "features.conv0", "features.denseblock1.denselayer3.conv2", "features.transition1.pool",
        "features.denseblock2.denselayer6.conv2", "features.transition3.pool",
    ]),
    "efficientnet_b0": (224, ["features.0.0", "features.1.0.block.0.0", "features.2.0.block.1.0", "features.8.0"]),
    "regnet_x_400mf": (224, [
        "stem.0", "trunk_output.block1.block1-0.f.b.0", "trunk_output.block2.block2-1.f.a.0",
        "trunk_output.block3.block3-3.f.c.0", "trunk_output.block4.block4-11.f.b.0",
    ]),
    "shufflenet_v2_x0_5": (224, ["conv1.0", "stage2.0.branch1.0", "stage2.3.branch2.3", "stage3.3.branch2.5", "conv5.0"]),
    "convnext_tiny": (224, [
        "features.0.0", "features.1.1.block.0", "features.3.1.block.0", "features.5.5.block.0", "features.6.1",
    ]),
    "googlenet": (224, [
        "conv1.conv", "conv2.conv", "inception3a.branch4.0", "inception4a.branch2.1.conv", "inception5b.branch3.0.conv",
    ]),
    "inception_v3": (299, [
        "Conv2d_2b_3x3.conv", "maxpool2", "Mixed_5d.branch3x3dbl_3.conv", "Mixed_6b.branch7x7_2.conv",
        "Mixed_6b.branch7x7dbl_3.conv",
    ]),
    "lraspp_mobilenet_v3_large": (224, [
        "backbone.1.block.0.0", "backbone.4.block.1.0", "classifier.low_classifier", "classifier.high_classifier",
    ]),
    "fcn_resnet50": (160, [
        "backbone.layer1.0.conv2", "backbone.layer2.0.conv2", "backbone.layer3.1.conv2", "backbone.layer4.1.conv2",
        "classifier.0",
    ]),
}
_BUILD_OPTIONS = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
    "lraspp_mobilenet_v3_large": {"weights_backbone": None, "num_classes": 3},
    "fcn_resnet50": {"weights_backbone": None, "num_classes": 3},
}


@functools.cache
def _real_model(name: str) -> dict:
    """Layer path -> (graph node, measured supports) for one model, built and measured once."""
    import torchvision

    side, paths = REAL_MODELS[name]
    model = torchvision.models.get_model(name, weights=None, **_BUILD_OPTIONS.get(name, {}))
    shape = (1, 3, side, side)
    _, graph = analytic(model, shape)
    measured = measure(positive_(model), shape, {path: model.get_submodule(path) for path in paths})
    return {path: (node_of(graph, path), measured[path]) for path in paths}


@pytest.mark.integration
@pytest.mark.parametrize(
    "name, path", [pytest.param(n, p, id=f"{n}/{p}") for n, (_, paths) in REAL_MODELS.items() for p in paths]
)
def test_real_model_layer(name, path):
    node, supports = _real_model(name)[path]
    assert disagreement(node, supports) is None


# --- the productive range at its ends ---------------------------------------------------------

_CHAINED_TRANSPOSED = '''
from torch import nn


class Head(nn.Module):
    """simplepose's head in small: conv 8/8, two transposed convs 4/2 padding 1."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 2, 8, 8)
        self.up = nn.Sequential(nn.ConvTranspose2d(2, 2, 4, 2, 1), nn.ConvTranspose2d(2, 2, 4, 2, 1))

    def forward(self, x):
        return self.up(self.down(x))
'''


def test_the_range_holds_at_its_ends(tmp_path):
    """RFA110's range comes from the windows: 16-24px for the chain above, where one RF per
    layer said exactly 20 (the second transposed conv's positions see 16 or 24 pixels, see
    ``chained-transposed``).  Linted at its ends the model is in range and no layer is
    critical; one pixel outside, RFA110 says on which side."""
    from doors import rfa_lint as run

    (tmp_path / "head.py").write_text(_CHAINED_TRANSPOSED)

    def lint(res: int) -> dict:
        proc = run("head.py", "--res", str(res), "--format", "json", "--no-cache", cwd=tmp_path)
        return {f["code"]: f for f in json.loads(proc.stdout)["findings"]}

    assert lint(256)["RFA110"]["details"]["range"] == [[16, 16], [24, 24]]
    for res in (16, 24):
        assert {"RFA110", "RFA101", "RFA102", "RFA103"} & set(lint(res)) == set(), res
    assert "below" in lint(15)["RFA110"]["message"]
    assert "above" in lint(25)["RFA110"]["message"]
