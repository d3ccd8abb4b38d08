"""Which objects of an imported user module are models, and how to build them without weights.

Runs in the sandbox child, after the user's file was imported, on the candidates that
:mod:`rfa_lint.source` listed from the text.  Python has resolved every import by then (star
imports, relative imports, aliases, re-exports), so a class is a model when it *is* a subclass
of ``torch.nn.Module`` or ``keras.Model``, whatever path its bases came by.  Frameworks are
looked up in ``sys.modules``: a framework the file never imported cannot have made its models.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import os
import re
import sys
import textwrap
from typing import Any, Callable, Mapping

from rfa_lint.source import returned_calls

#: Parameters that load pretrained weights, and the value that turns them off.  Weights never
#: change a receptive field, and linting never downloads.
WEIGHTS_OFF: dict[str, Any] = {
    "pretrained": False,
    "pretrained_backbone": False,
    "weights": None,
    "weights_backbone": None,
    "backbone_weights": None,
    "encoder_weights": None,
    "pretrained_weights": None,
}

#: torch containers that user models subclass; any other class of ``torch.nn.modules`` in a
#: class's MRO makes it a layer (``class MyConv(nn.Conv2d)``) or a loss, not a model.
_TORCH_MODEL_BASES = ("Module", "Sequential", "ModuleList", "ModuleDict", "Container")


def model_framework(cls: Any) -> str | None:
    """``"torch"`` / ``"keras"`` when ``cls`` is a concrete model class, else None.

    Not models: layers and losses (subclasses of a torch layer class, or named ``...Loss``),
    classes without a ``forward`` (``ModuleList`` subclasses, abstract bases), abstract classes.
    """
    if not isinstance(cls, type) or inspect.isabstract(cls) or cls.__name__.lower().endswith("loss"):
        return None
    torch = sys.modules.get("torch")
    if torch is not None and issubclass(cls, torch.nn.Module):
        if cls.forward is torch.nn.Module.forward:
            return None
        layers = [c for c in cls.__mro__ if c.__module__.startswith("torch.nn.modules.")]
        return "torch" if all(c.__name__ in _TORCH_MODEL_BASES for c in layers) else None
    keras = sys.modules.get("keras")
    if keras is not None and issubclass(cls, keras.Model):
        return "keras"
    return None


def _model_type(annotation: Any) -> bool:
    """An annotation promising a model: any ``nn.Module`` / ``keras.Model`` class, the bases
    themselves included (``def imagenet_resnet18() -> nn.Module``)."""
    bases = [getattr(sys.modules.get(module), name, None)
             for module, name in (("torch.nn", "Module"), ("keras", "Model"))]
    return isinstance(annotation, type) and any(b is not None and issubclass(annotation, b) for b in bases)


def resolve(dotted: str, namespace: Mapping[str, Any]) -> Any:
    """The object a dotted name stands for in ``namespace`` (a module's globals), else None."""
    head, *rest = dotted.split(".")
    obj = namespace.get(head, getattr(builtins, head, None))
    for part in rest:
        try:
            obj = getattr(obj, part)
        except Exception:  # a lazy module attribute may raise anything
            return None
    return obj


def is_candidate(module: Any, candidate: Mapping[str, Any]) -> bool:
    """Whether to build a candidate of ``module``: a model class defined there, a function
    that evidently builds a model, or a top-level assignment of one (which the text showed).

    A function counts when a registry decorator marks it, when its return annotation is a
    model class, or when its ``return`` statements call one (``candidate["returns"]``, followed
    through the file's functions by :mod:`rfa_lint.source` and through other modules'
    functions here, decorated ones unwrapped, so keras.applications' ``ResNet50() ->
    ResNet(...) -> Functional(...)`` and torchvision's ``vgg16() -> _vgg(...) -> VGG(...)``
    count without calling anything).  Any other function may still be one (:func:`may_call`).
    """
    if candidate["kind"] == "instance":
        return candidate["evidence"] == "assignment"
    namespace = vars(module)
    obj = namespace.get(candidate["name"])
    if candidate["kind"] == "class":
        return getattr(obj, "__module__", None) == module.__name__ and model_framework(obj) is not None
    if not callable(obj):
        return False
    if candidate["evidence"] == "registry":
        return True
    if candidate["evidence"] == "annotation":
        annotated = resolve(candidate["annotation"], namespace)
        if isinstance(annotated, type):  # it says what it returns: believe it
            return _model_type(annotated)
    returned = candidate.get("returns", ())
    return any(_makes_model(resolve(name, namespace), FOLLOWED_CALLS) for name in returned)


def may_call(module: Any, candidate: Mapping[str, Any]) -> bool:
    """Whether a factory or a top-level assignment that reading could not confirm is called to
    see what comes back: a factory whose body only builds what it returns
    (``candidate["only_builds"]``), such as ``return timm.create_model("resnet18")``, a registry
    called by name; ``model = timm.create_model(...)``.  Only a model that comes back makes it
    one; a failure says nothing of what it would have returned."""
    if candidate["kind"] == "instance":  # a call that may make one (see rfa_lint.source)
        return True
    return candidate["kind"] == "factory" and bool(candidate.get("only_builds")) \
        and callable(vars(module).get(candidate["name"]))


#: How many functions of other modules a factory's returned call is followed through
#: (keras.applications' ``ResNet50V2() -> resnet.ResNet(...) -> Functional(...)``).
FOLLOWED_CALLS = 3


def _makes_model(target: Any, depth: int) -> bool:
    """A model class, or a function (of any module) whose ``return`` calls one, read from its
    source without calling it."""
    if isinstance(target, type):
        return model_framework(target) is not None
    try:
        target = inspect.unwrap(target)  # the decorated function: its globals name what it calls
    except (ValueError, TypeError):  # a cycle of __wrapped__, or an object that fakes one
        return False
    if depth == 0 or not inspect.isfunction(target):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(target)))
    except (OSError, TypeError, SyntaxError):
        return False
    function = tree.body[0] if tree.body and isinstance(tree.body[0], ast.FunctionDef) else None
    return function is not None and any(
        _makes_model(resolve(name, target.__globals__), depth - 1) for name in returned_calls(function)
    )


