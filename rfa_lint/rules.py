'''The one registry of rule codes: each rule carries its name, message and documentation.

``rfa-lint rule CODE``, the README's rule table, SARIF rule metadata and every finding's text
all come from here, so a rule is described in exactly one place.  Messages are
:meth:`str.format` templates that follow pycodestyle's shape: lowercase, short, measured values
in parentheses, never the code itself (the front doors put it in front).
'''

from __future__ import annotations

import string
import textwrap
from dataclasses import dataclass
from typing import Iterable

HEADINGS = ("What it does", "Why is this bad?", "Example", "How to fix")


@dataclass(frozen=True)
class Rule:
    """One lint rule.  ``explanation`` is markdown with the sections named in ``HEADINGS``.

    ``on_by_default`` is False for the codes that say a model was *not analysed* (it needs
    arguments, its forward raised, ...): a linter must not fail a pre-commit run over code it
    could not check, so these are reported only when selected (``--select RFA9``,
    flake8 ``--extend-select RFA9``); every run still lists those models as skipped.
    """

    code: str
    name: str
    summary: str
    message: str
    explanation: str
    on_by_default: bool = True

    @property
    def fields(self) -> frozenset[str]:
        """The names the linter must give to format ``message``."""
        return frozenset(field for _, field, _, _ in string.Formatter().parse(self.message) if field)


def _rule(
    code: str, name: str, summary: str, message: str, explanation: str, on_by_default: bool = True
) -> Rule:
    return Rule(code, name, summary, message, textwrap.dedent(explanation).strip(), on_by_default)


def _skip(code: str, name: str, summary: str, message: str, explanation: str) -> Rule:
    """A rule saying that a model was not analysed: off unless selected (see :class:`Rule`)."""
    return _rule(code, name, summary, message, explanation, on_by_default=False)


