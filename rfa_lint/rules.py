'''The one registry of rule codes: each rule is one object with everything about it.

A :class:`Rule` carries its code and name, its message template and the typed values that fill
it (a frozen dataclass per shape of message: a missing or misspelt value is a TypeError, never
a blank), its documentation under ruff's headings, and for the receptive-field rules the check
that decides it.  ``rfa-lint rule CODE``, the pages under ``docs/rules/``, the README's rule
table, SARIF rule metadata and every finding's text all come from here.  Messages follow
pycodestyle's shape: one line, lowercase, measured values with their unit, never the code
itself (the front doors put it in front).
'''

from __future__ import annotations

import math
import string
import textwrap
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from rfa_lint.numbers import fmt
from rfa_lint.rf.analysis import (Verdict, classify, has_window, input_feature_map, input_resolution_range,
                                  input_rf, kernel_covers_feature_map, kernel_fit_from, productive_from)
from rfa_lint.rf.graph import EnrichedNetworkNode, PerAxis, broadcast, per_axis

#: ruff's documentation headings, in order; the first four are in every rule's text.
HEADINGS = ("What it does", "Why is this bad?", "Example", "Use instead", "Known problems", "Options")
REQUIRED_HEADINGS = HEADINGS[:4]
AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
#: A finding's severity, as SARIF names it: a layer that wastes work, a model not analysed.
LEVELS = ("warning", "error")


# --- the values of messages ----------------------------------------------------------------------

@dataclass(frozen=True)
class Fields:
    """Base of the values a message is made of.  A tuple is per-axis numbers, shown with
    :func:`fmt`; a property may be used in a template like a field."""

    def details(self) -> dict[str, Any]:
        """What a finding's ``details`` add for this message (JSON-ready)."""
        return {}

    @classmethod
    def of(cls, failure: Failure) -> Fields:
        """The values of a "not analysed" message, from what the pipeline knows of the failure;
        only the shapes such rules use have one (a rule standing for a sandbox status must)."""
        raise TypeError(f"{cls.__name__} is not the message of a model that was not analysed")


@dataclass(frozen=True)
class Failure:
    """What the pipeline knows of a model, or a file, that was not analysed: the rule's message
    values are made from it (:meth:`Fields.of`)."""

    model: str
    detail: str
    memory_mb: int
    frameworks: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerFields(Fields):
    """A layer finding's values: ``layer`` is the layer as the message names it."""

    layer: str
    res: PerAxis

    @property
    def needs(self) -> PerAxis:
        """The resolution from which this finding goes away: the instance that needs the most
        names a line's finding."""
        raise NotImplementedError


@dataclass(frozen=True)
class Saturation(LayerFields):
    """RFA101, RFA102: what the layer's input sees, what it sees itself, what it needs."""

    input_rf: PerAxis
    own_rf: PerAxis
    productive_from: PerAxis

    @property
    def needs(self) -> PerAxis:
        return self.productive_from


@dataclass(frozen=True)
class Border(LayerFields):
    """RFA103: the axes on which the layer's RF passes the image."""

    own_rf: PerAxis
    axes: str
    productive_from: PerAxis

    @property
    def needs(self) -> PerAxis:
        return self.productive_from


@dataclass(frozen=True)
class KernelCover(LayerFields):
    """RFA104: the kernel, the map it runs on, the resolution from which the map outgrows it."""

    kernel: PerAxis
    feature_map: PerAxis
    fits_from: PerAxis

    @property
    def needs(self) -> PerAxis:
        return self.fits_from

    def details(self) -> dict[str, Any]:
        return {"kernel": json_numbers(self.kernel), "feature_map": json_numbers(self.feature_map),
                "fits_from": json_numbers(self.fits_from)}


@dataclass(frozen=True)
class OutsideRange(Fields):
    """RFA110: the model's productive range and the resolution outside it."""

    model: str
    res: PerAxis
    low: PerAxis
    high: PerAxis

    @property
    def below(self) -> bool:
        res, low = broadcast(per_axis(self.res, 1), self.low)
        return any(r < lo for r, lo in zip(res, low))

    @property
    def range(self) -> str:
        low, high = fmt(self.low), fmt(self.high)
        return f"exactly {low}px" if low == high else f"{low}-{high}px"

    @property
    def side(self) -> str:
        return "below" if self.below else "above"

    @property
    def meaning(self) -> str:
        """What the bound passed means."""
        if self.below:
            return f"the model needs at least {fmt(self.low)}px for every layer to be productive"
        return f"past {fmt(self.high)}px no layer's receptive field (RF) covers the whole image"

    def details(self) -> dict[str, Any]:
        return {"model": self.model, "resolution": json_numbers(self.res),
                "range": [json_numbers(self.low), json_numbers(self.high)]}


@dataclass(frozen=True)
class Model(Fields):
    model: str


@dataclass(frozen=True)
class ModelDetail(Fields):
    model: str
    detail: str

    @classmethod
    def of(cls, failure: Failure) -> ModelDetail:
        return cls(failure.model, failure.detail)


@dataclass(frozen=True)
class ModelParams(Fields):
    model: str
    params: str

    @classmethod
    def of(cls, failure: Failure) -> ModelParams:
        return cls(failure.model, failure.detail)


@dataclass(frozen=True)
class MemoryLimit(Fields):
    model: str
    limit: str

    @classmethod
    def of(cls, failure: Failure) -> MemoryLimit:
        return cls(failure.model, f"{failure.memory_mb} MiB")


@dataclass(frozen=True)
class Detail(Fields):
    detail: str

    @classmethod
    def of(cls, failure: Failure) -> Detail:
        return cls(failure.detail)


@dataclass(frozen=True)
class Framework(Fields):
    framework: str

    def details(self) -> dict[str, Any]:
        return {"framework": self.framework}

    @classmethod
    def of(cls, failure: Failure) -> Framework:
        return cls(" and ".join(failure.frameworks))


@dataclass(frozen=True)
class Unsupported(Fields):
    layer: str
    type: str


@dataclass(frozen=True)
class ResolutionAxes(Fields):
    model: str
    res: PerAxis
    given: int
    axes: int


def json_numbers(values: PerAxis) -> list[int | float | None]:
    """Per-axis numbers for JSON: whole numbers as ints, infinity as None (JSON has none)."""
    return [None if math.isinf(v) else int(v) if float(v).is_integer() else float(v) for v in values]