_FRAMEWORK_MODULES = ("torch.", "keras.", "tensorflow.", "tf_keras.")
#: How many subclasses a base class's message names.
NAMED_SUBCLASSES = 3


def subclass_names(obj: Any) -> str:
    """``'SuperResModel'`` / ``'A, B, C and 2 more'``: the loaded classes derived from ``obj``
    (in any module), or ``""`` when it is no class or has none."""
    try:
        found = sorted({c.__name__ for c in type.__subclasses__(obj)}) if isinstance(obj, type) else []
    except TypeError:
        return ""
    shown = ", ".join(found[:NAMED_SUBCLASSES])
    return f"{shown} and {len(found) - NAMED_SUBCLASSES} more" if len(found) > NAMED_SUBCLASSES else shown


def is_op(model: Any) -> bool:
    """Whether a torch model holds no parameter and no module (vit-pytorch's ``Attend``, a
    ``Rearrange`` wrapper): an op that models use.  When it cannot take an image it is no
    model, and not worth a report."""
    children, parameters = getattr(model, "children", None), getattr(model, "parameters", None)
    if not callable(children) or not callable(parameters):
        return False
    try:
        return next(children(), None) is None and next(parameters(), None) is None
    except Exception:  # a user override may raise anything
        return False


def makes_no_layers(cls: Any) -> bool:
    """Whether a class's constructor is a framework's own (``nn.Module.__init__``): it adds no
    layer, so a forward that uses layers is the subclasses' to fill (smp's
    ``SegmentationModel``), and it is a base, never a model a user runs on its own."""
    init = getattr(cls, "__init__", None)
    return getattr(init, "__module__", "").startswith(_FRAMEWORK_MODULES)


