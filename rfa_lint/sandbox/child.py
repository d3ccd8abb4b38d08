"""The sandbox child: imports one user file, builds its models, writes plain graph data.

Runs :func:`execute` with REQUEST and RESULT paths, in a fresh Python or forked from a warm
server.  The request is JSON (see :mod:`rfa_lint.sandbox`); results are appended to RESULT as
JSON lines as soon as each step finishes, so that when the child dies or hangs the parent still
knows how far it came.  Everything the user's code prints goes to the child's own stdout and
stderr, never into RESULT.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import resource
import sys
import textwrap
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from rfa_lint.frontends import TraceError

DETAIL_CHARS = 300
FRONTENDS = {"torch": "rfa_lint.frontends.torch", "keras": "rfa_lint.frontends.keras"}


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


def package_of(path: Path) -> tuple[Path, str]:
    """(sys.path root, dotted module name) for a file, walking up through ``__init__.py`` folders.

    A package's ``__init__.py`` comes out as ``pkg.__init__`` (the cache reads its package off
    the name); :func:`module_name` gives the name it is imported under.
    """
    parts, folder = [path.stem], path.parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def module_name(path: Path) -> tuple[Path, str]:
    """Like :func:`package_of`, but a package's ``__init__.py`` is the package itself."""
    root, name = package_of(path)
    package, _, last = name.rpartition(".")
    return root, (package if last == "__init__" and package else name)


def import_source(path: Path, source: str) -> ModuleType:
    """Execute ``source`` as the module at ``path`` (so editors' unsaved buffers are linted).

    The file's package is imported normally first, so relative and sibling imports work.  When
    the package has imported this very file already and the text is the file on disk, that
    module is used: running it twice would repeat its side effects (torchvision registers every
    model name, and refuses a second registration).  A package's own ``__init__.py`` on disk is
    simply imported, which runs it once.
    """
    root, name = module_name(path)
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
        return loaded
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path), is_package=is_package)
    if is_package:  # its submodules are found in its folder
        spec.submodule_search_locations.append(str(path.parent))
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    sys.modules[name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def _same_file(a: str | None, b: Path) -> bool:
    return a is not None and os.path.exists(a) and os.path.samefile(a, b)


def _on_disk(path: Path, source: str) -> bool:
    try:
        return importlib.util.decode_source(path.read_bytes()) == source
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False


def unfilled(factory: Callable) -> list[str]:
    """Parameters a call without arguments leaves unfilled (inherited ``__init__`` included)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read: the build itself will tell
        return []
    try:
        signature.bind()
    except TypeError:
        return [p.name for p in signature.parameters.values()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return []


class Instantiations:
    """Which candidate classes get built while *another* candidate is built (blocks of a net).

    Such a class needs no arguments of its own from the user: the net that uses it says how.
    """

    def __init__(self, classes: list[type]) -> None:
        self.building: str | None = None
        self.seen: set[str] = set()
        for cls in classes:
            cls.__init__ = self._recording(cls.__init__, cls.__name__)

    def _recording(self, original: Callable, name: str) -> Callable:
        seen, building = self.seen, lambda: self.building

        # named ``self`` and not functools.wraps'd: keras reads the argspec of __init__, and
        # needs its signature and its argspec to agree
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            if name != building():
                seen.add(name)
            original(self, *args, **kwargs)

        return init


class Channel:
    """Appends one JSON object per line to the result file, flushed at once."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")

    def send(self, **event: Any) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()


def build_and_trace(frontend: ModuleType, factory: Callable, candidate: dict, path: str) -> dict:
    """One candidate -> {"status": ..., "graph" | "detail": ...}."""
    args, kwargs = candidate["build_args"], candidate["build_kwargs"]
    try:
        with frontend.building_context():
            model = factory(*args, **kwargs)
    except MemoryError:
        return {"status": "memory-limit", "detail": "MemoryError while building"}
    except Exception as exc:  # the user's constructor: anything can happen
        return {"status": "build-failed", "detail": where(exc, path)}
    if not frontend.is_model(model):
        return {"status": "build-failed", "detail": f"returned {type(model).__name__}, not a model"}
    try:
        graph = frontend.to_plain(model, input_shape=candidate.get("input_shape"))
    except MemoryError:
        return {"status": "memory-limit", "detail": "MemoryError while tracing"}
    except Exception as exc:
        return {"status": "trace-failed", "detail": where(exc, path)}
    return {"status": "ok", "graph": graph}


def warm_up(framework: str, frameworks: list[str]) -> None:
    """Import what a child needs before the user's code: torch (and torchvision) before tensorflow,
    as the other order can segfault later, then the frontend.

    A fork server calls this once and every child it forks starts warm; a plain child calls it
    itself.  Import failures are left for :func:`run` to report.  torch gets one thread: under
    load its thread pool slows tiny ops, and forking a process whose pool runs is unsafe.
    """
    names = ("torch", "torchvision") if "torch" in frameworks else ()
    for name in (*names, FRONTENDS[framework]):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def run(request: dict, channel: Channel) -> None:
    path = request["path"]
    try:
        frontend = importlib.import_module(FRONTENDS[request["framework"]])
    except ImportError as exc:
        channel.send(event="framework-missing", detail=str(exc))
        return
    sys.argv = [path]  # as if the user ran the file: a module-level argparse sees no options
    try:
        with frontend.building_context():
            module = import_source(Path(path), request["source"])
    except MemoryError:
        channel.send(event="import-failed", status="memory-limit", detail="MemoryError at import")
        return
    except BaseException as exc:  # SystemExit and KeyboardInterrupt at import are user errors too
        channel.send(event="import-failed", status="import-failed", detail=where(exc, path))
        return
    channel.send(event="imported")
    candidates = request["candidates"]
    objects = {c["name"]: getattr(module, c["name"], None) for c in candidates}
    missing = {name: unfilled(obj) for name, obj in objects.items() if obj is not None}
    built = Instantiations([o for o in objects.values() if isinstance(o, type)])
    for candidate in candidates:
        channel.send(event="start", model=candidate["name"])
        factory = objects[candidate["name"]]
        if factory is None:
            result = {"status": "build-failed", "detail": f"{candidate['name']} is not defined at import"}
        elif not (candidate["build_args"] or candidate["build_kwargs"]) and missing[candidate["name"]]:
            result = {"status": "needs-arguments", "detail": ", ".join(missing[candidate["name"]])}
        else:
            built.building = candidate["name"]
            result = build_and_trace(frontend, factory, candidate, path)
            built.building = None
        channel.send(event="model", model=candidate["name"], **result)
    channel.send(event="done", instantiated=sorted(built.seen))


def address_limit(memory_mb: int) -> int:
    """The requested address-space cap, but no more than the hard limit this process inherited:
    asking for more is an error (it would stop every model), and the lower cap holds anyway."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    limit = memory_mb * 2**20
    return limit if hard == resource.RLIM_INFINITY else min(limit, hard)


def execute(request_path: str, result_path: str) -> None:
    """Everything a child does, in a fresh process or in one forked from a warm server."""
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    channel = Channel(result_path)
    resource.setrlimit(resource.RLIMIT_AS, (address_limit(request["memory_mb"]),) * 2)
    warm_up(request["framework"], request["frameworks"])
    run(request, channel)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: user atexit handlers and framework shutdown


if __name__ == "__main__":
    execute(*sys.argv[1:3])
