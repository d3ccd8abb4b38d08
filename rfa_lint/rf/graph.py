"""The receptive-field graph: layer parameters, nodes, and RF propagation along edges.

A node's receptive field is computed once, when it is created from its predecessors, so a graph
is built in topological order (as the seed library's ``EnrichedNetworkNode`` is).  Every value
is kept per spatial axis; the seed's scalar kernels and strides are one axis broadcast to all.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

import rfa_lint.rf.windows as W
from rfa_lint.rf.axes import Number, PerAxis, broadcast, per_axis, public
from rfa_lint.rf.verdict import Verdict, classify
from rfa_lint.rf.windows import Reads

INF = math.inf


class Kind(enum.StrEnum):
    """What a layer is, for the lint: only ``CONV`` and ``POOL`` layers can be findings; the rest
    shape the graph.  The values are the plain graphs' (and the cache's) spelling."""

    INPUT = "input"
    CONV = "conv"
    POOL = "pool"
    DENSE = "dense"
    GLOBAL = "global"
    ATTENTION = "attention"
    RESIZE = "resize"
    MERGE = "merge"
    PASSTHROUGH = "passthrough"


def _divide(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int):
        return a // b if a % b == 0 else Fraction(a, b)
    return a / b


@dataclass(frozen=True)
class LayerDefinition:
    """What a layer does to the receptive field (the seed's name and constructor).

    ``kernel_size=None`` means an infinite kernel (a dense layer over the whole input, as in the
    seed); a layer acting per position (ReLU, a 1x1 conv, a channels-last Linear) has kernel 1.
    ``upsampling`` > 1 makes the output grid finer (transposed conv, Upsample): the kernel then
    runs on the finer grid and the stride product is divided.  Layers are values: sequences are
    stored as tuples and numpy numbers as Python numbers, so a layer hashes, and
    ``from_dict(to_dict())`` gives an equal layer.  A missing stride is 1, as in the seed.
    ``reads`` says per axis exactly which input positions each output position reads
    (:class:`rfa_lint.rf.windows.Reads`: padding, phases, a resampling's taps); where it is
    None the kernel, stride, dilation and upsampling say it (see :mod:`rfa_lint.rf.windows`).
    """

    name: str
    kernel_size: Number | Sequence[Number] | None = None
    stride_size: Number | Sequence[Number] | None = None
    filters: int | None = None
    units: int | None = None
    dilation: int | Sequence[int] = 1
    upsampling: Number | Sequence[Number] = 1
    kind: Kind | str | None = None
    reads: Sequence[Reads | None] | None = None

    def __post_init__(self) -> None:
        for attr in _GEOMETRY:
            object.__setattr__(self, attr, _stored(getattr(self, attr)))
        if self.reads is not None:
            object.__setattr__(self, "reads", tuple(None if r is None else Reads.of(r) for r in self.reads))
        if self.kernel_size == INF:  # the seed's spelling of an infinite kernel
            object.__setattr__(self, "kernel_size", None)
        if self.stride_size is None:
            object.__setattr__(self, "stride_size", 1)
        if isinstance(self.kernel_size, tuple) and isinstance(self.stride_size, tuple):
            if len(self.kernel_size) != len(self.stride_size):  # the seed's rule: no broadcast here
                raise ValueError(f"{self.name}: kernel_size and stride_size of different lengths")
        for attr, values in (
            ("kernel_size", self.kernel),
            ("stride_size", self.stride),
            ("dilation", per_axis(self.dilation, 1)),
            ("upsampling", per_axis(self.upsampling, 1)),
        ):
            if any(not v >= 1 for v in values):
                raise ValueError(f"{self.name}: {attr} values must be >= 1, got {values}")
        broadcast(self.kernel, self.stride, per_axis(self.dilation, 1), per_axis(self.upsampling, 1))
        object.__setattr__(self, "kind", self._kind())

    def _kind(self) -> Kind:
        """The given kind as a :class:`Kind` (unknown ones refused), else the one the shape implies."""
        if self.kind is None:
            return Kind.DENSE if self.units is not None else Kind.GLOBAL if self.is_infinite else Kind.CONV
        try:
            return Kind(self.kind)
        except ValueError:
            known = sorted(k.value for k in Kind)
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}; one of {known}") from None

    @property
    def kernel(self) -> PerAxis:
        return per_axis(self.kernel_size, INF)

    @property
    def stride(self) -> PerAxis:
        return per_axis(self.stride_size, 1)

    @property
    def is_infinite(self) -> bool:
        """An infinite kernel on any axis sees the whole input (dense, global pooling, flatten)."""
        return any(math.isinf(k) for k in self.kernel)

    @property
    def effective_kernel(self) -> PerAxis:
        kernel, dilation = broadcast(self.kernel, per_axis(self.dilation, 1))
        return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form that :meth:`from_dict` turns back into an equal layer.

        The seed's keys (name, kernel and stride) and the kind (the plain graphs' layer family);
        filters, units, dilation and upsampling only where they differ from their defaults.
        Values keep their stored form (a scalar stays a scalar); an infinite axis is written as
        null and a Fraction as its exact text (``"3/2"``), so strict JSON carries both.
        """
        config = {"name": self.name, "kernel_size": self.kernel_size, "stride_size": self.stride_size,
                  "kind": self.kind.value}
        optional = {"filters": (self.filters, None), "units": (self.units, None), "reads": (self.reads, None),
                    "dilation": (self.dilation, 1), "upsampling": (self.upsampling, 1)}
        config.update({key: value for key, (value, default) in optional.items()
                       if not (type(value) is type(default) and value == default)})  # 1.0 stays
        if "reads" in config:
            config["reads"] = [None if r is None else [r.period, r.step, [list(c) for c in r.offsets]]
                               for r in self.reads]
        return {key: _encode(value) if key in _GEOMETRY else value for key, value in config.items()}

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> LayerDefinition:
        """The layer of :meth:`to_dict` data (older data: lists of floats, also accepted)."""
        geometry = {attr: _decode(config[attr]) for attr in _GEOMETRY if attr in config}
        return cls(**{**config, **geometry})


#: The fields holding per-axis geometry: stored as a scalar or a tuple, never a list.
_GEOMETRY = ("kernel_size", "stride_size", "dilation", "upsampling")


def _stored(value: Any) -> Any:
    """A sequence becomes a tuple and a numpy number a Python one, so that layers are hashable,
    compare by value and serialise to JSON."""
    if isinstance(value, (list, tuple)):
        return tuple(_stored(v) for v in value)
    if isinstance(value, numbers.Integral) and not isinstance(value, int):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (int, float, Fraction)):
        return float(value)
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, float) and math.isinf(value):
        return None
    return value


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode`; null inside a list is an infinite axis."""
    if isinstance(value, list):
        return tuple(INF if v is None else _decode(v) for v in value)
    if isinstance(value, str):
        return Fraction(value)
    return value


@dataclass(frozen=True, order=True)
class ReceptiveFieldInfo:
    """One path's receptive field and stride product ("jump") at a node, per axis."""

    receptive_field: PerAxis
    multiplicator: PerAxis


_PIXEL = ReceptiveFieldInfo((1,), (1,))


class GraphTooLarge(ValueError):
    """Building a graph would take more work than :func:`graph_limits` allow."""


@dataclass
class _Limits:
    paths: int  # incoming entries still to be carried, summed over the nodes built
    stride_products: int  # distinct stride products allowed at one node
    taps: int  # window taps still to be read, summed over the nodes built


_LIMITS: contextvars.ContextVar[_Limits | None] = contextvars.ContextVar("graph_limits", default=None)


@contextlib.contextmanager
def graph_limits(paths: int, stride_products: int, taps: int = 2_000_000) -> Iterator[None]:
    """Bound the work of the graphs built in this block (in this thread): :func:`propagate`
    raises :class:`GraphTooLarge` past ``paths`` incoming entries in all, or past
    ``stride_products`` distinct stride products at one node.

    A graph costs time in proportion to its incoming entries: one per node at least, up to two
    per distinct stride product on each edge, so that branches with distinct strides double them
    at every level.  The linter builds the graphs a child sends under limits: a forged one must
    cost it an error, not minutes.  Exact windows (:mod:`rfa_lint.rf.windows`) cost one step per
    tap read at each position; past ``taps`` of them the nodes built after keep the path
    formula's maximum instead.
    """
    token = _LIMITS.set(_Limits(paths, stride_products, taps))
    try:
        yield
    finally:
        _LIMITS.reset(token)


def propagate(infos: Iterable[ReceptiveFieldInfo], layer: LayerDefinition) -> frozenset:
    """Apply one layer to every incoming path: ``rf += (k_eff - 1) * j``, ``j *= s``."""
    infos = tuple(infos)
    limits = _LIMITS.get()
    if limits is not None:
        limits.paths -= max(len(infos), 1)
        if limits.paths < 0:
            raise GraphTooLarge("more receptive-field paths to follow than the limit")
    if layer.is_infinite:
        n = len(layer.kernel)
        return frozenset({ReceptiveFieldInfo((INF,) * n, (1,) * n)})
    kernel, stride, up = layer.effective_kernel, layer.stride, per_axis(layer.upsampling, 1)
    result = []
    for info in infos:
        rf, jump, k, s, u = broadcast(info.receptive_field, info.multiplicator, kernel, stride, up)
        grid = tuple(_divide(j, ui) for j, ui in zip(jump, u))
        rf_out = tuple(r + (ki - 1) * g for r, ki, g in zip(rf, k, grid))
        result.append(ReceptiveFieldInfo(rf_out, tuple(g * si for g, si in zip(grid, s))))
    return _extremes(result)


def _extremes(infos: list[ReceptiveFieldInfo]) -> frozenset:
    """Keep, per stride product, only the smallest and largest RF of each axis.

    Paths that share a stride product grow by the same amounts downstream, so the per-axis
    extremes among them stay the extremes at every later node: min and max stay exact while a
    DenseNet-like graph carries a handful of entries per node instead of one per path.  Paths
    that already see everything (an infinite axis) are kept apart for ``filter_all_inf_rf``.
    """
    groups: dict[tuple, list[PerAxis]] = {}
    for info in infos:
        rf, jump = broadcast(info.receptive_field, info.multiplicator)
        groups.setdefault((jump, any(math.isinf(v) for v in rf)), []).append(rf)
    limits = _LIMITS.get()
    if limits is not None and len(groups) > limits.stride_products:
        raise GraphTooLarge(f"{len(groups)} distinct stride products meet at one layer, more than "
                            f"the limit of {limits.stride_products}")
    kept = set()
    for (jump, _), rfs in groups.items():
        rfs = broadcast(*rfs)
        kept.add(ReceptiveFieldInfo(tuple(min(axis) for axis in zip(*rfs)), jump))
        kept.add(ReceptiveFieldInfo(tuple(max(axis) for axis in zip(*rfs)), jump))
    return frozenset(kept)


class _Members(list):
    """The shared, creation-ordered list of a graph's nodes (``all_layers``)."""


InfoFilter = Callable[[tuple[ReceptiveFieldInfo, ...]], tuple[ReceptiveFieldInfo, ...]]


def noop_filter(info: tuple[ReceptiveFieldInfo, ...]) -> tuple[ReceptiveFieldInfo, ...]:
    """Keep every RF size (the seed's default filter)."""
    return info


def filter_all_rf_info_with_infinite_receptive_field(
    info: tuple[ReceptiveFieldInfo, ...],
) -> tuple[ReceptiveFieldInfo, ...]:
    """Drop the paths that see the whole input on some axis (an SE gate's global context), unless
    no other path is left: then the node keeps them all."""
    finite = tuple(i for i in info if not any(math.isinf(v) for v in i.receptive_field))
    return finite or info


def naive_minmax_filter(info: tuple[ReceptiveFieldInfo, ...]) -> tuple[ReceptiveFieldInfo, ...]:
    """Keep the smallest and the largest RF size only (compared axis by axis, in order)."""
    return tuple(dict.fromkeys((min(info, key=_info_key), max(info, key=_info_key))))


#: The seed's names for filters, as ``create_graph_from_*_model(filter_rf=...)`` takes them.
KNOWN_FILTER_MAPPING: dict[str | None, InfoFilter] = {
    "inf": filter_all_rf_info_with_infinite_receptive_field,
    None: noop_filter,
}


def filter_from(filter_rf: str | InfoFilter | None) -> InfoFilter:
    """A filter given by its seed name (``"inf"``, None) or as a function."""
    return filter_rf if callable(filter_rf) else KNOWN_FILTER_MAPPING[filter_rf]


def receptive_field_provider(node: EnrichedNetworkNode) -> Any:
    """The RF an input is judged by: its minimum (the seed's default)."""
    return node.receptive_field_min


def receptive_field_provider_with_1x1_handling(node: EnrichedNetworkNode) -> Any:
    """The minimum RF, but infinite for a layer whose kernel is 1 everywhere, so that a layer
    reading only 1x1 layers counts as saturated (the seed's hypothesis that 1x1 convolutions
    are unproductive)."""
    return INF if all(k == 1 for k in node.layer_info.kernel) else node.receptive_field_min


@dataclass(eq=False, repr=False)
class EnrichedNetworkNode:
    """A layer in the graph; any node is a handle for the whole graph (the seed's name).

    ``module_paths`` names the model's module(s) behind the node (``layer4.1.conv2``);
    ``sites`` is the creation stack of the layer in user code, innermost first, as
    ``(file, line)`` pairs, so a linter can place a finding in whichever file it is linting.
    ``map_in`` / ``map_out`` are the spatial sizes (per axis) of the layer's input and output
    where the frontend traced them, at the shape it traced; None where unknown; ``shift_in`` how
    far the input was shifted since the layer before made it (F.pad, slicing).  ``spans_map``
    marks an unpadded conv or pool whose kernel covered its whole input map there (see
    :func:`graph_from_plain` for what becomes of it).
    ``receptive_field_info_filter`` (the seed's; pass it by keyword) thins the node's RF sizes
    after they are computed; the sizes kept flow on to the successors.  Whatever the filter,
    the entries are the per-axis extremes of each stride product, not one per path (see
    :func:`_extremes`).

    Per axis: ``rf_min_per_axis`` / ``rf_max_per_axis`` are the RF the verdicts judge by (the
    shortest path or window) and the widest window (exact where the sizes were traced, see
    :mod:`rfa_lint.rf.windows`).  ``range_min_per_axis`` / ``range_max_per_axis`` are the two
    as the productive range takes them: on maps large enough to show every window whole, over
    the paths that do not see everything (an SE gate's context left out of the maximum).
    """

    name: str
    layer_info: LayerDefinition
    predecessors: list[EnrichedNetworkNode] = field(default_factory=list)
    module_paths: tuple[str, ...] = ()
    sites: tuple[tuple[str, int], ...] = ()
    map_in: PerAxis | None = None
    map_out: PerAxis | None = None
    spans_map: bool = False
    shift_in: PerAxis | None = None
    receptive_field_info_filter: InfoFilter = noop_filter
    successors: list[EnrichedNetworkNode] = field(init=False, default_factory=list)
    receptive_field_info: tuple[ReceptiveFieldInfo, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.predecessors = list(self.predecessors)
        self.module_paths = tuple(self.module_paths)
        self.sites = tuple((str(f), int(n)) for f, n in self.sites)
        self.map_in, self.map_out = _sizes(self.map_in), _sizes(self.map_out)
        self.shift_in = _sizes(self.shift_in)
        incoming = {i for p in self.predecessors for i in p.receptive_field_info} or {_PIXEL}
        infos = tuple(sorted(propagate(incoming, self.layer_info), key=_info_key))
        self.receptive_field_info = tuple(self.receptive_field_info_filter(infos))
        rfs = list(broadcast(*(i.receptive_field for i in self.receptive_field_info)))
        self.rf_min_per_axis: PerAxis = tuple(min(axis) for axis in zip(*rfs))
        self.rf_max_per_axis: PerAxis = tuple(max(axis) for axis in zip(*rfs))
        finite = [i.receptive_field for i in self.receptive_field_info
                  if not any(math.isinf(v) for v in i.receptive_field)] or rfs
        self.range_min_per_axis: PerAxis = self.rf_min_per_axis
        self.range_max_per_axis: PerAxis = tuple(max(axis) for axis in zip(*broadcast(*finite)))
        self.windows: tuple[W.Windows, ...] | None = self._windows()
        exact = self.receptive_field_info_filter is noop_filter and not self.layer_info.is_infinite
        if self.windows is not None and exact:  # the seed's filters thin the path sizes only
            self._exact_extremes()
        self.scale_per_axis: PerAxis = _scale(self.receptive_field_info)
        self._members = self._join_members()
        for pred in self.predecessors:
            pred.successors.append(self)

    def _windows(self) -> tuple[W.Windows, ...] | None:
        """Per axis, the window of image pixels each output position reads, where the frontend
        traced the map sizes of this node and of all before it (None elsewhere)."""
        layer = self.layer_info
        if not self.predecessors:
            return None if self.map_out is None else tuple(W.Image(n) for n in self.map_out)
        inputs = [p.windows for p in self.predecessors]
        if any(w is None for w in inputs):
            return None
        if layer.is_infinite:
            return (W.EVERYWHERE,) * max(len(w) for w in inputs)
        if self.map_out is None or any(len(w) != len(self.map_out) for w in inputs):
            return None
        axes = []
        for axis, n_out in enumerate(self.map_out):
            merged = W.merged([w[axis] for w in inputs], max(len(w[axis]) for w in inputs))
            if merged is None:
                return None
            merged = self._placed(merged, axis, len(inputs))
            reads = self._reads(axis, len(merged), n_out)
            if not _affordable(len(merged) + n_out * max(map(len, reads.offsets))):
                return None
            axes.append(W.read(reads, merged, n_out))
        return tuple(axes)

    def _placed(self, merged: W.Windows, axis: int, inputs: int) -> W.Windows:
        """The windows of the map the layer reads on ``axis``, padded, cropped or shifted between
        the layers: by ``shift_in`` where the frontend recorded it (its entries before the first
        position, see :class:`rfa_lint.frontends.torch.layout.Factor`), else by the sizes."""
        if inputs != 1 or self.map_in is None or len(self.map_in) != len(self.map_out):
            return merged
        if self.shift_in and len(self.shift_in) == len(self.map_in):
            before = self.shift_in[axis]
            return W.padded(merged, max(before, 0) + self.map_in[axis], before)
        if self.map_in[axis] != len(merged):
            return W.padded(merged, self.map_in[axis])
        return merged

    def _reads(self, axis: int, n_in: int, n_out: int) -> Reads:
        """What the layer reads on ``axis``: as the frontend said, else as its geometry says."""
        layer = self.layer_info
        given = layer.reads and (layer.reads[axis] if len(layer.reads) > 1 else layer.reads[0])
        if given:
            return given
        if n_in == n_out and all(v == 1 for v in (*layer.kernel, *layer.stride)) and all(
                u == 1 for u in per_axis(layer.upsampling, 1)):
            return W.IDENTITY
        kernel, stride, dilation, up = (
            _stretch(v, len(self.map_out))[axis]
            for v in (layer.kernel, layer.stride, per_axis(layer.dilation, 1), per_axis(layer.upsampling, 1))
        )
        if kernel != int(kernel) or stride != int(stride):  # a fractional seed layer: no exact reads
            kernel, stride = math.ceil(kernel), max(1, round(stride))
        return W.default_reads(int(kernel), int(stride), int(dilation), up, n_in, n_out)

    def _exact_extremes(self) -> None:
        """The maximum RF is the widest window over the positions (infinite where a global layer
        feeds one).  The minimum is the shortest window over paths and positions: the path
        formula's shortest path, or the narrowest window no padding cut if that is narrower
        (phases, uneven adaptive windows); never wider than the maximum (where padding cuts every
        window, the path formula overstates: no path sees more than the widest window, and a tap
        that reads only padding adds nothing).  The productive range takes both on maps large
        enough to show every window whole (:func:`_whole`)."""
        if any(w is None for w in self.windows) or not self.has_finite_rf:
            return
        axes = len(self.windows)
        widest = tuple(max(W.extents(w), default=None) for w in self.windows)
        if any(v is None for v in widest) or len(self.rf_min_per_axis) not in (1, axes):
            return
        local = [W.extents(w, local=True) for w in self.windows]
        uncut = [W.extents(w, uncut=True, local=True) for w in self.windows]
        paths = zip(_stretch(self.rf_min_per_axis, axes), _stretch(self.range_max_per_axis, axes))
        low, high = zip(*(_whole(*values) for values in zip(local, uncut, paths)))
        scalar = len(self.rf_min_per_axis) == 1  # one value for every axis stays one (the seed's)
        self.rf_max_per_axis = _values(widest, scalar)
        self.range_min_per_axis, self.range_max_per_axis = _values(low, scalar), _values(high, scalar)
        self.rf_min_per_axis = _values(tuple(map(min, low, widest)), scalar)

    def _join_members(self) -> _Members:
        groups = []
        for pred in self.predecessors:
            if not any(g is pred._members for g in groups):
                groups.append(pred._members)
        if not groups:
            members = _Members()
        else:
            members = max(groups, key=len)
            for other in groups:
                if other is not members:
                    members.extend(other)
                    for node in other:
                        node._members = members
        members.append(self)
        return members

    @property
    def all_layers(self) -> list[EnrichedNetworkNode]:
        """Every node of the graph, in creation (topological) order."""
        return self._members

    @property
    def succecessors(self) -> list[EnrichedNetworkNode]:
        """The seed's spelling of :attr:`successors`."""
        return self.successors

    def is_in(self, container: Any) -> bool:
        """Whether this very node (by identity) is in a list, or among a dict's keys."""
        return any(node is self for node in container)

    def is_border(
        self,
        input_resolution: Number | Sequence[Number],
        receptive_field_provider: Callable[[EnrichedNetworkNode], Any] = receptive_field_provider,
        filter_kernel_size_1: bool = False,
    ) -> bool:
        """Whether the layer is unproductive at the resolution (the seed's "border layer"):
        :func:`rfa_lint.rf.verdict.classify` with inputs judged by ``receptive_field_provider``.

        A kernel that covers its whole feature map is a separate question here
        (:func:`rfa_lint.rf.analysis.kernel_covers_feature_map`, rfa-lint's RFA104).
        """
        verdict = classify(self, input_resolution, filter_kernel_size_1, receptive_field_provider)
        return verdict is Verdict.UNPRODUCTIVE

    @property
    def kernel_size(self) -> Any:
        return self.layer_info.kernel_size

    @property
    def stride_size(self) -> Any:
        return self.layer_info.stride_size

    @property
    def receptive_field_sizes(self) -> list[Any]:
        return [public(i.receptive_field) for i in self.receptive_field_info]

    @property
    def receptive_field_min(self) -> Any:
        return public(self.rf_min_per_axis)

    @property
    def receptive_field_max(self) -> Any:
        return public(self.rf_max_per_axis)

    @property
    def traced_at(self) -> PerAxis | None:
        """The image size the graph's maps were traced at (its input's map), None if untraced."""
        first = self._members[0]
        return None if first.predecessors else first.map_out

    def rf_min_at(self, resolution: Number | Sequence[Number]) -> PerAxis:
        """The minimum RF a verdict at ``resolution`` judges by: the one that holds on maps of any
        size (the range's), also at the traced size.  The traced size's own minimum is cut by the
        padding of small maps, so on an image smaller than a layer's RF no window could ever pass
        the image, and the verdicts the linter exists for (unproductive, critical) would vanish
        exactly where they apply."""
        return self.range_min_per_axis

    @property
    def has_finite_rf(self) -> bool:
        """False for nodes that see the whole input on some axis (heads, pooled SE branches)."""
        return not any(math.isinf(v) for v in self.rf_min_per_axis)

    def get_maximum_scale_factor(self) -> Any:
        return public(self.scale_per_axis)

    def compute_feature_map_size(self, input_resolution: Number | Sequence[Number]) -> Any:
        """Estimated feature-map size at this node's output: ``ceil(R / stride product)``.

        The ceiling is what padded ("same") layers give, the common case; the seed's floor
        shrinks a 40px map at stride 32 to 1 and a map smaller than a stride product to 0.
        """
        res, scale = broadcast(per_axis(input_resolution, 1), self.scale_per_axis)
        return public(tuple(math.ceil(r / s) for r, s in zip(res, scale)))

    def __repr__(self) -> str:
        preds = [p.name for p in self.predecessors]
        return (
            f"EnrichedNetworkNode(name={self.name!r}, layer={self.layer_info.name!r}, "
            f"predecessors={preds}, receptive_field_min={self.receptive_field_min}, "
            f"receptive_field_max={self.receptive_field_max})"
        )


def _scale(infos: Sequence[ReceptiveFieldInfo]) -> PerAxis:
    """Largest stride product per axis, over the paths with a finite RF when there are any.

    A broadcast operand that sees everything (an SE gate, a global context vector) has no
    spatial grid of its own, so its stride product says nothing about the node's map.
    """
    finite = [i for i in infos if not any(math.isinf(v) for v in i.receptive_field)] or infos
    return tuple(max(axis) for axis in zip(*broadcast(*(i.multiplicator for i in finite))))


def _whole(extents: list, uncut: list, paths: tuple[Number, Number]) -> tuple[Number, Number]:
    """The shortest and the widest RF of the local paths on one axis, on maps large enough to
    show every window whole: the narrowest and the widest window no padding cut, where there is
    one (the widest only when no cut window is wider); else the path formula's (the window on a
    map without borders, but for phases), no less than the widest window."""
    shortest, widest = paths
    low = min(shortest, min(uncut, default=INF))
    top = max(extents, default=INF)
    return low, top if uncut and top == max(uncut) else max(top, widest)


def _values(values: PerAxis, scalar: bool) -> PerAxis:
    """Per-axis values as plain numbers, one for all axes when ``scalar`` and all are equal."""
    values = tuple(_plain(v) for v in values)
    return values[:1] if scalar and len(set(values)) == 1 else values


def _affordable(taps: int) -> bool:
    """Whether :func:`graph_limits` leaves ``taps`` window taps to read (then they are spent)."""
    limits = _LIMITS.get()
    if limits is None:
        return True
    limits.taps -= taps
    return limits.taps >= 0


def _stretch(values: PerAxis, axes: int) -> PerAxis:
    return values * axes if len(values) == 1 else values


def _plain(value: Number) -> Number:
    """A whole number as an int (a Fraction 8/1, a float 8.0); infinity and fractions stay."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _sizes(values: Sequence[int] | None) -> PerAxis | None:
    return None if values is None else tuple(int(v) for v in values)


def _info_key(info: ReceptiveFieldInfo) -> tuple:
    return (tuple(float(v) for v in info.receptive_field), tuple(float(v) for v in info.multiplicator))


def graph_to_plain(node: EnrichedNetworkNode) -> dict[str, Any]:
    """The whole graph of ``node`` as JSON-able data (the form that crosses process boundaries)."""
    members = node.all_layers
    index = {id(n): i for i, n in enumerate(members)}
    return {
        "nodes": [
            {
                "name": n.name,
                "layer": n.layer_info.to_dict(),
                "predecessors": [index[id(p)] for p in n.predecessors],
                "module_paths": list(n.module_paths),
                "sites": [list(s) for s in n.sites],
                "map_in": None if n.map_in is None else list(n.map_in),
                "map_out": None if n.map_out is None else list(n.map_out),
                "spans_map": n.spans_map,
                **({"shift_in": list(n.shift_in)} if n.shift_in else {}),
            }
            for n in members
        ],
        "output": index[id(node)],
    }


def graph_from_plain(
    data: dict[str, Any], receptive_field_info_filter: InfoFilter = noop_filter
) -> EnrichedNetworkNode:
    """Rebuild a graph from :func:`graph_to_plain` data; nodes must be in topological order.

    Dense heads become what they are, global: see :func:`dense_heads`.  Every node gets
    ``receptive_field_info_filter`` (the seed's ``filter_rf``).
    """
    built: list[EnrichedNetworkNode] = []
    for i, spec in enumerate(data["nodes"]):
        if any(not 0 <= p < i for p in spec.get("predecessors", [])):
            raise ValueError(f"node {i} ({spec.get('name')!r}) is not in topological order")
    layers = [LayerDefinition.from_dict(spec["layer"]) for spec in data["nodes"]]
    for i in dense_heads(data["nodes"], layers):
        kind = Kind.GLOBAL if layers[i].kind == Kind.POOL else Kind.DENSE
        layers[i] = LayerDefinition(layers[i].name, kernel_size=None, filters=layers[i].filters, kind=kind)
    for i, spec in enumerate(data["nodes"]):
        preds = spec.get("predecessors", [])
        built.append(
            EnrichedNetworkNode(
                name=spec["name"],
                layer_info=layers[i],
                predecessors=[built[p] for p in preds],
                receptive_field_info_filter=receptive_field_info_filter,
                module_paths=tuple(spec.get("module_paths", ())),
                sites=tuple(tuple(s) for s in spec.get("sites", ())),
                map_in=spec.get("map_in"),
                map_out=spec.get("map_out"),
                spans_map=bool(spec.get("spans_map", False)),
                shift_in=spec.get("shift_in"),
            )
        )
    if not built:
        raise ValueError("a graph needs at least one node")
    return built[data.get("output", len(built) - 1)]


def dense_heads(nodes: Sequence[dict[str, Any]], layers: Sequence[LayerDefinition]) -> set[int]:
    """Indices of the layers that span their whole input map (``spans_map``) with no window
    (a finite kernel above 1) reading what they made, short of a global layer.

    VGG's fc6 written as a 7x7 conv on a 7x7 map, ``F.avg_pool2d(x, 4)`` on a 4x4 map before the
    classifier, an SE gate's ``F.avg_pool2d(out, out.size(2))`` (it reaches the main path as a
    global operand): each output position reads the whole map, by design, so such a layer is a
    dense head, global like the ``AdaptiveAvgPool2d(1)`` or ``Linear`` it stands for.  A
    spanning layer with windows after it is no head: it is a kernel wasted on a tiny map
    (RFA104), and the layers after it keep their receptive fields.
    """
    successors: list[list[int]] = [[] for _ in nodes]
    for i, spec in enumerate(nodes):
        for p in spec.get("predecessors", []):
            successors[p].append(i)
    window = [not layer.is_infinite and any(k > 1 for k in layer.kernel) for layer in layers]
    window_after = [False] * len(nodes)  # a window reads this node's output, short of a global layer
    for i in reversed(range(len(nodes))):
        window_after[i] = any(window[s] or (window_after[s] and not layers[s].is_infinite)
                              for s in successors[i])
    return {i for i, spec in enumerate(nodes) if spec.get("spans_map") and not window_after[i]}
