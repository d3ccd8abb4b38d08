"""The sandbox child: imports one user file, builds its models, writes plain graph data.

Runs :func:`execute` in a process forked by a fork server (:mod:`.server`), with two fds: a file
holding the request (JSON, see :mod:`rfa_lint.sandbox`), and the write end of the pipe its
results travel on, as JSON lines sent as soon as each step finishes, so that when the child dies
or hangs the parent still knows how far it came.  Everything the user's code prints goes to the
child's own stdout and stderr, never into the result pipe.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import json
import os
import resource
import sys
import textwrap
import traceback
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from rfa_lint import slices
from rfa_lint.files import module_name
from rfa_lint.frontends import InputsUnknown, TraceError
from rfa_lint.sandbox import discovery, inputs, reads
from rfa_lint.sandbox.status import Status

DETAIL_CHARS = 300
#: torch's words when an allocation fails (a RuntimeError, not a MemoryError)
OUT_OF_MEMORY = "can't allocate memory"
#: How a base class of other models fails on its own (its subclasses add the layers it uses).
BASE_CLASS_FAILURES = frozenset({Status.NEEDS_ARGUMENTS, Status.BUILD_FAILED, Status.TRACE_FAILED,
                                 Status.NEEDS_INPUTS})
FRONTENDS = {"torch": "rfa_lint.frontends.torch", "keras": "rfa_lint.frontends.keras"}
FRAMEWORK_ORDER = ("torch", "keras")  # torch first: tensorflow first can crash a later torch import
#: imported by the child only (urllib and http.client cost the linter, which imports this module,
#: 13 ms); a warm server imports it before it forks
OFFLINE = "rfa_lint.sandbox.offline"


def where(exc: BaseException, path: str) -> str:
    """``Type: message (file.py:12)`` on one line, naming the innermost frame in the linted file.

    A TraceError already names the model's own failing line, so its message stands alone.
    """
    message = textwrap.shorten(" ".join(str(exc).split()), DETAIL_CHARS)
    if isinstance(exc, TraceError):
        return message
    frames = traceback.extract_tb(exc.__traceback__)
    in_file = [f for f in frames if f.filename == path]
    frame = (in_file or frames or [None])[-1]
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{text} ({Path(exc.filename).name}:{exc.lineno})"
    return f"{text} ({Path(frame.filename).name}:{frame.lineno})" if frame else text


class Module(NamedTuple):
    """An imported user module, its syntax tree, and the top-level statements that ran."""

    module: ModuleType
    tree: ast.Module
    ran: list[ast.stmt]


def import_source(path: Path, source: str, names: Iterable[str] = ()) -> Module:
    """Execute ``source`` as the module at ``path`` (so editors' unsaved buffers are linted).

    The file's package is imported normally first, so relative and sibling imports work (a
    folder without ``__init__.py`` is a namespace package for a module that imports relatively,
    see :func:`rfa_lint.files.module_name`).  When the package has imported this very file
    already and the text is the file on disk, that module is used: running it twice would repeat
    its side effects (torchvision registers every model name, and refuses a second
    registration).  A package's own ``__init__.py`` on disk is simply imported, which runs it
    once.

    A script (:func:`rfa_lint.slices.is_script`: its top level trains, reads its options, loads
    data ...) is never run whole: only its imports, definitions and what the definitions and
    ``names`` need (:func:`rfa_lint.slices.slice_module`).
    """
    tree = ast.parse(source, str(path))
    root, name = module_name(path, source)
    is_package = path.name == "__init__.py" and name != "__init__"
    sys.path.insert(0, str(root))
    parent = name.rpartition(".")[0]
    if parent:
        importlib.import_module(parent)
    on_disk = _on_disk(path, source)
    if is_package and on_disk:
        importlib.import_module(name)
    loaded = sys.modules.get(name)
    if loaded is not None and _same_file(getattr(loaded, "__file__", None), path) and on_disk:
        return Module(loaded, tree, tree.body)
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path), is_package=is_package)
    if is_package:  # its submodules are found in its folder
        spec.submodule_search_locations.append(str(path.parent))
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    sys.modules[name] = module
    code = slices.slice_module(tree, names) if slices.is_script(tree) else tree
    exec(compile(code, str(path), "exec"), module.__dict__)
    return Module(module, tree, code.body)


def made_by_assignment(imported: Module, candidate: dict, path: str) -> Callable[[], Any]:
    """A factory of a top-level ``name = ...`` model: it runs the assignment again, with what it
    needs that the import did not run, and the statements that shape it (``model.add(...)``).

    A script's ``sys.exit()`` or argparse's exit there is the build's error, not the child's end.
    """
    code = compile(slices.instance_slice(imported.tree, candidate["line"], imported.ran), path, "exec")
    namespace = vars(imported.module)

    def make() -> Any:
        try:
            exec(code, namespace)
        except (SystemExit, KeyboardInterrupt) as exc:
            raise RuntimeError(f"{type(exc).__name__} {exc} while making it ({where(exc, path)})") from None
        return namespace[candidate["name"]]

    return make


def _same_file(a: str | None, b: Path) -> bool:
    return a is not None and os.path.exists(a) and os.path.samefile(a, b)


def _on_disk(path: Path, source: str) -> bool:
    try:
        return importlib.util.decode_source(path.read_bytes()) == source
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False


class Channel:
    """Sends one JSON object per line down the result pipe, flushed at once."""

    def __init__(self, fd: int) -> None:
        self._file = open(fd, "w", encoding="utf-8")

    def send(self, **event: Any) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()


def build_and_trace(factory: Callable, candidate: dict, context: "_Context") -> dict:
    """One candidate -> {"status": ..., "graph" | "detail": ...}.

    Built with its weights on meta first; when that build or its trace fails for want of weight
    values (``.item()`` on a weight, an op without a meta kernel), built for real on the CPU,
    under the memory limit, and traced on a real image.  The graph says which: ``built`` is
    ``"meta"`` or ``"cpu"``.  A factory that turns out to return something else than a model is
    ``not-a-model`` (not reported); a build that tried to reach the network is
    ``download-blocked``, naming what.
    """
    args, kwargs = tuple(candidate["build_args"]), dict(candidate["build_kwargs"])
    kwargs.update(discovery.weights_off(factory, args, kwargs))
    missing = discovery.unfilled(factory, args, kwargs)
    if missing:
        return {"status": Status.NEEDS_ARGUMENTS, "detail": ", ".join(missing)}
    result = _build_and_trace(factory, args, kwargs, candidate, context, meta=True)
    if not result.pop("retry", False):
        return result
    real = _build_and_trace(factory, args, kwargs, candidate, context, meta=False)
    real.pop("retry", None)
    if real["status"] == Status.OK:
        return real
    if real["status"] == Status.MEMORY_LIMIT or OUT_OF_MEMORY in real.get("detail", ""):
        return {"status": Status.MEMORY_LIMIT, "detail": f"building it for real: {real.get('detail', '')}"}
    return result  # why it failed on meta says more than a real build's later failure


def _build_and_trace(factory: Callable, args: tuple, kwargs: dict, candidate: dict, context: "_Context",
                     meta: bool) -> dict:
    """One build and trace, on meta or for real; ``retry`` when a real one may succeed."""
    attempts = len(context.network.attempts)
    try:
        with context.building(meta):
            model = factory(*args, **kwargs)
    except MemoryError:
        return {"status": Status.MEMORY_LIMIT, "detail": "MemoryError while building"}
    except Exception as exc:  # the user's constructor: anything can happen
        downloads = context.network.attempts[attempts:]
        if downloads:
            return {"status": Status.DOWNLOAD_BLOCKED, "detail": f"tried to download {downloads[0]}"}
        if hidden := discovery.passed_on_unfilled(exc):  # required behind **kwargs
            return {"status": Status.NEEDS_ARGUMENTS, "detail": ", ".join(hidden)}
        return {"status": Status.BUILD_FAILED, "detail": where(exc, context.path),
                "retry": meta and context.needs_values(exc)}
    frontend = context.frontend_of(model)
    if frontend is None:
        if candidate["kind"] == "factory" and candidate["evidence"] != "annotation":
            return {"status": Status.NOT_A_MODEL, "detail": type(model).__name__}
        return {"status": Status.BUILD_FAILED, "detail": f"returned {type(model).__name__}, not a model"}
    feed = inputs.plan(model, candidate.get("input_shape"))
    if feed.missing:
        return {"status": Status.NEEDS_INPUTS, "detail": inputs.needed(feed)}
    options = {"inputs": feed.extra} if feed.extra else {}
    if not meta:
        options["real"] = True
    resolution, declared = tuple(candidate.get("resolution") or ()), inputs.declared_size(model)
    try:
        graph = frontend.to_plain(model, input_shape=feed.image, resolution=resolution, declared=declared,
                                  **options)
    except MemoryError:
        return {"status": Status.MEMORY_LIMIT, "detail": "MemoryError while tracing"}
    except InputsUnknown as exc:  # the first use of an input says not its shape
        failed = {"status": Status.NEEDS_INPUTS, "detail": inputs.needed(replace(feed, missing=exc.names)),
                  "retry": False}
        graph = None
    except Exception as exc:
        failed = {"status": Status.TRACE_FAILED, "detail": where(exc, context.path),
                  "retry": meta and frontend.needs_values(exc)}
        graph = None
    if graph is None and discovery.is_op(model) and not candidate.get("directed"):
        return {"status": Status.NOT_A_MODEL, "detail": "an op of no layers that takes no image"}
    if graph is None:
        traced = _trace_part(frontend, model, resolution, declared) if failed["retry"] else None
        if traced is None:
            return failed
        graph, model = traced
    classes = discovery.built_classes(model)
    return {"status": Status.OK, "graph": {**graph, "classes": classes, "built": "meta" if meta else "cpu"}}


def _trace_part(frontend: ModuleType, model: Any, resolution: tuple,
                declared: Any) -> tuple[dict, Any] | None:
    """The graph of the first part of ``model`` that takes its image (``part`` names it) and
    that part, traced on meta; None when none does.  Cheaper than a real build, and a
    detector's postprocessing would not trace on a real image either."""
    for name, part in frontend.image_parts(model):
        try:
            return {**frontend.to_plain(part, resolution=resolution, declared=declared), "part": name}, part
        except Exception:  # not the part that takes the image
            continue
    return None