_ALL = (
    _rule(
        "RFA101",
        "unproductive-layer",
        "layer whose input already sees the whole image, so it adds no context",
        "unproductive layer {layer} at {res}px (input RF {input_rf} >= {res}, own RF {own_rf}; "
        "productive from {productive_from}px)",
        """
        ## What it does
        Reports a convolution or pooling layer whose input already has a receptive field (RF)
        at least as large as the image, and whose own RF is larger still.

        ## Why is this bad?
        A layer can only add context the image has.  Once every input position sees the whole
        image, a 3x3 convolution mixes positions that all see the same pixels: it costs compute
        and parameters but cannot learn anything a 1x1 layer could not.  This usually means the
        network was designed for a larger input (e.g. an ImageNet model trained at 32px).

        ## Example
        ```python
        class Net(nn.Module):  # linted at 32px
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 64, 7, stride=2, padding=3)  # RF 7
                self.pool = nn.MaxPool2d(3, stride=2, padding=1)      # RF 11
                self.deep = nn.Sequential(*[nn.Conv2d(64, 64, 3, padding=1) for _ in range(6)])
                # RFs 19, 27, 35, 43, 51, 59: the last three only see inputs that
                # already cover 32px, so they are unproductive
        ```

        ## How to fix
        Train at a resolution at or above the "productive from" value in the message, or remove
        the layer, or reduce downsampling earlier (smaller strides, fewer pooling layers) so the
        RF grows more slowly.
        """,
    ),
    _rule(
        "RFA102",
        "critical-layer",
        "layer that pushes the receptive field past the image",
        "critical layer {layer} pushes RF past {res}px (input RF {input_rf}, own RF {own_rf}; "
        "productive from {productive_from}px)",
        """
        ## What it does
        Reports the layer whose input still sees less than the image but whose own receptive
        field exceeds it: the point where the network starts to outgrow the input.

        ## Why is this bad?
        It is not wasted yet, but it is the last layer that adds context.  Every layer after it
        with a kernel larger than 1x1 will be unproductive (RFA101), so this is where the
        architecture and the resolution stop fitting together.

        ## Example
        ```python
        # at 16px the RFs are 5, 9 and 17: the third layer is critical
        net = nn.Sequential(
            nn.Conv2d(3, 16, 5),
            nn.Conv2d(16, 32, 5, stride=2),
            nn.Conv2d(32, 64, 5),
        )
        ```

        ## How to fix
        Usually nothing, if later layers are productive.  Otherwise treat it like RFA101:
        raise the resolution to the "productive from" value or let the RF grow more slowly.
        """,
    ),
    _rule(
        "RFA103",
        "border-case-layer",
        "layer whose receptive field passes the image on some axes only",
        "border-case layer {layer} at {res}px (own RF {own_rf} past the image on {axes} only)",
        """
        ## What it does
        Reports a layer whose receptive field exceeds the image along some axes (height or
        width) but not all, for non-square kernels or non-square inputs such as 32x256.

        ## Why is this bad?
        Along the exceeded axis the layer adds no context, along the others it still does.
        Half-useful layers often hint at an asymmetric input the network was not designed for.

        ## Example
        ```python
        # linted at 32x256: the 7x1 kernels grow the height RF only
        net = nn.Sequential(*[nn.Conv2d(16, 16, (7, 1)) for _ in range(6)])
        ```

        ## How to fix
        Match kernel shapes and strides to the input's aspect ratio, or resize the input so the
        axes grow alike.
        """,
    ),
    _rule(
        "RFA104",
        "kernel-covers-feature-map",
        "kernel as large as its whole input feature map, so it acts like a dense layer",
        "kernel of {layer} covers its whole feature map at {res}px (kernel {kernel}, map "
        "{feature_map}; map larger from {min_res}px)",
        """
        ## What it does
        Reports a layer whose (dilated) kernel is at least as large as the feature map it is
        applied to, after all the downsampling before it.

        ## Why is this bad?
        Such a kernel has no room to slide: it acts like a fully connected layer over the whole
        map, most of its weights only ever see padding, and it loses the translation
        equivariance that makes a convolution a convolution.

        ## Example
        ```python
        # at 32px, after five stride-2 steps the map is 1x1, yet the kernel is 3x3
        self.last = nn.Conv2d(512, 512, 3, padding=1)
        ```

        ## How to fix
        Use a 1x1 convolution or a linear layer there, drop some downsampling, or train at a
        resolution from the "map larger" value in the message.
        """,
    ),
    _rule(
        "RFA110",
        "resolution-outside-range",
        "resolution lies outside the model's productive range",
        "resolution {res}px is {side} of '{model}' (productive range {min_res}-{max_res}px)",
        """
        ## What it does
        Compares the resolution with the model's productive range, reported at the model's
        class or factory line.  Below the minimum, some layers are unproductive; above the
        maximum, even the last layer sees less than the whole image.

        ## Why is this bad?
        Below the range you pay for layers that add nothing (see RFA101).  Above it the model
        cannot relate distant parts of the image unless a global pooling or attention layer
        does so.

        ## Example
        ```python
        def model() -> nn.Module:
            return torchvision.models.resnet50()  # productive from 75px to 427px; linted at 32px
        ```

        ## How to fix
        Pick a resolution within the range, or change the architecture's depth and
        downsampling to move the range.
        """,
    ),
    _skip(
        "RFA900",
        "execution-disabled",
        "model was not analysed because running model code is disabled",
        "model '{model}' was not built: execution is disabled (drop --no-exec to analyse it)",
        """
        ## What it does
        Marks each model that `--no-exec` (flake8: `--rfa-no-exec`) kept from being built.

        ## Why is this bad?
        Receptive fields come from the built model, so nothing was checked for it.

        ## Example
        ```python
        class Net(nn.Module):  # rfa-lint --no-exec: RFA900 here
            ...
        ```

        ## How to fix
        Run without `--no-exec` where running the model code is safe, or ignore RFA900.
        """,
    ),
    _skip(
        "RFA901",
        "import-failed",
        "file raised an error when imported",
        "cannot import '{model}': {detail} (make the file importable where rfa-lint runs)",
        """
        ## What it does
        Reports a file whose import failed in rfa-lint's child process, including an
        `ImportError` for a package that is not installed.

        ## Why is this bad?
        Models are built from the imported module; nothing in the file was analysed.

        ## Example
        ```python
        import torch
        from my_private_package import Block  # not installed where rfa-lint runs
        ```

        ## How to fix
        Run rfa-lint in the environment where your models import (for pre-commit, a
        `repo: local` hook with `language: system`), or fix the error named in the message:
        `python path/to/file.py` reproduces it.
        """,
    ),
    _skip(
        "RFA902",
        "needs-arguments",
        "model constructor needs arguments nobody gave",
        "model '{model}' needs constructor arguments ({params}); give them with "
        "'# rfa-lint: build(...)' on its line",
        """
        ## What it does
        Reports a model class whose constructor has required parameters, when no directive or
        configuration gives them and no other model of the file builds it.

        ## Why is this bad?
        rfa-lint cannot guess sizes such as channel counts, so the model was not analysed.

        ## Example
        ```python
        class Net(nn.Module):
            def __init__(self, depth, width=64):
                ...
        ```

        ## How to fix
        Give literal arguments in a comment on the class line or right above it:
        ```python
        # rfa-lint: build(18, width=32)
        class Net(nn.Module):
        ```
        or in `pyproject.toml` under `[tool.rfa-lint.models]`; `# rfa-lint: skip` leaves the
        model out.
        """,
    ),
    _skip(
        "RFA903",
        "build-failed",
        "model constructor raised an error",
        "building '{model}' failed: {detail} (fix it or pass working arguments with "
        "'# rfa-lint: build(...)')",
        """
        ## What it does
        Reports a model whose constructor raised while rfa-lint built it (without weights, on
        the `meta` device).

        ## Why is this bad?
        The model was not analysed.

        ## Example
        ```python
        class Net(nn.Module):
            def __init__(self, depth=7):
                super().__init__()
                self.blocks = BLOCKS[depth]  # KeyError: 7
        ```

        ## How to fix
        Fix the error named in the message (its `file:line` points into your code), or give
        arguments that work with `# rfa-lint: build(...)`.  A constructor that needs real
        weights (e.g. loads a checkpoint) can be left out with `# rfa-lint: skip`.
        """,
    ),
    _skip(
        "RFA904",
        "trace-failed",
        "model's forward raised at every input size tried",
        "tracing '{model}' failed at every input size: {detail} (give a working shape with "
        "'# rfa-lint: input(...)')",
        """
        ## What it does
        Reports a model whose forward pass raised for every example input rfa-lint tried.

        ## Why is this bad?
        The layer graph comes from running forward once; without it nothing was analysed.

        ## Example
        ```python
        class Net(nn.Module):
            def forward(self, x):  # expects a 1-channel image
                return self.conv(x.view(-1, 1, 28, 28))
        ```

        ## How to fix
        Give the input shape to trace with, batch and channels included:
        ```python
        # rfa-lint: input(1, 1, 28, 28)
        class Net(nn.Module):
        ```
        """,
    ),
    _rule(
        "RFA905",
        "unsupported-layer",
        "layer kind that changes spatial size and that rfa-lint cannot interpret",
        "unsupported layer {layer} of type {type} changes the spatial size (register a "
        "receptive-field handler for it)",
        """
        ## What it does
        Reports a layer type that changes the spatial size of its input but has no receptive
        field rule in rfa-lint (a custom pooling, a third-party operator).

        ## Why is this bad?
        rfa-lint cannot know the kernel and stride of an unknown layer, so the receptive fields
        of everything after it are unknown and not reported.

        ## Example
        ```python
        class BlurPool(nn.Module):  # downsamples with a fixed 4x4 filter
            ...
        ```

        ## How to fix
        Register a handler that describes the layer, in the model file (the child process
        imports it before building):
        ```python
        try:
            from rfa_lint.frontends.torch import register_layer_handler
            from rfa_lint.graphs import LayerDefinition
            register_layer_handler(
                BlurPool, lambda layer, x, y: LayerDefinition("BlurPool", kernel_size=4, stride_size=2)
            )
        except ImportError:  # rfa-lint not installed
            pass
        ```
        """,
    ),
    _skip(
        "RFA906",
        "timeout",
        "building or tracing the model took longer than the time limit",
        "analysing '{model}' timed out after {seconds}s (raise the time limit or make building "
        "lighter)",
        """
        ## What it does
        Reports a file whose child process did not finish within the wall-clock limit.

        ## Why is this bad?
        The process was killed; its models were not analysed.

        ## Example
        ```python
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.table = download_lookup_table()  # slow network call at construction
        ```

        ## How to fix
        Raise the limit (`--timeout`, flake8: `--rfa-timeout`), move slow work out of the
        constructor, or skip the model with `# rfa-lint: skip`.
        """,
    ),
    _skip(
        "RFA907",
        "memory-limit",
        "building or tracing the model exceeded the memory limit",
        "analysing '{model}' exceeded the memory limit ({limit}) (raise the limit or build a "
        "smaller variant with '# rfa-lint: build(...)')",
        """
        ## What it does
        Reports a file whose child process ran out of its memory limit.

        ## Why is this bad?
        The process was stopped; its models were not analysed.  Weights live on the `meta`
        device, so this usually comes from real tensors made outside the layers.

        ## Example
        ```python
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("grid", torch.zeros(100_000, 100_000))  # 40 GB
        ```

        ## How to fix
        Raise the limit (`--memory-limit`, flake8: `--rfa-memory-limit`), build a smaller
        variant with `# rfa-lint: build(...)`, or skip the model.
        """,
    ),
    _skip(
        "RFA908",
        "crashed",
        "child process died while building or tracing the model",
        "analysing '{model}' crashed the child process ({detail}); run the file directly to "
        "reproduce",
        """
        ## What it does
        Reports a file whose child process died: killed by a signal (a segmentation fault in
        an extension) or exited on its own (`sys.exit`, `os._exit`).

        ## Why is this bad?
        Its models were not analysed.  Your own process is safe: only the child died.

        ## Example
        ```python
        import sys
        sys.exit(0)  # at import time
        ```

        ## How to fix
        Guard script code with `if __name__ == "__main__":` and run the file directly to find
        the crash named in the message.
        """,
    ),
    _rule(
        "RFA909",
        "syntax-error",
        "file does not parse",
        "syntax error: {detail} (fix it so the file can be analysed)",
        """
        ## What it does
        Reports a file that is not valid Python for the interpreter running rfa-lint.

        ## Why is this bad?
        Nothing in the file can be found or built.

        ## Example
        ```python
        class Net(nn.Module)  # missing ':'
        ```

        ## How to fix
        Fix the syntax error at the reported position.
        """,
    ),
    _rule(
        "RFA910",
        "not-utf8",
        "file is not valid UTF-8 text",
        "cannot decode the file: {detail} (save it as UTF-8)",
        """
        ## What it does
        Reports a file whose bytes do not decode as text.

        ## Why is this bad?
        The file cannot be read, so nothing in it was analysed.

        ## Example
        A model file saved in Latin-1 with an accented name in a comment.

        ## How to fix
        Save the file as UTF-8, the encoding Python assumes by default.
        """,
    ),
    _rule(
        "RFA911",
        "bad-directive",
        "malformed '# rfa-lint:' directive comment",
        "bad rfa-lint directive: {detail} (expected build(...), input(...) or skip, with "
        "literal arguments)",
        """
        ## What it does
        Reports a `# rfa-lint:` comment that cannot be read.  Directives are written on the
        class or def line, or on comment lines right above it or its decorators:
        `build(...)` gives constructor arguments, `input(N, C, H, W)` the input shape to trace
        with, `skip` leaves the model out; several join with `;`.

        ## Why is this bad?
        The model is not analysed, since the settings meant for it are unknown.

        ## Example
        ```python
        # rfa-lint: build(depth=DEPTH)   names are not literals
        # rfa-lint: input(1, 3, 64)x     not a call
        class Net(nn.Module):
        ```

        ## How to fix
        Use literals only (numbers, strings, tuples, lists, dicts, `None`, booleans):
        ```python
        # rfa-lint: build(depth=18); input(1, 3, 64, 64)
        class Net(nn.Module):
        ```
        """,
    ),
    _skip(
        "RFA912",
        "framework-missing",
        "the model's framework is not installed where rfa-lint runs",
        "{framework} is not installed where rfa-lint runs (install it there or run rfa-lint in "
        "your models' environment)",
        """
        ## What it does
        Reports a file with models for a framework (PyTorch or TensorFlow/Keras) that cannot
        be imported in rfa-lint's environment.

        ## Why is this bad?
        Models are built with their framework; without it none were analysed.

        ## Example
        `flake8 --rfa-res=32 models/` from an isolated pre-commit environment that has flake8
        and rfa-lint but not torch.

        ## How to fix
        Install the framework next to rfa-lint, or run rfa-lint in your project's environment
        (for pre-commit, a `repo: local` hook with `language: system`).
        """,
    ),
    _skip(
        "RFA913",
        "needs-inputs",
        "model's forward takes several inputs",
        "model '{model}' takes several inputs in forward ({params}); rfa-lint traces one image "
        "tensor (leave it out with '# rfa-lint: skip')",
        """
        ## What it does
        Reports a model whose `forward` requires more than one input (an image and a mask, a
        prediction and a target), so a single example image cannot trace it.

        ## Why is this bad?
        The model was not analysed.  Such classes are often losses or heads fed by a backbone;
        the network that builds them is analysed with them inside.

        ## Example
        ```python
        class Fusion(nn.Module):
            def forward(self, image, depth):
                ...
        ```

        ## How to fix
        Leave it out with `# rfa-lint: skip`, or lint a wrapper model whose `forward` takes
        one tensor and builds the other inputs from it.
        """,
    ),
    _skip(
        "RFA914",
        "download-blocked",
        "building the model tried to download something",
        "building '{model}' {detail}; linting never downloads (turn pretrained weights off by "
        "default, or give '# rfa-lint: build(...)' arguments that load none)",
        """
        ## What it does
        Reports a model whose constructor tried to reach the network, usually to download
        pretrained weights.  rfa-lint blocks every download: weights never change a receptive
        field, and a linter must not depend on the network.

        ## Why is this bad?
        The model was not analysed.  rfa-lint already passes `weights=None`,
        `pretrained=False`, `weights_backbone=None`, `encoder_weights=None` (and the like) to
        constructors and factories that take them by name; this model downloads anyway.

        ## Example
        ```python
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = torch.hub.load("pytorch/vision", "resnet18")
        ```

        ## How to fix
        Make loading weights optional through a parameter (`weights=None`), or give arguments
        that build without weights: `# rfa-lint: build(pretrained=False)`.
        """,
    ),
    _skip(
        "RFA915",
        "resolution-axes",
        "the resolution has another number of axes than the model",
        "the resolution {res} has {given} axes but '{model}' has {axes} (give one size, --res N, "
        "or one size per axis of this model)",
        """
        ## What it does
        Reports a model that cannot be judged at the linted resolution because the resolution
        gives sizes for another number of spatial axes (`--res 32x48` for a 1-D audio model).

        ## Why is this bad?
        The model was not analysed at that resolution.

        ## Example
        ```python
        class Wave(nn.Module):  # rfa-lint --res 32x48
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv1d(1, 16, 9)
        ```

        ## How to fix
        Give one size (`--res 32`), or lint files of different dimensionality with their own
        `[tool.rfa-lint]` resolution.
        """,
    ),
    _skip(
        "RFA916",
        "unanalysable-graph",
        "the model's traced graph is too large or malformed to analyse",
        "the graph of '{model}' was not analysed: {detail} (simplify the model or leave it out with "
        "'# rfa-lint: skip')",
        """
        ## What it does
        Reports a model whose traced layer graph is past the limits of what rfa-lint's own
        process analyses (5,000 nodes, 50,000 edges, 64 distinct stride products meeting at one
        layer, 100,000 receptive-field paths to follow), or is not a well-formed graph.

        ## Why is this bad?
        The model was not analysed.  The limits are far above any real network's (the largest
        measured: 1,400 nodes, 14 stride products at one layer); branches with distinct strides
        merged level after level double the paths at every level, and would otherwise cost
        rfa-lint minutes.

        ## Example
        ```python
        class Net(nn.Module):  # 18 levels of two branches with different prime strides
            def forward(self, x):
                for a, b in self.pairs:
                    x = a(x) + b(x)
                return x
        ```

        ## How to fix
        Leave the model out with `# rfa-lint: skip`, or lint a smaller variant of it with
        `# rfa-lint: build(...)`.
        """,
    ),
    _rule(
        "RFA999",
        "internal-error",
        "rfa-lint itself failed on the file",
        "rfa-lint failed on this file ({detail}); please report it with the file attached",
        """
        ## What it does
        Reports a failure of rfa-lint's own code on a file, instead of aborting the whole
        flake8 run (a plugin that raises stops flake8 for every file).

        ## Why is this bad?
        The file was not analysed; whatever findings it has are unknown.

        ## Example
        Any file on which rfa-lint hits a bug.

        ## How to fix
        Report it to rfa-lint with the file (or a cut-down copy) and the message; meanwhile
        `# noqa: RFA999` on line 1 silences it.
        """,
    ),
)

RULES: dict[str, Rule] = {rule.code: rule for rule in _ALL}


def get(code: str) -> Rule:
    """The rule with this code; KeyError naming the known codes otherwise."""
    try:
        return RULES[code]
    except KeyError:
        raise KeyError(f"unknown rule {code!r}; known: {', '.join(RULES)}") from None


def explain(code: str) -> str:
    """What ``rfa-lint rule CODE`` prints."""
    rule = get(code)
    return f"{rule.code} {rule.name}: {rule.summary}\n\nMessage: {rule.message}\n\n{rule.explanation}\n"


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