# --- what the checks look at -----------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    """A judged layer of an analysed model (:func:`rfa_lint.rf.analysis.judged`), at a resolution.

    ``feature_map`` is the map its kernel ran on when the model was traced at ``resolution``;
    None when it was traced at another size (the map is then estimated from the strides).
    """

    node: EnrichedNetworkNode
    resolution: PerAxis
    feature_map: PerAxis | None = None
    filter_kernel_size_1: bool = False

    @property
    def verdict(self) -> Verdict:
        return classify(self.node, self.resolution, self.filter_kernel_size_1)

    @property
    def name(self) -> str:
        """The layer as its model names it (its first module path), quoted."""
        node = self.node
        return f"'{node.module_paths[0] if node.module_paths else node.name}'"


@dataclass(frozen=True)
class AnalysedModel:
    """An analysed model's graph, at a resolution."""

    name: str
    graph: EnrichedNetworkNode
    resolution: PerAxis
    filter_kernel_size_1: bool = False


def _saturation(verdict: Verdict) -> Callable[[Layer], Saturation | None]:
    def check(layer: Layer) -> Saturation | None:
        if layer.verdict is not verdict:
            return None
        node = layer.node
        return Saturation(layer.name, layer.resolution, input_rf(node, layer.resolution),
                          node.rf_min_at(layer.resolution), productive_from(node))
    return check


def _border(layer: Layer) -> Border | None:
    if layer.verdict is not Verdict.BORDER:
        return None
    own = layer.node.rf_min_at(layer.resolution)
    res_axes, own_axes = broadcast(per_axis(layer.resolution, 1), own)
    names = AXIS_NAMES.get(len(own_axes), tuple(str(i) for i in range(len(own_axes))))
    axes = ", ".join(n for n, rf, r in zip(names, own_axes, res_axes) if rf > r)
    return Border(layer.name, layer.resolution, own, axes, productive_from(layer.node))


def _kernel_cover(layer: Layer) -> KernelCover | None:
    node = layer.node
    if not kernel_covers_feature_map(node, layer.resolution, layer.feature_map):
        return None
    return KernelCover(layer.name, layer.resolution, node.layer_info.effective_kernel,
                       input_feature_map(node, layer.resolution, layer.feature_map), kernel_fit_from(node))


def _outside_range(model: AnalysedModel) -> OutsideRange | None:
    if not has_window(model.graph):
        return None
    low, high = input_resolution_range(model.graph, filter_kernel_size_1=model.filter_kernel_size_1)
    res, low, high = broadcast(per_axis(model.resolution, 1), low, high)
    if any(r < lo for r, lo in zip(res, low)) or any(r > hi for r, hi in zip(res, high)):
        return OutsideRange(model.name, model.resolution, low, high)
    return None


def instances(name: str, per_model: Mapping[str, int]) -> str:
    """A line's layer as a message names it: the instance that needs the most, then how many more
    the line built in each model (``per_model``: the instances of each model, the named one's
    model first), ``'b.conv' (built here; so are 2 more in A and 3 in B)``.  Its module path is
    the model's, not the file's: "built here" says that it is this line's."""
    counts = dict(per_model)
    first = next(iter(counts))
    counts[first] -= 1
    parts = [(model, count) for model, count in counts.items() if count]
    if not parts:
        return name
    shown = [f"{count}{' more' if model == first else ''} in {model}"
             for model, count in parts[:MODELS_NAMED]]
    rest = parts[MODELS_NAMED:]
    if rest:
        shown.append(f"{sum(count for _, count in rest)} in {_count(len(rest), 'other model')}")
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    verb = "is" if sum(counts.values()) == 1 else "are"
    return f"{name} (built here; so {verb} {listed})"


#: the models a message names one by one, the others counted together
MODELS_NAMED = 3


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def traced_elsewhere(res: PerAxis, traced: PerAxis) -> str:
    """The note of a finding whose model refused the linted resolution and was traced at
    another: its receptive fields hold, but shape-dependent layers were sized there."""
    return f"traced at {fmt(traced)}px: the model refused {fmt(res)}px"


# --- the rules ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One lint rule, and everything the pipeline and the reports need to know about it.

    ``check`` decides the rule where the linter's report loop asks it: a layer rule's takes a
    :class:`Layer`, a model rule's an :class:`AnalysedModel`, and returns the message's values
    or None.  Rules without one are raised by the pipeline: they say that a model, or a file,
    was *not analysed* (it needs arguments, its forward raised, ...).  For those:

    - ``status`` is the sandbox status (:class:`rfa_lint.sandbox.status.Status`, by its value)
      the rule stands for, if any; its message values come from the failure
      (:meth:`Fields.of` of its ``fields``);
    - ``cacheable`` says whether the finding is decided by what the cache key covers (the text,
      the options, the installed distributions): a timeout, the memory limit or a crash depend
      on the machine and its load, and are retried by the next run instead.  Every such rule
      must say (a rule without it fails at import);
    - ``marks_block`` is True for the ways a building block fails on its own (it needs
      arguments, or its forward needs the net around it): when an analysed model of the run
      builds it, it is a block, not a model the user expects analysed, and is not reported;
    - ``level`` and ``tags`` (SARIF, GitLab, the LSP's severity) say "error", "not-analysed".

    ``on_by_default`` is False for most of them: a linter must not fail a pre-commit run over
    code it could not check, so these are reported only when selected (``--select RFA9``,
    flake8 ``--extend-select RFA9``); every run still lists those models as skipped.
    ``sections`` is the documentation, markdown per heading of :data:`HEADINGS`.
    """

    code: str
    name: str
    summary: str
    message: str
    fields: type[Fields]
    sections: tuple[tuple[str, str], ...]
    check: Callable[[Any], Fields | None] | None = None
    on_by_default: bool = True
    level: str = "warning"
    tags: tuple[str, ...] = ("receptive-field", "efficiency")
    status: str | None = None
    cacheable: bool | None = None
    marks_block: bool = False

    def __post_init__(self) -> None:
        if self.cacheable is None:
            raise TypeError(f"{self.code}: a rule must say whether its findings may be cached")
        if self.check is not None and (self.status is not None or self.marks_block):
            raise TypeError(f"{self.code}: a rule with a check stands for no sandbox status "
                            "and marks no block")
        if self.level not in LEVELS:
            raise TypeError(f"{self.code}: level {self.level!r} is none of {', '.join(LEVELS)}")

    def decide(self, subject: Any) -> Fields | None:
        """The message values of a finding on ``subject`` (a :class:`Layer`, an
        :class:`AnalysedModel`), or None; TypeError for a rule the pipeline raises itself."""
        if self.check is None:
            raise TypeError(f"{self.code} is raised by the pipeline, not decided by a check")
        return self.check(subject)

    def failure_values(self, failure: Failure) -> Fields:
        """The message values of a model, or a file, that this rule says was not analysed."""
        return self.fields.of(failure)

    def render(self, values: Fields) -> str:
        """The message with ``values``, which must be of this rule's :attr:`fields` type."""
        if type(values) is not self.fields:
            raise TypeError(f"{self.code} takes {self.fields.__name__}, not {type(values).__name__}")
        return self.message.format_map(_Attributes(values))

    @property
    def placeholders(self) -> frozenset[str]:
        """The names the message template reads from its values."""
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.message) if name)

    @property
    def explanation(self) -> str:
        """The documentation as markdown, from "## What it does" on."""
        return "\n\n".join(f"## {heading}\n{body}" for heading, body in self.sections)

    def section(self, heading: str) -> str:
        return dict(self.sections).get(heading, "")


