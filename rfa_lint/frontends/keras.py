"""Keras 3 frontend (TensorFlow backend): a ``keras.Model`` -> plain receptive-field graph data.

Every model kind is read one way, by following its real data flow: the model is called once on
placeholders under ``tf.function`` tracing (nothing is computed) while every
``keras.Operation.__call__`` on the traced graph's tensors is recorded with its nesting.  Given
graph tensors, a functional or Sequential model runs its layers through ``__call__`` and a
subclassed model's ``call`` runs as plain Python, control flow included; so nested models are
expanded (their layers' calls are recorded too) and a layer called twice is two nodes.

A call of a layer in the dispatch table, or of a class registered with
:func:`rfa_lint.frontends.register_layer_handler`, is a node.  A call of another layer that
calls layers itself (a nested model, a user's block) is a container: its name prefixes its
children's paths.  Any other call is a pass-through node, reported when it changes the number
of positions (one that merges them all into one is global).  Edges come from the traced graph:
from a node's input tensor the graph is walked back, through plain tensor ops (``x + y`` in a
``call``), to the node outputs it reads.

The model is traced at the linted resolution when it takes it, so that layers whose window
depends on the map size (an unpadded kernel as large as its map) and the feature-map sizes
recorded on every node (``map_in`` / ``map_out``) are those of the linted images.

Source sites are recorded while models are built: ``keras.Operation.__new__`` runs once per
layer object, at its constructor call, so the creation stack there points at the user's
``layers.Conv2D(...)`` line.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import keras
import tensorflow as tf
from keras import layers
from keras.src.models.functional import Functional
from keras.src.utils import file_utils

import rfa_lint
from rfa_lint.frontends import TraceError, user_code
from rfa_lint.frontends.base import LayerHandler, PlainGraph, Shape, registered_handler
from rfa_lint.rf import windows as W
from rfa_lint.rf.graph import (
    EnrichedNetworkNode, InfoFilter, Kind, LayerDefinition, broadcast, filter_from, graph_from_plain,
    per_axis,
)

Site = tuple[str, int]

#: Used where a model declares no input size: the seed's trace size, RGB.
DEFAULT_SIDE, DEFAULT_CHANNELS = 224, 3

# -- source sites -----------------------------------------------------------------------------

#: Creation stacks of the layers and ops built in :func:`building_context`, innermost first.
_SITES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_user_file = user_code(keras, tf, rfa_lint)


def _user_frames(frames: Iterator[tuple[str, int]]) -> tuple[Site, ...]:
    """The (file, line) frames in user code, in the given order."""
    return tuple((path, line) for name, line in frames if (path := _user_file(name)))


def _creation_stack() -> tuple[Site, ...]:
    def frames() -> Iterator[tuple[str, int]]:
        frame = sys._getframe(1)
        while frame is not None:
            yield frame.f_code.co_filename, frame.f_lineno
            frame = frame.f_back

    return _user_frames(frames())


def _no_download(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(
        "rfa-lint builds models without weights and downloads nothing; pass weights=None"
    )


@contextlib.contextmanager
def building_context(meta: bool = True) -> Iterator[None]:
    """Build models in this context: every keras layer (and op) records its creation stack.

    ``meta`` is the frontends' common argument; Keras has no meta device, its builds are real.

    ``Operation.__new__`` runs once per object, at the constructor call in user code, before
    any ``__init__`` (so a user's layer subclass gets the line that built it, not its
    ``super().__init__()``).  Weight files are not fetched: ``keras.applications`` with
    pretrained weights fails with a clear message instead of downloading.
    """
    original_new, original_get_file = keras.Operation.__dict__["__new__"], file_utils.get_file

    def recording_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        obj = original_new.__func__(cls, *args, **kwargs)
        _SITES[obj] = _creation_stack()
        return obj

    keras.Operation.__new__ = staticmethod(recording_new)
    file_utils.get_file = _no_download
    try:
        yield
    finally:
        keras.Operation.__new__ = original_new
        file_utils.get_file = original_get_file


def image_parts(model: keras.Model) -> list:
    """None at all: a Keras model is traced symbolically, whole (see the torch frontend's)."""
    return []


def needs_values(error: BaseException) -> bool:
    """Never: a Keras build is real already, building again cannot help (see the torch
    frontend's)."""
    return False


# -- the dispatch table: layer class -> receptive-field parameters ----------------------------
#
# Keras's own layers are described by their attributes alone; each handler takes the traced
# spatial sizes all the same (:data:`rfa_lint.frontends.base.LayerHandler`).


def _define(layer: keras.Layer, kind: Kind, **params: Any) -> LayerDefinition:
    return LayerDefinition(name=type(layer).__name__, kind=kind, **params)


def _before(padding: str, span: int, stride: int, n_in: int | None, transposed: bool = False) -> int:
    """Padding positions before the map, as TensorFlow places them: ``same`` pads what the
    output size needs, the smaller half before (a transposed conv: ``span - stride`` in all);
    ``causal`` pads ``span - 1`` before; ``valid`` none."""
    if padding == "causal":
        return span - 1
    if padding != "same":
        return 0
    if transposed:
        return max(span - stride, 0) // 2
    return max((-(-n_in // stride) - 1) * stride + span - n_in, 0) // 2


def _window_reads(layer: keras.Layer, kernel: Sequence[int], strides: Sequence[int],
                  dilation: Sequence[int], in_shape: Shape, transposed: bool = False) -> tuple | None:
    """Per axis, which input positions each output position reads (None: sizes unknown)."""
    if len(in_shape) != len(kernel) or any(n is None for n in in_shape):
        return None
    reads = W.transposed_reads if transposed else W.conv_reads
    padding = getattr(layer, "padding", "valid")
    return tuple(
        reads(k, s, d, _before(padding, d * (k - 1) + 1, s, n, transposed))
        for k, s, d, n in zip(kernel, strides, dilation, in_shape)
    )


def _conv(layer: keras.Layer, in_shape: Shape, out_shape: Shape, transposed: bool = False) -> LayerDefinition:
    """A transposed conv with stride s makes the grid s times finer and reads ``ceil(k_eff / s)``
    input positions per axis: on the finer grid that is a kernel of ``(taps - 1) * s + 1``
    (k=4, s=2 reads 2 positions; k=2, s=2 reads 1)."""
    strides, kernel, dilation = tuple(layer.strides), tuple(layer.kernel_size), tuple(layer.dilation_rate)
    reads = _window_reads(layer, kernel, strides, dilation, in_shape, transposed)
    if transposed:
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        taps = [math.ceil(k / s) for k, s in zip(spans, strides)]
        return _finer_grid(layer, Kind.CONV, taps, strides, filters=layer.filters, reads=reads)
    return _define(
        layer,
        Kind.CONV,
        kernel_size=kernel,
        stride_size=strides,
        dilation=dilation,
        filters=getattr(layer, "filters", None),
        reads=reads,
    )


def _finer_grid(
    layer: keras.Layer, kind: Kind, taps: Sequence[int], factors: Sequence[int], **params: Any
) -> LayerDefinition:
    """A layer that makes the grid ``factors`` times finer and reads ``taps`` input positions."""
    kernel = tuple((t - 1) * f + 1 for t, f in zip(taps, factors))
    return _define(layer, kind, kernel_size=kernel, upsampling=tuple(factors), **params)


def _pool(layer: keras.Layer, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    reads = _window_reads(layer, pool, strides, (1,) * len(pool), in_shape)
    return _define(layer, Kind.POOL, kernel_size=pool, stride_size=strides, reads=reads)


def _shift(layer: keras.Layer, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    """ZeroPadding / Cropping: output position ``o`` is input position ``o - before`` (or
    ``o + cropped``): nothing mixed, but the windows shift against an unshifted branch."""
    pairs = getattr(layer, "padding", None)
    sign = 1
    if pairs is None:
        pairs, sign = layer.cropping, -1
    pairs = (pairs,) if isinstance(pairs[0], int) else pairs
    reads = tuple(W.conv_reads(1, 1, 1, sign * int(before)) for before, _ in pairs)
    return _define(layer, Kind.PASSTHROUGH, kernel_size=1, reads=reads)


#: Input positions per axis that one output position of an upsampling reads (TensorFlow's
#: half-pixel resize: bilinear 2 neighbours, bicubic 4, Lanczos-a 2a; nearest and area 1).
_TAPS = {"nearest": 1, "area": 1, "bilinear": 2, "bicubic": 4, "lanczos3": 6, "lanczos5": 10}


def _upsampling(layer: keras.Layer, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    factors = (layer.size,) if isinstance(layer.size, int) else tuple(layer.size)
    mode = getattr(layer, "interpolation", "nearest")
    taps = _TAPS[mode]
    reads = None
    if mode in ("nearest", "bilinear") and len(in_shape) == len(factors) and None not in in_shape:
        reads = tuple(W.resize_reads(n, n * f, mode) for n, f in zip(in_shape, factors))
    return _finer_grid(layer, Kind.RESIZE, [taps] * len(factors), factors, reads=reads)


def _dense(layer: keras.Layer, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    """Dense acts on the last axis at every position, like a 1x1 convolution."""
    return _define(layer, Kind.DENSE, kernel_size=1, units=layer.units)


def _whole_input(kind: Kind) -> LayerHandler:
    return lambda layer, in_shape, out_shape: _define(layer, kind, kernel_size=None)


def _per_position(kind: Kind) -> LayerHandler:
    return lambda layer, in_shape, out_shape: _define(layer, kind, kernel_size=1)


_CONVS = (
    layers.Conv1D, layers.Conv2D, layers.Conv3D,
    layers.DepthwiseConv1D, layers.DepthwiseConv2D, layers.SeparableConv1D, layers.SeparableConv2D,
)  # fmt: skip
_TRANSPOSED = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
_UPSAMPLINGS = (layers.UpSampling1D, layers.UpSampling2D, layers.UpSampling3D)
_POOLS = (
    layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D,
    layers.AveragePooling1D, layers.AveragePooling2D, layers.AveragePooling3D,
)  # fmt: skip
_GLOBALS = (
    layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D,
    layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D, layers.GlobalAveragePooling3D,
    layers.Flatten,
)  # fmt: skip
_MERGES = (
    layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum,
    layers.Concatenate,
)  # fmt: skip
_SHIFTS = (
    layers.ZeroPadding1D, layers.ZeroPadding2D, layers.ZeroPadding3D,
    layers.Cropping1D, layers.Cropping2D, layers.Cropping3D,
)  # fmt: skip
_PASSTHROUGHS = (
    layers.Rescaling, layers.Normalization, layers.BatchNormalization, layers.LayerNormalization,
    layers.Activation, layers.ReLU, layers.Dropout,
)  # fmt: skip

#: The one table, looked up along the layer class's MRO after the registered classes
#: (:func:`rfa_lint.frontends.base.register_layer_handler`).  A layer missing from both (Reshape,
#: Permute, a user's layer without sublayers) passes through if it keeps the number of spatial
#: positions, and is reported as unsupported if it changes it.
_HANDLERS: dict[type, LayerHandler] = {
    **dict.fromkeys(_CONVS, _conv),
    **dict.fromkeys(_TRANSPOSED, functools.partial(_conv, transposed=True)),
    **dict.fromkeys(_UPSAMPLINGS, _upsampling),
    **dict.fromkeys(_POOLS, _pool),
    **dict.fromkeys(_GLOBALS, _whole_input(Kind.GLOBAL)),
    layers.MultiHeadAttention: _whole_input(Kind.ATTENTION),
    layers.Dense: _dense,
    **dict.fromkeys(_MERGES, _per_position(Kind.MERGE)),
    **dict.fromkeys(_SHIFTS, _shift),
    **dict.fromkeys(_PASSTHROUGHS, _per_position(Kind.PASSTHROUGH)),
}


def _handler(op: keras.Operation) -> LayerHandler | None:
    """The handler of the nearest class along the MRO that is registered or in the table,
    registered first; a layer with a handler is one node (layers its ``call`` calls are not
    expanded)."""
    for cls in type(op).__mro__:
        handler = registered_handler(cls) or _HANDLERS.get(cls)
        if handler is not None:
            return handler
    return None


# -- recording the data flow ------------------------------------------------------------------


@dataclass(eq=False)
class _Call:
    """One recorded ``Operation.__call__``: graph tensors in and out, and the enclosing call."""

    op: keras.Operation
    inputs: list[tf.Tensor]
    parent: _Call | None
    known: bool
    outputs: list[tf.Tensor] = field(default_factory=list)
    has_children: bool = False

    @property
    def is_node(self) -> bool:
        """A layer of the table, or a call that made no recorded call (not a container)."""
        return self.known or not self.has_children

    @property
    def path(self) -> str:
        """The layer's path from the model down, the model itself left out.  A layer held by an
        attribute of its caller is named as the code names it, ``blocks.0.c1`` for
        ``self.blocks = [Block()]`` holding ``self.c1`` (as torch's module paths read); any other
        by its Keras name, ``block1/conv1`` (functional and Sequential models)."""
        segments, call = [], self
        while call.parent is not None:
            attribute = _attribute_names(call.parent.op).get(id(call.op))
            segments.append((attribute or call.op.name, attribute is not None))
            call = call.parent
        path, after_attribute = "", False
        for name, is_attribute in reversed(segments):
            path += ("." if is_attribute and after_attribute else "/" if path else "") + name
            after_attribute = is_attribute
        return path


def _attribute_names(owner: keras.Operation) -> dict[int, str]:
    """``id`` of each layer held by a public attribute of ``owner`` -> that attribute's path
    (``c3``; ``blocks.0`` for a list, ``heads.cls`` for a dict); the first name wins."""
    names: dict[int, str] = {}
    for attribute, value in vars(owner).items():
        if attribute.startswith("_"):
            continue
        items = (enumerate(value) if isinstance(value, (list, tuple))
                 else value.items() if isinstance(value, dict) else [(None, value)])
        for key, item in items:
            if isinstance(item, keras.Operation):
                names.setdefault(id(item), attribute if key is None else f"{attribute}.{key}")
    return names


def _graph_tensors(structure: Any) -> list[tf.Tensor]:
    return [x for x in tf.nest.flatten(structure) if tf.is_symbolic_tensor(x)]


class _Recorder:
    """Records the ``Operation.__call__`` calls made on tensors of the graph being traced.

    Keras also calls layers while building them, on placeholders of a scratch graph, and
    ``tf.function`` traces twice when the first trace creates variables: :meth:`start` at each
    trace and the graph check keep only the calls of the final trace.  Calls made inside a
    node (the dense layers inside MultiHeadAttention) are not recorded.
    """

    def __init__(self) -> None:
        self.calls: list[_Call] = []
        self.graph: tf.Graph | None = None
        self._stack: list[_Call] = []

    def start(self, graph: tf.Graph) -> None:
        self.calls, self.graph = [], graph

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        original = keras.Operation.__dict__["__call__"]

        def recording_call(op: keras.Operation, *args: Any, **kwargs: Any) -> Any:
            inputs = _graph_tensors((args, kwargs))
            parent = self._stack[-1] if self._stack else None
            if not inputs or inputs[0].graph is not self.graph or (parent and parent.known):
                return original(op, *args, **kwargs)
            call = _Call(op, inputs, parent, known=_handler(op) is not None)
            if parent is not None:
                parent.has_children = True
            self.calls.append(call)
            self._stack.append(call)
            try:
                outputs = original(op, *args, **kwargs)
            finally:
                self._stack.pop()
            call.outputs = _graph_tensors(outputs)
            return outputs

        keras.Operation.__call__ = recording_call
        try:
            yield
        finally:
            keras.Operation.__call__ = original


def _trace(model: keras.Model, shapes: list[tuple[int, ...]]):
    """Call ``model`` on placeholders of ``shapes``: (placeholders, outputs, recorded calls)."""
    recorder = _Recorder()
    placeholders: list[tf.Tensor] = []

    def run(*inputs: tf.Tensor) -> Any:
        recorder.start(inputs[0].graph)
        placeholders[:] = inputs
        return model(inputs[0] if len(inputs) == 1 else list(inputs))

    specs = [tf.TensorSpec(shape, tf.float32) for shape in shapes]
    try:
        with recorder.patched(), _any_input_size(model):
            concrete = tf.function(run, autograph=False).get_concrete_function(*specs)
    except Exception as error:
        raise TraceError(
            f"calling {type(model).__name__} {model.name!r} on inputs of shape "
            f"{[list(s) for s in shapes]} failed: {type(error).__name__}: {_reason(error)}"
        ) from error
    return placeholders, _graph_tensors(concrete.structured_outputs), recorder.calls


@contextlib.contextmanager
def _any_input_size(model: keras.Model) -> Iterator[None]:
    """Let the layers, not the ``keras.Input`` shapes, decide which sizes a model takes.

    A functional model (and each one nested in it) checks its inputs against the shapes it was
    built on; its convolutions and global pools take any size, a Flatten before a Dense does
    not, and then the trace fails and the model's own size is tried.
    """
    functionals = [m for m in model._flatten_layers() if isinstance(m, Functional)]
    saved = [m.__dict__.get("_manual_input_spec", _UNSET) for m in functionals]
    for functional in functionals:
        functional.input_spec = None
    try:
        yield
    finally:
        for functional, spec in zip(functionals, saved):
            if spec is _UNSET:
                del functional._manual_input_spec
            else:
                functional.input_spec = spec


_UNSET = object()


def _reason(error: Exception, limit: int = 300) -> str:
    """Keras's error text on one line, without its colour codes and argument listing."""
    text = str(error).split("Arguments received")[0]
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- from the recorded calls to the plain graph -----------------------------------------------


def _layout(op: keras.Operation | None) -> str:
    """Where a layer keeps its channels: its ``data_format``; Dense and attention act on the last
    axis; anything else follows Keras's image data format (channels last by default)."""
    fmt = getattr(op, "data_format", None)
    if fmt:
        return fmt
    if isinstance(op, (layers.Dense, layers.MultiHeadAttention)):
        return "channels_last"
    return keras.config.image_data_format()


def _sizes(shape: tf.TensorShape, layout: str) -> Shape:
    """The spatial sizes of a (batch, ..., channels) shape, None where unknown; ``()`` without
    spatial axes."""
    if shape.rank is None or shape.rank < 3:
        return ()
    dims = shape.as_list()
    return tuple(dims[1:-1] if layout == "channels_last" else dims[2:])


def _spatial(shape: tf.TensorShape, layout: str) -> list[int] | None:
    """The spatial sizes of a (batch, ..., channels) shape; None without spatial axes or sizes."""
    sizes = _sizes(shape, layout)
    return None if not sizes or None in sizes else [int(d) for d in sizes]


def _positions(tensor: tf.Tensor, layout: str) -> int | None:
    """Number of spatial positions of a tensor (1 without spatial axes), if known."""
    if tensor.shape.rank is not None and tensor.shape.rank < 3:
        return 1
    spatial = _spatial(tensor.shape, layout)
    return None if spatial is None else math.prod(spatial)


def _resizing(before: tf.Tensor, after: tf.Tensor, layout: str) -> tuple[int, int] | None:
    """(positions before, after) when a call changes their number, else None."""
    old, new = _positions(before, layout), _positions(after, layout)
    return None if None in (old, new) or old == new else (old, new)


#: Graph ops that pick positions rather than combine them: a slice down to one position is not
#: a global view.
_SELECTING_OPS = frozenset({"StridedSlice", "Slice", "GatherV2", "GatherNd", "ResourceGather"})


class _GraphBuilder:
    """Turns recorded calls into plain nodes; finds a tensor's producers by walking the graph."""

    def __init__(self) -> None:
        self.graph = PlainGraph()
        self._producer: dict[str, int] = {}  # tensor name -> node index
        self._sources: dict[str, frozenset[int]] = {}

    def add(self, name: str, layer: LayerDefinition, preds, paths, sites, tensors, layout, op=None) -> int:
        """A node, by index; ``tensors`` are its (input, output) tensors, input None for an input
        node; ``op`` the layer of the table that made it, whose weights it carries."""
        before, after = tensors
        maps = [None if t is None else _spatial(t.shape, layout) for t in tensors]
        node = self.graph.add(name, layer, preds, paths, sites, *maps)
        self.graph.set_channels(node, _channels(after, layout))
        if op is not None:
            self.graph.set_costs(node, *_costs(op, before, after, layout))
        if after is not None:  # a layer returning its input (Dropout) takes the tensor over
            self._producer[after.name] = node
        return node

    def add_call(self, call: _Call) -> None:
        """A layer's node; a layer the table lacks passes through, reported if it resizes."""
        preds = sorted(frozenset().union(*(self.sources(t) for t in call.inputs)))
        path, sites, layout = call.path or call.op.name, _SITES.get(call.op, ()), _layout(call.op)
        output = call.outputs[0] if call.outputs else None
        if call.known:
            out_shape = () if output is None else _sizes(output.shape, layout)
            layer = _handler(call.op)(call.op, _sizes(call.inputs[0].shape, layout), out_shape)
        else:
            layer = _define(call.op, Kind.MERGE if len(preds) > 1 else Kind.PASSTHROUGH, kernel_size=1)
            resized = output is not None and _resizing(call.inputs[0], output, layout)
            if resized and resized[1] == 1:
                layer = _define(call.op, Kind.GLOBAL, kernel_size=None)
            elif resized:
                self.graph.report(layer.name, [path], sites)
        node = self.add(path, layer, preds, [path], sites, (call.inputs[0], output), layout,
                        call.op if call.known else None)
        if call.known and _spans_its_map(call.op, layer, _spatial(call.inputs[0].shape, layout)):
            self.graph.mark_spans_map(node)

    def sources(self, tensor: tf.Tensor) -> frozenset[int]:
        """Nodes whose outputs reach ``tensor``, through ops that no recorded call made.

        Such ops are a ``call``'s glue (``x + y``, ``tf.concat``).  One that merges every
        position into one (``keras.ops.mean`` over the map, a reshape to a vector) sees the
        whole input: it becomes a global node.  One that changes the number of positions
        otherwise (``tf.nn.max_pool2d`` in a ``call``) is reported as unsupported.  Ops without
        inputs (placeholders of captured variables, constants) reach no node.
        """
        key = tensor.name
        if key in self._producer:
            return frozenset({self._producer[key]})
        if key not in self._sources:
            self._sources[key] = frozenset()  # cuts cycles of v1 while loops
            reached = [(t, self.sources(t)) for t in tensor.op.inputs]
            data = [t for t, found in reached if found]
            found = frozenset().union(*(found for _, found in reached))
            layout, op = keras.config.image_data_format(), tensor.op
            resized = data and _resizing(data[0], tensor, layout)
            if resized:
                sites = _user_frames((f.filename, f.lineno) for f in reversed(op.traceback))
                path = op.name.split("/", 1)[-1]  # without the model's own name scope
                if resized[1] != 1 or op.type in _SELECTING_OPS:
                    self.graph.report(op.type, [path], sites)
                else:
                    layer = LayerDefinition(op.type, kernel_size=None, kind=Kind.GLOBAL)
                    node = self.add(path, layer, sorted(found), [path], sites, (data[0], tensor), layout)
                    found = frozenset({node})
            self._sources[key] = found
        return self._sources[key]


def _channels(tensor: tf.Tensor | None, layout: str) -> int | None:
    """The values per position of a node's output, when its shape says it."""
    if tensor is None or tensor.shape.rank is None or tensor.shape.rank < 2:
        return None
    dims = tensor.shape.as_list()
    return dims[1] if layout == "channels_first" and len(dims) > 2 else dims[-1]


def _costs(op: keras.Operation, before: tf.Tensor, after: tf.Tensor | None, layout: str) -> tuple[int, int]:
    """The weights a layer holds (``params``) and its multiply-accumulates per sample (``macs``).

    Each kernel weight (rank 2 and more: not a bias, not a norm's scale) of a conv or a Dense
    meets each output position once, each input position for a transposed conv:
    ``positions * c_out * c_in / groups * prod(k)``.  Batches are of one sample here.
    """
    params = sum(math.prod(w.shape) for w in op.weights)
    if not isinstance(op, _CONVS + _TRANSPOSED + (layers.Dense,)) or after is None:
        return params, 0
    grid = before if isinstance(op, _TRANSPOSED) else after
    kernels = sum(math.prod(w.shape) for w in op.weights if len(w.shape) >= 2)
    return params, (_positions(grid, layout) or 0) * kernels


def _spans_its_map(op: keras.Operation, layer: LayerDefinition, in_map: list[int] | None) -> bool:
    """An unpadded conv or pool whose kernel (larger than 1) is as large as its input map."""
    if layer.kind not in (Kind.CONV, Kind.POOL) or in_map is None or getattr(op, "padding", None) != "valid":
        return False
    if any(u != 1 for u in per_axis(layer.upsampling, 1)):  # transposed: it writes a larger map
        return False
    kernel, fmap = broadcast(layer.effective_kernel, tuple(in_map))
    return any(k > 1 for k in kernel) and all(k >= m for k, m in zip(kernel, fmap))


# -- input shapes to trace at -----------------------------------------------------------------


def _attempts(
    model: keras.Model, input_shape: Any, resolution: Sequence[int] | None, declared: Sequence[int] | None
) -> list[list[tuple[int, ...]]]:
    """The input shapes to trace at, in order: the caller's ``input_shape`` alone; else the
    model's inputs resized to ``resolution``, then to ``declared``, then at their own size (an
    undefined side is ``DEFAULT_SIDE``).  A size whose axes do not fit the inputs is left out."""
    if input_shape is not None:
        several = isinstance(input_shape[0], (list, tuple))
        return [[tuple(int(d) for d in s) for s in (input_shape if several else [input_shape])]]
    own = _declared_shapes(model) or _first_layer_shape(model)
    if not own:
        raise TraceError(
            f"{type(model).__name__} {model.name!r} declares no input shape (no keras.Input, "
            "never built, no input spec on its first layer): pass input_shape, e.g. "
            f"(1, {DEFAULT_SIDE}, {DEFAULT_SIDE}, {DEFAULT_CHANNELS})"
        )
    layout = _input_layout(model)
    attempts: list[list[tuple[int, ...]]] = []
    for size in (resolution, declared, None):
        shapes = [_resized(shape, size, layout) for shape in own]
        if None not in shapes and shapes not in attempts:
            attempts.append(shapes)
    return attempts


def _resized(shape: Sequence[int | None], size: Sequence[int] | None, layout: str) -> tuple[int, ...] | None:
    """``shape`` with batch 1 and its spatial sides set to ``size`` (one value: every side);
    None if ``size`` has another number of axes.  Inputs without spatial axes keep theirs."""
    batch, *rest = shape
    axes = range(1, len(rest)) if layout == "channels_last" else range(2, len(rest) + 1)
    dims = [batch or 1, *rest]
    if size and len(rest) >= 2:
        size = tuple(size) * len(axes) if len(size) == 1 else tuple(size)
        if len(size) != len(axes):
            return None
        for axis, side in zip(axes, size):
            dims[axis] = side
    return tuple(DEFAULT_SIDE if d is None else int(d) for d in dims)


def _declared_shapes(model: keras.Model) -> list[tuple] | None:
    try:
        return [tuple(t.shape) for t in model.inputs]
    except AttributeError:  # a subclassed model; a Sequential without an Input
        pass
    config = model.get_build_config() or {}
    return [tuple(config["input_shape"])] if "input_shape" in config else None


def _first_layer_shape(model: keras.Model) -> list[tuple] | None:
    """An image of undefined size, of the rank the first layer's input spec asks for."""
    if not model.layers:
        return None
    first = model.layers[0]
    spec = first.input_spec[0] if isinstance(first.input_spec, list) else first.input_spec
    rank = spec and (spec.ndim or spec.min_ndim)
    if not rank or rank < 2:
        return None
    spatial = (None,) * (rank - 2)
    channels_last = _layout(first) == "channels_last"
    return [(1, *spatial, DEFAULT_CHANNELS) if channels_last else (1, DEFAULT_CHANNELS, *spatial)]


def _input_layout(model: keras.Model) -> str:
    """The layout of the model's inputs: that of its first layer with a ``data_format``."""
    sublayers = model._flatten_layers(include_self=False)
    return _layout(next((m for m in sublayers if getattr(m, "data_format", None)), None))


# -- the frontend contract --------------------------------------------------------------------


def is_model(obj: Any) -> bool:
    return isinstance(obj, keras.Model)


def to_plain(
    model: keras.Model,
    input_shape: Any = None,
    *,
    resolution: Sequence[int] | None = None,
    declared: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The model's RF graph as JSON-able data (:func:`rfa_lint.rf.graph.graph_to_plain` form).

    ``input_shape`` is the full shape of one input with its batch axis, e.g. (1, 224, 224, 3),
    or a list of shapes for a model with several inputs: it is the only shape tried.  Without
    it the model is traced at ``resolution`` (the linted spatial size, one value per axis or
    one for all), then at ``declared`` (the size the model says it takes), then at its inputs'
    own size; the first that the model accepts wins.  Every node carries ``map_in`` /
    ``map_out``, its input and output spatial sizes there.  Extra keys: ``unsupported``
    (layers and ops that change the number of positions in a way the dispatch table does not
    know, treated as pass-through), ``input_shape`` (the shape traced; a list of them for
    several inputs) and ``mode`` (``"eval"``: layers run in inference mode, as the PyTorch
    frontend's eval).
    """
    failures = []
    for shapes in _attempts(model, input_shape, resolution, declared):
        try:
            traced = _trace(model, shapes)
        except TraceError as error:
            failures.append(str(error))
            continue
        return _plain(model, shapes, *traced)
    raise TraceError("\n".join(failures))


def _plain(model: keras.Model, shapes: list[tuple[int, ...]], placeholders, outputs, calls) -> dict[str, Any]:
    builder, layout = _GraphBuilder(), _input_layout(model)
    for i, placeholder in enumerate(placeholders):
        name = "input" if len(placeholders) == 1 else f"input_{i}"
        layer = LayerDefinition(name="input", kernel_size=1, kind=Kind.INPUT)
        builder.add(name, layer, [], [], [], (None, placeholder), layout)
    for call in calls:
        if call.is_node:
            builder.add_call(call)
    reached = builder.sources(outputs[0]) if outputs else frozenset()
    output = max(reached, default=len(builder.graph.nodes) - 1)
    input_shape = [list(s) for s in shapes] if len(shapes) > 1 else list(shapes[0])
    return builder.graph.to_dict(output, input_shape, "eval", model.count_params())


def create_graph_from_tensorflow_model(
    model: keras.Model, filter_rf: str | InfoFilter | None = None, input_shape: Any = None
) -> EnrichedNetworkNode:
    """The seed's entry point: the model's RF graph, as its output node; ``filter_rf`` is the
    seed's RF filter for every node (``"inf"``, None, or a function)."""
    return graph_from_plain(to_plain(model, input_shape), filter_from(filter_rf))
