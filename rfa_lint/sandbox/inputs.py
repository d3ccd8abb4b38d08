"""What a built model's forward pass is fed: its image, and the other inputs it requires.

Runs in the sandbox child.  A model's first required input is the image the frontend traces at
the lint resolution; every other input it requires is made here when it can be:

- a timestep-like parameter (``t``, ``timesteps``, ``sigma``, ``noise_level``...: diffusion
  UNets' ``forward(x, timesteps)``) is one number per sample, a ``(batch,)`` tensor;
- a second image (RAFT's ``forward(image1, image2)``, a siamese ``forward(x1, x2)``: its name
  is the image's but for a number or ``_a`` / ``_b``) is made like the image, at every size;
- a parameter annotated ``Optional[...]`` (optional conditioning) is None;
- a parameter with a default keeps it;
- any other (``encoder_hidden_states``, ``context``) is taken as a sequence of vectors,
  ``(batch, length, width)``, whose width the first layer that reads it says (a Linear's
  inputs, a LayerNorm's size: a cross-attention's keys), found by the frontend as it traces.

An input whose first use says no width (it is concatenated to the image, or read as a number)
makes the model ``needs-inputs``, naming it.  A shape given by name in the
``input(...)`` directive (``input(x=(1, 3, 64, 64), t=(1,))``: ``candidate["input_shape"]``
is then a mapping) is used as given, for any input.
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Names of inputs that carry one number per sample: a diffusion step (an integer) or a noise
#: level (a real number), by the words of the common code bases (diffusers, guided-diffusion,
#: k-diffusion, score_sde).
_STEPS = re.compile(r"(t|ts|times?|time_?steps?|steps?|diffusion_steps?|time_?index)")
_LEVELS = re.compile(r"(sigmas?|noise_?levels?|noise_?labels?|c_noise|log_?snr|gammas?|noise_?conds?)")


@dataclass
class Inputs:
    """How to call a model's forward: ``image`` the shape of its first input (None: the
    frontend tries its sizes), ``extra`` the other inputs by name as the frontend makes them
    (``{"shape": [...], "dtype": "int64" | "float", "batched": bool}``, :data:`LIKE_IMAGE`,
    :data:`TOKENS`, or None to pass None),
    ``missing`` the required inputs that cannot be made."""

    image: list[int] | None = None
    name: str = "x"  # the image input's
    extra: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


#: The spec of an input made like the image (same shape, device and type).
LIKE_IMAGE: dict[str, Any] = {"like": "image"}
#: The spec of a sequence of vectors whose width its first use says.
TOKENS: dict[str, Any] = {"like": "tokens"}


def _stem(name: str) -> str:
    """A name without what numbers one of a pair: ``image2`` -> ``image``, ``img_b`` -> ``img``."""
    return re.sub(r"(?<=.)(\d+|_[ab])$", "", name)


def per_sample(name: str) -> dict[str, Any] | None:
    """The tensor of one number per sample that a timestep-like input named ``name`` takes."""
    key = name.lower()
    if _STEPS.fullmatch(key):
        return {"shape": [], "dtype": "int64", "batched": True}
    if _LEVELS.fullmatch(key):
        return {"shape": [], "dtype": "float", "batched": True}
    return None


def plan(model: Any, input_shape: Any) -> Inputs:
    """The inputs of ``model``'s forward (torch; any other model takes its one input as is)."""
    given = dict(input_shape) if isinstance(input_shape, Mapping) else {}
    image = None if given else (list(input_shape) if input_shape else None)
    parameters = _forward_parameters(model)
    if parameters is None:
        return Inputs(image)
    named = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    first = next((p for p in named if p.kind != p.KEYWORD_ONLY and (p.default is p.empty or p.name in given)),
                 None)
    inputs = Inputs(list(given[first.name]) if first is not None and first.name in given else image,
                    first.name if first is not None else "x")
    for p in named:
        if p is first:
            continue
        if p.name in given:
            inputs.extra[p.name] = {"shape": list(given[p.name]), "dtype": _dtype(p.name), "batched": False}
        elif p.default is not p.empty:
            continue
        elif (spec := per_sample(p.name)) is not None:
            inputs.extra[p.name] = spec
        elif first is not None and _stem(p.name) == _stem(first.name):
            inputs.extra[p.name] = LIKE_IMAGE
        elif _optional(p, model):
            inputs.extra[p.name] = None
        else:
            inputs.extra[p.name] = TOKENS
    inputs.missing += [name for name in given if name not in {p.name for p in named}
                       and not any(p.kind == p.VAR_KEYWORD for p in parameters)]
    return inputs


def _forward_parameters(model: Any) -> list[inspect.Parameter] | None:
    torch = sys.modules.get("torch")
    forward = getattr(type(model), "forward", None)
    if torch is None or forward is None or not isinstance(model, torch.nn.Module):
        return None
    try:
        return list(inspect.signature(forward).parameters.values())[1:]  # past self
    except (TypeError, ValueError):
        return None


def _dtype(name: str) -> str:
    spec = per_sample(name)
    return spec["dtype"] if spec else "float"


def _optional(parameter: inspect.Parameter, model: Any) -> bool:
    """Annotated ``Optional[X]`` / ``X | None`` (string annotations resolved in the forward's
    module)."""
    annotation = parameter.annotation
    if isinstance(annotation, str):
        try:
            annotation = typing.get_type_hints(type(model).forward).get(parameter.name, annotation)
        except Exception:  # an annotation naming what the module never imported
            return "None" in annotation.replace(" ", "").split("|") or annotation.startswith("Optional[")
    return type(None) in typing.get_args(annotation)


def needed(inputs: Inputs) -> str:
    """The inputs that cannot be made, and the ``input(...)`` directive that gives them."""
    shapes = ", ".join(f"{name}=(...)" for name in (inputs.name, *inputs.missing))
    return f"{', '.join(inputs.missing)}; give their shapes with '# rfa-lint: input({shapes})'"


def declared_size(model: Any) -> tuple[int, ...] | None:
    """The spatial input size a model declares for itself, if any.

    timm's ``pretrained_cfg`` / ``default_cfg`` ``input_size`` (channels first), then an
    ``img_size`` / ``image_size`` / ``sample_size`` attribute (torchvision's ViT, many timm
    models, diffusers' UNets); one number is the size of every axis the model has (an audio
    UNet's 65536 samples).
    """
    for name in ("pretrained_cfg", "default_cfg"):
        cfg = _attribute(model, name)
        size = cfg.get("input_size") if isinstance(cfg, Mapping) else None
        if _sizes(size) and len(size) > 1:
            return tuple(int(v) for v in size[1:])
    for name in ("img_size", "image_size", "sample_size"):
        size = _attribute(model, name)
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return (size,)
        if _sizes(size):
            return tuple(int(v) for v in size)
    return None


def _attribute(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # a property of user code may raise anything
        return None


def _sizes(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and bool(value)
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))