class _Attributes(dict[str, str]):
    """A template's lookups as attribute reads: a name the values lack raises (AttributeError),
    it never formats as a blank."""

    def __init__(self, fields: Fields) -> None:
        super().__init__()
        self.fields = fields

    def __missing__(self, key: str) -> str:
        value = getattr(self.fields, key)
        return fmt(value) if isinstance(value, tuple) else str(value)


def field_names(kind: type[Fields]) -> frozenset[str]:
    """The values ``kind`` is built from."""
    return frozenset(f.name for f in fields(kind))


def _rule(code: str, name: str, summary: str, message: str, kind: type[Fields], *, what: str, why: str,
          example: str, use_instead: str, known_problems: str = "", options: str = "",
          check: Callable[[Any], Fields | None] | None, **metadata: Any) -> Rule:
    """A receptive-field rule: decided by its check, on the analysis the cache stores."""
    texts = (what, why, example, use_instead, known_problems, options)
    sections = tuple((heading, textwrap.dedent(text).strip())
                     for heading, text in zip(HEADINGS, texts) if text)
    return Rule(code, name, summary, message, kind, sections, check, **{"cacheable": True, **metadata})


def _not_analysed(*args: Any, cacheable: bool, on_by_default: bool = False, **kwargs: Any) -> Rule:
    """A rule saying that a model, or a file, was not analysed: an error, off unless selected
    (some are on: see each), which must say whether it may be cached (see :class:`Rule`)."""
    return _rule(*args, check=None, cacheable=cacheable, on_by_default=on_by_default, level="error",
                 tags=("not-analysed",), **kwargs)


#: The Options texts many rules begin with, indented as the texts of :data:`_ALL` that they
#: begin (dedented together, a rule's own options would otherwise turn into a code block)
RESOLUTION_OPTION = """
        - `res` (`--res N` or `HxW`, flake8 `--rfa-res`, `res = 32` under `[tool.rfa-lint]`): the
          resolution layers are judged at.
        """
NOT_ANALYSED_OPTION = """
        Off by default, as every "not analysed" code: select it with `--select RFA9` (flake8:
        `--extend-select RFA9`, pyproject: `select = ["RFA"]`).  Without it the run's summary still
        lists the model as skipped.
        """