def unknown_keywords(factory: Callable, kwargs: Mapping[str, Any]) -> str:
    """``"unknown keyword 'widht' for Net (accepted: depth, width, classes)"`` when a directive
    gives a keyword the constructor does not take (and takes no ``**kwargs``), else ``""``."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the build itself will tell
        return ""
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return ""
    accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [key for key in kwargs if key not in accepted]
    if not unknown:
        return ""
    words = ", ".join(repr(key) for key in unknown)
    name = getattr(factory, "__name__", "the model")
    return (f"unknown keyword{'s' if len(unknown) > 1 else ''} {words} for {name} "
            f"(accepted: {', '.join(accepted) or 'none'})")


def built_classes(model: Any) -> list[list[str]]:
    """``[file, class name]`` of every model class of user code the model is made of, and of
    the user-code bases of its parts.

    A block that needs arguments on its own (``DoubleConv(cin, cout)``) is not worth a
    "needs arguments" report when a model analysed in the same run builds it; nor is the base
    of such a block (ultralytics' ``Segment``, whose ``Segment26`` the segmentation model
    builds).  The model's own bases are not its blocks: a base that fails alone is listed.
    """
    children = getattr(model, "modules", None) or getattr(model, "_flatten_layers", None)
    found = set()
    # the model itself comes first: its own class counts (a factory's class that needs
    # arguments is its block), its bases do not
    for number, part in enumerate(children() if callable(children) else ()):
        for cls in type(part).__mro__[:None if number else 1]:
            if cls.__module__.startswith(_FRAMEWORK_MODULES) or cls.__module__ == "builtins":
                continue
            try:
                found.add((os.path.abspath(inspect.getfile(cls)), cls.__name__))
            except (TypeError, OSError):  # a class made at run time has no file
                continue
    return [list(item) for item in sorted(found)]


def weights_off(factory: Callable, args: tuple, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments that turn off pretrained weights, for the parameters ``factory`` has
    by name and the user did not set (by position or by name)."""
    try:
        signature = inspect.signature(factory)
        given = signature.bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in WEIGHTS_OFF.items()
            if name in signature.parameters and name not in given}


_MISSING = re.compile(r"missing \d+ required (?:positional|keyword-only) arguments?: (.+)")
_OWN_FILES = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def passed_on_unfilled(error: BaseException) -> list[str]:
    """The required parameters a constructor passed its ``*args`` / ``**kwargs`` on without
    (monai's ``SEResNet50(**kwargs)`` -> ``SENet.__init__() missing 2 required positional
    arguments: 'spatial_dims' and 'in_channels'``): arguments the user must choose that the
    signature hid, as :func:`unfilled` finds visible ones.

    Only when every call of user code from the factory to the failing one passed arguments on
    (``f(*args, **kwargs)``, ``super().__init__(depth=50, **kwargs)``): a constructor that
    calls a block without its arguments is a bug of its own, not a question to its user.
    """
    match = _MISSING.search(str(error)) if isinstance(error, TypeError) else None
    if match is None:
        return []
    calls, tb = [], error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(_OWN_FILES):
            calls.append(next((i.opname for i in dis.get_instructions(code) if i.offset == tb.tb_lasti),
                              None))
        tb = tb.tb_next
    if not calls or any(call != "CALL_FUNCTION_EX" for call in calls):
        return []
    return re.findall(r"'(\w+)'", match.group(1))


def unfilled(factory: Callable, args: tuple = (), kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """Parameters a call with ``args`` / ``kwargs`` leaves unfilled (inherited ``__init__`` too)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read: the build itself will tell
        return []
    try:
        signature.bind(*args, **(kwargs or {}))
    except TypeError:
        given = set(kwargs or {})
        positional = [p for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:len(args)]
        filled = given | {p.name for p in positional}
        return [p.name for p in signature.parameters.values()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                and p.name not in filled] or ["(the given arguments do not fit the signature)"]
    return []