class _Context:
    """What building any model of the file needs: the frontends, the network guard, the path."""

    def __init__(self, path: str, frontends: dict[str, ModuleType], network: Any) -> None:
        self.path, self.frontends, self.network = path, frontends, network

    @contextlib.contextmanager
    def building(self, meta: bool = True) -> Iterator[None]:
        """Every frontend's building context at once (weights without memory unless not
        ``meta``, layer sites)."""
        with contextlib.ExitStack() as stack:
            for frontend in self.frontends.values():
                stack.enter_context(frontend.building_context(meta))
            yield

    def needs_values(self, error: BaseException) -> bool:
        """A failure that a real build may not have (see the frontends' ``needs_values``)."""
        return any(frontend.needs_values(error) for frontend in self.frontends.values())

    def frontend_of(self, model: Any) -> ModuleType | None:
        return next((f for f in self.frontends.values() if f.is_model(model)), None)


def warm_up(framework: str, frameworks: list[str]) -> None:
    """Import what a child needs before the user's code: torch (and torchvision) before tensorflow,
    as the other order can segfault later, then the frontends of ``frameworks``.

    A fork server calls this once and every child it forks starts warm; a plain child calls it
    itself.  Import failures are left for :func:`run` to report.  torch gets one thread: under
    load its thread pool slows tiny ops, and forking a process whose pool runs is unsafe.
    """
    names = ("torch", "torchvision") if "torch" in frameworks else ()
    for name in (*names, *(FRONTENDS[f] for f in sorted(frameworks, key=FRAMEWORK_ORDER.index)), OFFLINE):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def options_not_required() -> None:
    """Make the options a script reads from its command line optional: the child gives it none,
    and the official PyTorch examples read ``required=True`` options at import (a model's
    width among them), where argparse's exit would end the file.  Each reads as its default
    (None for most required ones); a model that truly needs one fails on that, by name.
    """
    import argparse

    parse = argparse.ArgumentParser.parse_known_args

    def parse_known_args(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        if args is None:  # the command line, not a list the script made itself
            for item in (*self._actions, *self._mutually_exclusive_groups):
                item.required = False
        return parse(self, args, namespace)

    argparse.ArgumentParser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def run(request: dict, channel: Channel) -> None:
    """Import the file, find its models among the candidates, build and trace each one."""
    path = request["path"]
    frontends, missing = {}, []
    for framework in sorted(request["frameworks"], key=FRAMEWORK_ORDER.index):
        try:
            frontends[framework] = importlib.import_module(FRONTENDS[framework])
        except ImportError as exc:
            missing.append(str(exc))
    if not frontends:
        channel.send(event="framework-missing", detail="; ".join(missing))
        return
    sys.argv = [path]  # as if the user ran the file: a module-level argparse sees no options
    options_not_required()
    offline = importlib.import_module(OFFLINE)
    with offline.no_network() as network:
        context = _Context(path, frontends, network)
        names = [c["name"] for c in request["candidates"] if c["kind"] != "instance"]
        try:
            with context.building():
                module = import_source(Path(path), request["source"], names)
        except MemoryError:
            channel.send(event="import-failed", status=Status.MEMORY_LIMIT, detail="MemoryError at import")
            return
        except BaseException as exc:  # SystemExit and KeyboardInterrupt at import are user errors too
            detail = where(exc, path)
            if network.attempts:
                detail = f"tried to download {network.attempts[0]} at import ({detail})"
            channel.send(event="import-failed", status=Status.IMPORT_FAILED, detail=detail)
            return
        channel.send(event="imported")
        _build_all(module, request, channel, context)


def _build_all(imported: Module, request: dict, channel: Channel, context: _Context) -> None:
    for candidate in request["candidates"]:
        name = candidate["name"]
        sure = _is_candidate(imported.module, candidate)
        if not sure and not discovery.may_call(imported.module, candidate):
            if candidate["directed"]:  # a directive names it: say it is no model
                channel.send(event="start", model=name)
                channel.send(event="model", model=name, status=Status.NOT_A_MODEL,
                             detail="Python finds no model class or model factory by that name")
            continue
        channel.send(event="start", model=name)
        result = _build_one(imported, candidate, context)
        if not sure and result["status"] != Status.OK and not candidate["directed"]:
            result = {"status": Status.NOT_A_MODEL, "detail": f"a guess that failed: {result.get('detail')}"}
        channel.send(event="model", model=name, **result)
    channel.send(event="done")


def _build_one(imported: Module, candidate: dict, context: _Context) -> dict:
    """A candidate's result: its directive's values read back with their types (a tuple stays a
    tuple), a keyword its constructor does not take named, a base class told apart."""
    candidate = {**candidate, "build_args": ast.literal_eval(candidate["build_args"]),
                 "build_kwargs": ast.literal_eval(candidate["build_kwargs"])}
    if candidate["kind"] == "instance":
        try:
            factory = made_by_assignment(imported, candidate, context.path)
        except (ValueError, SyntaxError) as exc:  # the text changed under it: nothing to run
            return {"status": Status.BUILD_FAILED, "detail": str(exc)}
    else:
        factory = getattr(imported.module, candidate["name"])
    unknown = discovery.unknown_keywords(factory, candidate["build_kwargs"])
    if unknown:
        return {"status": Status.BAD_DIRECTIVE, "detail": unknown}
    result = build_and_trace(factory, candidate, context)
    subclasses = discovery.subclass_names(factory)
    if result["status"] not in BASE_CLASS_FAILURES or not subclasses or candidate["directed"]:
        return result
    if discovery.makes_no_layers(factory):
        return {"status": Status.NOT_A_MODEL,
                "detail": f"a base class of {subclasses} with no layers of its own"}
    return {**result, "detail": f"{result['detail']}; a base class of {subclasses}"}


def _is_candidate(module: ModuleType, candidate: dict) -> bool:
    """Discovery decides; a guess of the text that Python contradicts is dropped silently."""
    try:
        return discovery.is_candidate(module, candidate)
    except Exception:  # user metaclasses and lazy attributes may raise anything
        return False


def address_limit(memory_mb: int) -> int:
    """The requested address-space cap, but no more than the hard limit this process inherited:
    asking for more is an error (it would stop every model), and the lower cap holds anyway."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    limit = memory_mb * 2**20
    return limit if hard == resource.RLIM_INFINITY else min(limit, hard)


def execute(request_fd: int, result_fd: int) -> None:
    """Everything a child does, forked from a warm or a cold server: the request is read from
    ``request_fd`` (and closed, before any user code runs), results go to ``result_fd``."""
    with open(request_fd, "rb") as handle:
        request = json.load(handle)
    channel = Channel(result_fd)
    resource.setrlimit(resource.RLIMIT_AS, (address_limit(request["memory_mb"]),) * 2)
    warm_up(request["framework"], request["frameworks"])
    recorder = reads.record()  # what the file's results depend on, for the parent's cache
    run(request, channel)
    channel.send(**recorder.event())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: user atexit handlers and framework shutdown