_ALL = (
    _rule(
        "RFA101",
        "unproductive-layer",
        "layer whose input already sees the whole image, so it adds no context",
        "unproductive layer {layer} at {res}px: its input's receptive field (RF) of {input_rf}px already "
        "covers the image, its own RF is {own_rf}px (this layer needs at least {productive_from}px)",
        Saturation,
        check=_saturation(Verdict.UNPRODUCTIVE),
        what="""
        Reports a convolution or pooling layer whose input already has a receptive field (RF)
        at least as large as the image, and whose own RF is larger still.
        """,
        why="""
        A layer can only add context the image has.  Once every input position sees the whole
        image, a 3x3 convolution mixes positions that all see the same pixels: it costs compute
        and parameters but cannot learn anything a 1x1 layer could not.  This usually means the
        network was designed for a larger input (an ImageNet model trained at 32px).
        """,
        example="""
        ```python
        # rfa-lint --res 16
        from torch import nn


        def net() -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),  # RF 3; after the stride each 3x3 adds 4
                nn.Conv2d(16, 16, 3, padding=1),  # RF 7
                nn.Conv2d(16, 16, 3, padding=1),  # RF 11
                nn.Conv2d(16, 16, 3, padding=1),  # RF 15
                nn.Conv2d(16, 16, 3, padding=1),  # RF 19: past 16px (critical, RFA102)
                nn.Conv2d(16, 16, 3, padding=1),  # RF 23 from an input that sees 19px: RFA101
            )
        ```
        """,
        use_instead="""
        Stop where the RF reaches the image, or train at the "needs at least" resolution of the
        message (here 23px) or more:
        ```python
        # rfa-lint --res 16
        from torch import nn


        def net() -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),  # RF 3
                nn.Conv2d(16, 16, 3, padding=1),  # RF 7
                nn.Conv2d(16, 16, 3, padding=1),  # RF 11
                nn.Conv2d(16, 16, 3, padding=1),  # RF 15: every layer still adds context
            )
        ```
        Reducing downsampling early (smaller strides, fewer pooling layers) lets the RF grow
        more slowly, too.
        """,
        known_problems="""
        The receptive field is the theoretical one: the pixels that can influence a position.
        The *effective* receptive field of a trained network is usually smaller, so a layer
        rfa-lint finds productive may still add little.
        """,
        options=RESOLUTION_OPTION + """
        - `filter-kernel-size-1`: never report 1x1 layers (they add no context anyway).
        """,
    ),
    _rule(
        "RFA102",
        "critical-layer",
        "layer that pushes the receptive field past the image",
        "critical layer {layer} at {res}px: its receptive field (RF) grows from {input_rf}px to {own_rf}px, "
        "past the image (this layer needs at least {productive_from}px)",
        Saturation,
        check=_saturation(Verdict.CRITICAL),
        what="""
        Reports the layer whose input still sees less than the image but whose own receptive
        field (RF) exceeds it: the point where the network starts to outgrow the input.
        """,
        why="""
        It is not wasted yet, but it is the last layer that adds context.  Every layer after it
        with a kernel larger than 1x1 will be unproductive (RFA101), so this is where the
        architecture and the resolution stop fitting together.
        """,
        example="""
        ```python
        # rfa-lint --res 16
        from torch import nn


        def net() -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(3, 16, 5, padding=2),  # RF 5
                nn.Conv2d(16, 32, 5, stride=2, padding=2),  # RF 9, stride product 2 after it
                nn.Conv2d(32, 64, 5, padding=2),  # RF 9 + 4*2 = 17 > 16: critical
            )
        ```
        """,
        use_instead="""
        Usually nothing, if the layers after it are productive.  Otherwise treat it like RFA101:
        train at the "needs at least" resolution of the message, or let the RF grow more slowly:
        ```python
        # rfa-lint --res 16
        from torch import nn


        def net() -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(3, 16, 5, padding=2),  # RF 5
                nn.Conv2d(16, 32, 5, stride=2, padding=2),  # RF 9
                nn.Conv2d(32, 64, 3, padding=1),  # RF 9 + 2*2 = 13 <= 16
            )
        ```
        """,
        options=RESOLUTION_OPTION + """
        - `filter-kernel-size-1`: never report 1x1 layers.
        """,
    ),
    _rule(
        "RFA103",
        "border-case-layer",
        "layer whose receptive field passes the image on some axes only",
        "border-case layer {layer} at {res}px: its receptive field (RF) of {own_rf}px passes the image "
        "along {axes} only",
        Border,
        check=_border,
        what="""
        Reports a layer whose receptive field (RF) exceeds the image along some axes (height or
        width) but not all, for non-square kernels or non-square inputs such as 32x256.
        """,
        why="""
        Along the exceeded axis the layer adds no context, along the others it still does.
        Half-useful layers often hint at an input shape the network was not designed for.
        """,
        example="""
        ```python
        # rfa-lint --res 32x256
        from torch import nn


        def net() -> nn.Module:  # 7x1 kernels grow the height RF only: 7, 13, 19, 25, 31, 37
            return nn.Sequential(*[nn.Conv2d(16 if i else 3, 16, (7, 1), padding=(3, 0)) for i in range(6)])
        ```
        """,
        use_instead="""
        Match kernel shapes and strides to the input's aspect ratio, or resize the input so the
        axes grow alike:
        ```python
        # rfa-lint --res 32x256
        from torch import nn


        def net() -> nn.Module:  # RFs 3x7 ... 13x37 after six layers: within 32x256
            return nn.Sequential(*[nn.Conv2d(16 if i else 3, 16, (3, 7), padding=(1, 3)) for i in range(6)])
        ```
        """,
        options=RESOLUTION_OPTION + """
        - `filter-kernel-size-1`: never report 1x1 layers.
        """,
    ),
    _rule(
        "RFA104",
        "kernel-covers-feature-map",
        "kernel as large as its whole input feature map, so it acts like a dense layer",
        "kernel of {layer} covers its whole input feature map at {res}px (kernel {kernel}, map "
        "{feature_map}): it acts as a dense layer (the map outgrows the kernel from {fits_from}px)",
        KernelCover,
        check=_kernel_cover,
        what="""
        Reports a layer whose (dilated) kernel is at least as large as the feature map it is
        applied to, after all the downsampling before it.
        """,
        why="""
        Such a kernel has no room to slide: it acts like a fully connected layer over the whole
        map, most of its weights only ever see padding, and it loses the translation
        equivariance that makes a convolution a convolution.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn


        def net() -> nn.Module:
            return nn.Sequential(
                # four stride-2 convs: maps 16, 8, 4, 2
                *[nn.Conv2d(16 if i else 3, 16, 3, stride=2, padding=1) for i in range(4)],
                nn.Conv2d(16, 16, 3, padding=1),  # a 3x3 kernel on a 2x2 map
            )
        ```
        """,
        use_instead="""
        A 1x1 convolution or a linear layer there, less downsampling, or training from the
        resolution the message gives (here 49px: from there the map, 32/16 per axis rounded up,
        is larger than 3):
        ```python
        # rfa-lint --res 32
        from torch import nn


        def net() -> nn.Module:
            return nn.Sequential(
                # four stride-2 convs: maps 16, 8, 4, 2
                *[nn.Conv2d(16 if i else 3, 16, 3, stride=2, padding=1) for i in range(4)],
                nn.Conv2d(16, 16, 1),  # mixes channels per position
            )
        ```
        """,
        known_problems="""
        When the model refused the linted resolution and was traced at another size (the
        message then says so), the map is estimated from the strides, rounding up at each.
        """,
        options=RESOLUTION_OPTION,
    ),
    _rule(
        "RFA110",
        "resolution-outside-range",
        "resolution lies outside the model's productive range",
        "resolution {res}px is {side} the productive range of '{model}' ({range}): {meaning}",
        OutsideRange,
        check=_outside_range,
        what="""
        Compares the resolution with the model's productive range, reported at the model's
        class or factory line.  The minimum is the largest receptive field (RF) any layer needs
        to be productive: below it some layer is critical or unproductive.  The maximum is the
        largest RF of any layer: above it even that layer sees less than the whole image.  A
        model without a window layer (a conv or pool whose kernel spans more than one position:
        activations, norms, 1x1 projections, dense layers, a model traced without spatial axes)
        has no range, and no finding.
        """,
        why="""
        Below the range you pay for layers that add nothing (see RFA101).  Above it the model
        cannot relate distant parts of the image unless a global pooling or attention layer
        does so.
        """,
        example="""
        ```python
        # rfa-lint --res 16
        from torch import nn


        def net() -> nn.Module:  # RFs 3, 7, 11, 15, 19, 23: every layer productive from 23px
            return nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),
                *[nn.Conv2d(16, 16, 3, padding=1) for _ in range(5)],
            )
        ```
        """,
        use_instead="""
        A resolution within the range, or an architecture whose depth and downsampling move
        the range to yours:
        ```python
        # rfa-lint --res 16
        from torch import nn


        class Net(nn.Module):  # RFs: stem 3, a 7, b 11; the sum 3 to 11; c 7 to 15; d 11 to 19
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
                self.a, self.b, self.c, self.d = (nn.Conv2d(16, 16, 3, padding=1) for _ in range(4))

            def forward(self, x):  # every layer productive from 11px; d sees 19px at most
                x = self.stem(x)
                x = x + self.b(self.a(x))
                return self.d(self.c(x))
        ```
        """,
        known_problems="""
        The maximum leaves out receptive fields through a global gate (a squeeze-and-excitation
        block), as the seed library's `filter_all_inf_rf=True` does; global attention makes it
        infinite.
        """,
        options=RESOLUTION_OPTION + """
        - `filter-kernel-size-1`: leave 1x1 layers out of the range.
        """,
    ),
    _not_analysed(
        "RFA900",
        "execution-disabled",
        "model was not analysed because running model code is disabled",
        "model '{model}' was not built: execution is disabled (drop --no-exec to analyse it)",
        Model,
        cacheable=True,
        what="""
        Marks each model that `--no-exec` (flake8: `--rfa-no-exec`) kept from being built.
        """,
        why="""
        Receptive fields come from the built model, so nothing was checked for it.
        """,
        example="""
        ```python
        # rfa-lint --no-exec
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)

            def forward(self, x):
                return self.conv(x)
        ```
        """,
        use_instead="""
        Run without `--no-exec` where running the model code is safe (rfa-lint builds models
        in a child process, without weights and without network access), or ignore RFA900.
        """,
        options=NOT_ANALYSED_OPTION + """
        - `no-exec` (`--no-exec`, flake8 `--rfa-no-exec`): never run model code.
        """,
    ),
    _not_analysed(
        "RFA901",
        "import-failed",
        "file raised an error when imported",
        "cannot import '{model}': {detail} (make the file importable where rfa-lint runs)",
        ModelDetail,
        cacheable=True, status="import-failed",
        what="""
        Reports a file whose import failed in rfa-lint's child process, including an
        `ImportError` for a package that is not installed and a `sys.exit()` at import time.
        """,
        why="""
        Models are built from the imported module; nothing in the file was analysed.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from my_private_package import Block  # not installed where rfa-lint runs
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block()
        ```
        """,
        use_instead="""
        Run rfa-lint in the environment where your models import (for pre-commit, a
        `repo: local` hook with `language: system`), or fix the error named in the message:
        `python path/to/file.py` reproduces it.
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA902",
        "needs-arguments",
        "model constructor needs arguments nobody gave",
        "model '{model}' needs constructor arguments ({params}); give them with "
        "'# rfa-lint: build(...)' on its line",
        ModelParams,
        cacheable=True, status="needs-arguments", marks_block=True,
        what="""
        Reports a model class whose constructor has required parameters, when no directive or
        configuration gives them and no other model of the file builds it.
        """,
        why="""
        rfa-lint cannot guess sizes such as channel counts, so the model was not analysed.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn


        class Net(nn.Module):
            def __init__(self, depth, width=16):
                super().__init__()
                self.convs = nn.Sequential(*[nn.Conv2d(width if i else 3, width, 3) for i in range(depth)])

            def forward(self, x):
                return self.convs(x)
        ```
        """,
        use_instead="""
        Give literal arguments in a comment on the class line or right above it (or in
        `pyproject.toml` under `[tool.rfa-lint.models]`); `# rfa-lint: skip` leaves the model
        out:
        ```python
        # rfa-lint --res 32
        from torch import nn


        # rfa-lint: build(2, width=8)
        class Net(nn.Module):
            def __init__(self, depth, width=16):
                super().__init__()
                self.convs = nn.Sequential(*[nn.Conv2d(width if i else 3, width, 3) for i in range(depth)])

            def forward(self, x):
                return self.convs(x)
        ```
        """,
        options=NOT_ANALYSED_OPTION + """
        - `models` (`[tool.rfa-lint.models.Net]`, `args = [...]`, `kwargs = {...}`): the
          arguments in configuration.
        """,
    ),
    _not_analysed(
        "RFA903",
        "build-failed",
        "model constructor raised an error",
        "building '{model}' failed: {detail} (fix it or pass working arguments with "
        "'# rfa-lint: build(...)')",
        ModelDetail,
        cacheable=True, status="build-failed", marks_block=True,
        what="""
        Reports a model whose constructor raised while rfa-lint built it (without weights, on
        the `meta` device).
        """,
        why="""
        The model was not analysed.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn

        WIDTHS = {18: 64, 34: 64}


        class Net(nn.Module):
            def __init__(self, depth=7):
                super().__init__()
                self.conv = nn.Conv2d(3, WIDTHS[depth], 3)  # KeyError: 7

            def forward(self, x):
                return self.conv(x)
        ```
        """,
        use_instead="""
        Fix the error named in the message (its `file:line` points into your code), or give
        arguments that work with `# rfa-lint: build(...)`:
        ```python
        # rfa-lint --res 32
        from torch import nn

        WIDTHS = {18: 64, 34: 64}


        # rfa-lint: build(depth=18)
        class Net(nn.Module):
            def __init__(self, depth=7):
                super().__init__()
                self.conv = nn.Conv2d(3, WIDTHS[depth], 3)

            def forward(self, x):
                return self.conv(x)
        ```
        A constructor that needs real weights (it loads a checkpoint) can be left out with
        `# rfa-lint: skip`.
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA904",
        "trace-failed",
        "model's forward raised at every input size tried",
        "tracing '{model}' failed at every input size: {detail} (give a working shape with "
        "'# rfa-lint: input(...)')",
        ModelDetail,
        cacheable=True, status="trace-failed", marks_block=True,
        what="""
        Reports a model whose forward pass raised for every example input rfa-lint tried.
        """,
        why="""
        The layer graph comes from running forward once; without it nothing was analysed.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)
                self.fc = nn.Linear(8 * 26 * 26, 10)  # sized for 28x28 images

            def forward(self, x):
                return self.fc(self.conv(x).flatten(1))
        ```
        """,
        use_instead="""
        Give the input shape to trace with, batch and channels included:
        ```python
        # rfa-lint --res 32
        from torch import nn


        # rfa-lint: input(1, 3, 28, 28)
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)
                self.fc = nn.Linear(8 * 26 * 26, 10)

            def forward(self, x):
                return self.fc(self.conv(x).flatten(1))
        ```
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA905",
        "unsupported-layer",
        "layer kind that changes spatial size and that rfa-lint cannot interpret",
        "unsupported layer {layer} of type {type} changes the spatial size (register a "
        "receptive-field handler for it)",
        Unsupported,
        cacheable=True, on_by_default=True,
        what="""
        Reports a layer, or an operation in a layer's forward, that changes the spatial size of
        its input in a way rfa-lint has no receptive-field rule for (a custom pooling, a
        Fourier-domain resize, a sampling grid).
        """,
        why="""
        rfa-lint cannot know the kernel and stride of an unknown layer, so the receptive fields
        of everything after it are unknown and not reported.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        import torch
        from torch import nn


        class HalfSpectrum(nn.Module):  # halves the map in the Fourier domain
            def forward(self, x):
                h, w = x.shape[-2:]
                return torch.fft.irfft2(torch.fft.rfft2(x), s=(h // 2, w // 2))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)
                self.down = HalfSpectrum()

            def forward(self, x):
                return self.down(self.conv(x))
        ```
        """,
        use_instead="""
        Register a handler that describes the layer, in the model file (the child process
        imports it before building):
        ```python
        # rfa-lint --res 32
        import torch
        from torch import nn


        class HalfSpectrum(nn.Module):
            def forward(self, x):
                h, w = x.shape[-2:]
                return torch.fft.irfft2(torch.fft.rfft2(x), s=(h // 2, w // 2))


        try:  # every output position mixes the whole map: a global layer
            from rfa_lint.frontends import register_layer_handler
            from rfa_lint.graphs import LayerDefinition
            register_layer_handler(  # sizes: the spatial sizes of its input and output
                HalfSpectrum,
                lambda layer, in_sizes, out_sizes: LayerDefinition("HalfSpectrum", kernel_size=None),
            )
        except ImportError:  # rfa-lint not installed
            pass


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)
                self.down = HalfSpectrum()

            def forward(self, x):
                return self.down(self.conv(x))
        ```
        """,
    ),
    _not_analysed(
        "RFA906",
        "timeout",
        "building or tracing the model took longer than the time limit",
        "analysing '{model}' timed out ({detail}); raise the time limit or make building lighter",
        ModelDetail,
        cacheable=False, status="timeout",
        what="""
        Reports a model whose building or tracing did not finish within the wall-clock limit
        (or a file whose import did not), or a model its file's time had run out for before it
        was built; the message says which limit it was.
        """,
        why="""
        Its child process was killed and the model was not analysed; the file's other models
        go on in a new one, within the file's time.
        """,
        example="""
        ```python
        # rfa-lint --timeout 1
        import time

        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                time.sleep(60)  # a slow lookup at construction
                self.conv = nn.Conv2d(3, 8, 3)

            def forward(self, x):
                return self.conv(x)
        ```
        """,
        use_instead="""
        Raise the limit, move slow work out of the constructor, or skip the model with
        `# rfa-lint: skip`.
        """,
        options=NOT_ANALYSED_OPTION + """
        - `timeout` (`--timeout SECONDS`, flake8 `--rfa-timeout`): the limit per model, and
          for the file's import; a file's models together get at most that times (models + 1).
        """,
    ),
    _not_analysed(
        "RFA907",
        "memory-limit",
        "building or tracing the model exceeded the memory limit",
        "analysing '{model}' exceeded the memory limit ({limit}) (raise the limit or build a "
        "smaller variant with '# rfa-lint: build(...)')",
        MemoryLimit,
        cacheable=False, status="memory-limit",
        what="""
        Reports a file whose child process ran out of its memory limit.
        """,
        why="""
        The process was stopped; its models were not analysed.  Weights live on the `meta`
        device, so this usually comes from real data made outside the layers.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.table = bytearray(64 * 2**30)  # 64 GiB of plain bytes
                self.conv = nn.Conv2d(3, 8, 3)

            def forward(self, x):
                return self.conv(x)
        ```
        """,
        use_instead="""
        Raise the limit, build a smaller variant with `# rfa-lint: build(...)`, or skip the
        model.
        """,
        options=NOT_ANALYSED_OPTION + """
        - `memory-limit` (`--memory-limit MIB`, flake8 `--rfa-memory-limit`): the limit per
          child process.
        """,
    ),
    _not_analysed(
        "RFA908",
        "crashed",
        "child process died while building or tracing the model",
        "analysing '{model}' crashed the child process ({detail}); run the file directly to "
        "reproduce",
        ModelDetail,
        cacheable=False, status="crashed",
        what="""
        Reports a file whose child process died while building or tracing: killed by a signal
        (a segmentation fault in an extension) or exited (`os._exit`) from a model's code.
        """,
        why="""
        Its models were not analysed.  Your own process is safe: only the child died.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        import ctypes

        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                ctypes.string_at(0)  # reads address 0: a segmentation fault

            def forward(self, x):
                return x
        ```
        """,
        use_instead="""
        Run the file directly (`python -X faulthandler path/to/file.py`) to find the crash,
        and fix or skip the model.
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA909",
        "syntax-error",
        "file does not parse",
        "syntax error: {detail} (fix it so the file can be analysed)",
        Detail,
        cacheable=True, on_by_default=True,
        what="""
        Reports a file that is not valid Python for the interpreter running rfa-lint.
        """,
        why="""
        Nothing in the file can be found or built.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn


        class Net(nn.Module)  # missing ':'
            pass
        ```
        """,
        use_instead="""
        ```python
        # rfa-lint --res 32
        from torch import nn


        class Net(nn.Module):
            pass
        ```
        """,
    ),
    _not_analysed(
        "RFA910",
        "not-utf8",
        "file is not valid UTF-8 text",
        "cannot decode the file: {detail} (save it as UTF-8)",
        Detail,
        cacheable=True, on_by_default=True,
        what="""
        Reports a file whose bytes do not decode as text (as UTF-8, or in the encoding its
        `# -*- coding: ... -*-` line declares).
        """,
        why="""
        Python cannot import it, so nothing in it was analysed.
        """,
        example="""
        A model file saved in Latin-1 with an accented name in a comment.
        """,
        use_instead="""
        Save the file as UTF-8, the encoding Python assumes by default.
        """,
    ),
    _not_analysed(
        "RFA911",
        "bad-directive",
        "malformed '# rfa-lint:' directive comment",
        "bad rfa-lint directive: {detail} (expected build(...), input(...) or skip, with "
        "literal arguments)",
        Detail,
        cacheable=True, on_by_default=True, status="bad-directive",
        what="""
        Reports a `# rfa-lint:` comment that cannot be read or cannot do what it says.
        Directives are written on the class or def line, the first line of a top-level
        assignment, or on comment lines right above it or its decorators: `build(...)` gives
        constructor arguments, `input(N, C, H, W)` the input shape to trace with (or one shape
        per forward parameter, `input(x=(1, 3, 64, 64), t=(1,))`), `skip` leaves the model out;
        several join with `;`.  Also reported: a keyword the constructor does not take (the
        message names the accepted ones), a directive on something that is no model, and one
        that belongs to no class, def or assignment at all (at the comment's line).
        """,
        why="""
        The model is not analysed, since the settings meant for it are unknown.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn

        DEPTH = 2


        # rfa-lint: build(depth=DEPTH)
        class Net(nn.Module):  # a name is not a literal
            def __init__(self, depth):
                super().__init__()
                self.convs = nn.Sequential(*[nn.Conv2d(8 if i else 3, 8, 3) for i in range(depth)])

            def forward(self, x):
                return self.convs(x)
        ```
        """,
        use_instead="""
        Literals only (numbers, strings, tuples, lists, dicts, `None`, booleans):
        ```python
        # rfa-lint --res 32
        from torch import nn


        # rfa-lint: build(depth=2); input(1, 3, 64, 64)
        class Net(nn.Module):
            def __init__(self, depth):
                super().__init__()
                self.convs = nn.Sequential(*[nn.Conv2d(8 if i else 3, 8, 3) for i in range(depth)])

            def forward(self, x):
                return self.convs(x)
        ```
        """,
    ),
    _not_analysed(
        "RFA912",
        "framework-missing",
        "the model's framework is not installed where rfa-lint runs",
        "{framework} is not installed where rfa-lint runs, so this file's models were not checked "
        "(install it there, or run rfa-lint in your models' environment)",
        Framework,
        cacheable=True, on_by_default=True, status="framework-missing",
        what="""
        Reports a file with models for a framework (PyTorch or TensorFlow/Keras) that cannot
        be imported in rfa-lint's environment.  Unlike the other "not analysed" codes it is on
        by default, and `rfa-lint` exits 2 when it occurs: the environment is at fault, not
        the code, and a run that checked nothing must not pass.
        """,
        why="""
        Models are built with their framework; without it none were analysed.  A pre-commit
        hook installed into its own environment without the framework would otherwise pass on
        every commit while checking nothing.
        """,
        example="""
        `flake8 --rfa-res=32 models/` from an isolated pre-commit environment that has flake8
        and rfa-lint but not torch.
        """,
        use_instead="""
        Install the framework next to rfa-lint, or run rfa-lint in your project's environment:
        for pre-commit, `additional_dependencies: [torch]` on the hook, or a `repo: local`
        hook with `language: system`.
        """,
    ),
    _not_analysed(
        "RFA913",
        "needs-inputs",
        "model's forward needs inputs rfa-lint cannot make",
        "model '{model}' needs forward inputs that rfa-lint cannot make: {params}",
        ModelParams,
        cacheable=True, status="needs-inputs", marks_block=True,
        what="""
        Reports a model whose `forward` requires an input besides the image that rfa-lint cannot
        make up: a depth map, a mask, a target, the hidden states a cross-attention reads.
        Inputs it does make: one number per sample for a timestep-like parameter (`t`,
        `timesteps`, `sigma`, `noise_level`...), None for an `Optional[...]` one, and the
        default of a parameter that has one.
        """,
        why="""
        The model was not analysed.  Such classes are often losses or heads fed by a backbone;
        the network that builds them is analysed with them inside.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        from torch import nn


        class Fusion(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(4, 8, 3)

            def forward(self, image, depth):
                return self.conv(image + depth)
        ```
        """,
        use_instead="""
        Give every input's shape by name, or leave the model out with `# rfa-lint: skip`:
        ```python
        # rfa-lint --res 32
        from torch import nn


        class Fusion(nn.Module):  # rfa-lint: input(image=(1, 4, 32, 32), depth=(1, 4, 32, 32))
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(4, 8, 3)

            def forward(self, image, depth):
                return self.conv(image + depth)
        ```
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA914",
        "download-blocked",
        "building the model tried to download something",
        "building '{model}' {detail}; linting never downloads (turn pretrained weights off by "
        "default, or give '# rfa-lint: build(...)' arguments that load none)",
        ModelDetail,
        cacheable=True, status="download-blocked",
        what="""
        Reports a model whose constructor tried to reach the network, usually to download
        pretrained weights.  rfa-lint blocks every download: weights never change a receptive
        field, and a linter must not depend on the network.
        """,
        why="""
        The model was not analysed.  rfa-lint already passes `weights=None`,
        `pretrained=False`, `weights_backbone=None`, `encoder_weights=None` (and the like) to
        constructors and factories that take them by name; this model downloads anyway.
        """,
        example="""
        ```python
        # rfa-lint --res 32
        import torch
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = torch.hub.load("pytorch/vision", "resnet18")

            def forward(self, x):
                return self.backbone(x)
        ```
        """,
        use_instead="""
        Make loading weights optional through a parameter, or give arguments that build
        without weights (`# rfa-lint: build(pretrained=False)`):
        ```python
        # rfa-lint --res 32
        import torchvision
        from torch import nn


        class Net(nn.Module):
            def __init__(self, weights=None):
                super().__init__()
                self.backbone = torchvision.models.resnet18(weights=weights)

            def forward(self, x):
                return self.backbone(x)
        ```
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA915",
        "resolution-axes",
        "the resolution has another number of axes than the model",
        "the resolution {res} has {given} axes but '{model}' has {axes} (give one size, --res N, "
        "or one size per axis of this model)",
        ResolutionAxes,
        cacheable=True,
        what="""
        Reports a model that cannot be judged at the linted resolution because the resolution
        gives sizes for another number of spatial axes (`--res 32x48` for a 1-D audio model).
        """,
        why="""
        The model was not analysed at that resolution.
        """,
        example="""
        ```python
        # rfa-lint --res 32x48
        from torch import nn


        def wave() -> nn.Module:
            return nn.Conv1d(1, 16, 9)
        ```
        """,
        use_instead="""
        One size (`--res 32`), or files of different dimensionality linted with their own
        `[tool.rfa-lint]` resolution:
        ```python
        # rfa-lint --res 32
        from torch import nn


        def wave() -> nn.Module:
            return nn.Conv1d(1, 16, 9)
        ```
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA916",
        "unanalysable-graph",
        "the model's traced graph is too large or malformed to analyse",
        "the graph of '{model}' was not analysed: {detail} (simplify the model or leave it out with "
        "'# rfa-lint: skip')",
        ModelDetail,
        cacheable=True,
        what="""
        Reports a model whose traced layer graph is past the limits of what rfa-lint's own
        process analyses (5,000 nodes, 50,000 edges, 64 distinct stride products meeting at one
        layer, 100,000 receptive-field paths to follow), or is not a well-formed graph.
        """,
        why="""
        The model was not analysed.  The limits are far above any real network's (the largest
        measured: 1,400 nodes, 14 stride products at one layer); branches with distinct strides
        merged level after level double the paths at every level, and would otherwise cost
        rfa-lint minutes.
        """,
        example="""
        A model whose forward adds, level after level, two branches that downsample by
        different factors and resize back: 18 such levels make 2^18 receptive-field paths.
        """,
        use_instead="""
        Leave the model out with `# rfa-lint: skip`, or lint a smaller variant of it with
        `# rfa-lint: build(...)`.
        """,
        options=NOT_ANALYSED_OPTION,
    ),
    _not_analysed(
        "RFA917",
        "file-too-large",
        "the file is larger than rfa-lint parses",
        "the file was not analysed: {detail} (raise max-file-size, or split the file)",
        Detail,
        cacheable=False,
        what="""
        Reports a file that may define a model but is larger than `max-file-size`, before
        anything of it is parsed, tokenized or run.
        """,
        why="""
        Parsing costs memory and time in proportion to the file (a 26 MB generated file took
        rfa-lint 2-4 minutes and 4 GB); no hand-written model file comes near the default
        limit, so such a file is generated data, and its models are not analysed.
        """,
        example="""
        A generated 26 MB `weights_table.py` that imports torch.
        """,
        use_instead="""
        Keep generated data out of Python source (load it from a data file), split the file,
        or raise the limit.
        """,
        known_problems="""
        flake8 reads, tokenizes and parses every file itself before any plugin runs: under
        flake8 the time and memory of that parse are spent anyway; exclude such files with
        flake8's `--extend-exclude`.
        """,
        options=NOT_ANALYSED_OPTION + """
        - `max-file-size` (`--max-file-size KIB`, flake8 `--rfa-max-file-size`): the largest
          file analysed, in KiB.
        """,
    ),
    _not_analysed(
        "RFA999",
        "internal-error",
        "rfa-lint itself failed on the file",
        "rfa-lint failed on this file ({detail}); please report it with the file attached",
        Detail,
        cacheable=False, on_by_default=True,
        what="""
        Reports a failure of rfa-lint's own code on a file, instead of aborting the whole
        flake8 run (a plugin that raises stops flake8 for every file).
        """,
        why="""
        The file was not analysed; whatever findings it has are unknown.
        """,
        example="""
        Any file on which rfa-lint hits a bug.
        """,
        use_instead="""
        Report it to rfa-lint with the file (or a cut-down copy) and the message; meanwhile
        `# noqa: RFA999` on line 1 silences it.
        """,
    ),
)

RULES: dict[str, Rule] = {rule.code: rule for rule in _ALL}
#: The rule of each sandbox status of a model or a file that was not analysed (all but ok and
#: not-a-model; a test checks that each has one).
BY_STATUS: dict[str, Rule] = {rule.status: rule for rule in _ALL if rule.status is not None}
if len(BY_STATUS) != sum(rule.status is not None for rule in _ALL):
    raise TypeError("two rules stand for one sandbox status")
#: The rules whose check the report loop asks for each judged layer, and for each model.
LAYER_RULES: tuple[Rule, ...] = tuple(r for r in _ALL if r.check and issubclass(r.fields, LayerFields))
MODEL_RULES: tuple[Rule, ...] = tuple(r for r in _ALL if r.check and r not in LAYER_RULES)


def get(code: str) -> Rule:
    """The rule with this code; KeyError naming the known codes otherwise."""
    try:
        return RULES[code]
    except KeyError:
        raise KeyError(f"unknown rule {code!r}; known: {', '.join(RULES)}") from None


def explain(code: str) -> str:
    """What ``rfa-lint rule CODE`` prints: the rule's page, as ``docs/rules/CODE.md`` holds it."""
    rule = get(code)
    default = "yes" if rule.on_by_default else "no (select it to report it; the summary lists the model)"
    return (f"# {rule.code} {rule.name}\n\n{rule.summary[0].upper()}{rule.summary[1:]}.\n\n"
            f"Message: `{rule.message}`\n\nReported by default: {default}.  "
            f"`rfa-lint rule {rule.code}` prints this page.\n\n{rule.explanation}\n")


def write_pages(folder: str | Path) -> None:
    """Write ``folder/CODE.md`` for every rule: ``python -c 'from rfa_lint import rules;
    rules.write_pages("docs/rules")'`` after a rule's text changed (a test checks them)."""
    for code in RULES:
        (Path(folder) / f"{code}.md").write_text(explain(code), encoding="utf-8")


def markdown_table() -> str:
    """The README's rule table."""
    rows = [f"| {r.code} | {r.name} | {'yes' if r.on_by_default else 'no: listed as skipped'} | {r.summary} |"
            for r in RULES.values()]
    return "\n".join(["| code | name | reported by default | what it reports |", "| --- | --- | --- | --- |",
                      *rows]) + "\n"


DEFAULT_IGNORE: tuple[str, ...] = tuple(rule.code for rule in _ALL if not rule.on_by_default)


def select(codes_or_prefixes: Iterable[str] | None = None, ignore: Iterable[str] = ()) -> set[str]:
    """The codes left on by flake8-style ``--select`` / ``--ignore`` prefixes.

    ``"RFA1"`` matches RFA101 ... RFA110.  No selection means every code that is on by default
    (not the :data:`DEFAULT_IGNORE` ones); naming a code or prefix in ``select`` turns it on.
    As in flake8, the longest matching prefix decides (``select=RFA101, ignore=RFA1`` keeps
    RFA101), an explicit ignore beats the implicit select-all, and on a tie ignore wins.
    """
    chosen = _prefixes(codes_or_prefixes)
    ignored = _prefixes(ignore) + ([] if chosen else list(DEFAULT_IGNORE))
    return {code for code in RULES if _longest_match(code, chosen or [""]) > _longest_match(code, ignored)}


def _prefixes(values: Iterable[str] | None) -> list[str]:
    return [v.strip().upper() for v in values or () if v.strip()]


def _longest_match(code: str, prefixes: list[str]) -> int:
    return max((len(p) for p in prefixes if code.startswith(p)), default=-1)
