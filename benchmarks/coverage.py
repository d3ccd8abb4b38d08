"""Coverage of rfa-lint on installed model zoos: models found, analysed, skipped per code, findings.

    python benchmarks/coverage.py                          # every corpus whose package is installed
    python benchmarks/coverage.py --corpus timm --limit 20 # a quick, evenly spaced sample of files
    python benchmarks/coverage.py --json 'out/before-{corpus}.json' --markdown out/before.md

Each corpus is a package installed from PyPI, linted where it is installed (never vendored),
at a resolution its models are made for.  The table counts each model the linter found; a model
skipped with RFA902 needs constructor arguments a user must choose, so it is set apart: the
figure to watch is the share of the other models (constructors that build as they are) that were
analysed.  The JSON keeps every model record and every finding, for the failure taxonomy and for
checking findings by hand.  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from rfa_lint import lint
from rfa_lint.files import python_files
from rfa_lint.rules import DEFAULT_IGNORE
from rfa_lint.settings import options_from

#: The code of a model whose constructor needs arguments a user must choose: a fair skip.
NEEDS_ARGUMENTS = "RFA902"

#: A skip's cause is its reason's beginning: long ones (a framework's error text) are cut at
#: different places in different models.
CAUSE_CHARS = 120

#: transformers' vision models, by folder (each is linted through its ``modeling_<name>.py``).
TRANSFORMERS_VISION = (
    "beit", "bit", "convnext", "convnextv2", "cvt", "deit", "dinat", "dinov2", "dpt", "efficientnet",
    "focalnet", "glpn", "levit", "mobilenet_v1", "mobilenet_v2", "mobilevit", "mobilevitv2", "poolformer",
    "pvt", "pvt_v2", "regnet", "resnet", "segformer", "swiftformer", "swin", "swinv2", "upernet", "van",
    "vit", "vit_mae", "yolos", "hiera", "textnet",
)


@dataclass(frozen=True)
class Corpus:
    """A zoo: the installed package, what of it is linted, and the resolution its models take.

    ``select(root)`` gives the files or folders under the package's folder ``root``.
    """

    package: str
    res: str
    select: Callable[[Path], Iterable[Path]]
    note: str = ""


def _under(*folders: str) -> Callable[[Path], Iterable[Path]]:
    return lambda root: [root / folder for folder in folders]


def _transformers(root: Path) -> Iterable[Path]:
    files = (root / "models" / name / f"modeling_{name}.py" for name in TRANSFORMERS_VISION)
    return [path for path in files if path.is_file()]


def _keras_hub(root: Path) -> Iterable[Path]:
    """The backbones of the model folders that also hold an image classifier, segmenter or detector."""
    tasks = ("_image_classifier.py", "_image_segmenter.py", "_object_detector.py", "_depth_estimator.py")
    return sorted(backbone for folder in (root / "src" / "models").iterdir() if folder.is_dir()
                  if any(p.name.endswith(tasks) for p in folder.iterdir())
                  for backbone in folder.glob("*_backbone.py"))


CORPORA: dict[str, Corpus] = {
    "torchvision": Corpus("torchvision", "224", _under("models")),
    "timm": Corpus("timm", "224", _under("models")),
    "pytorchcv": Corpus("pytorchcv", "224", _under("models")),
    "smp": Corpus("segmentation_models_pytorch", "224", _under("decoders", "encoders")),
    "transformers": Corpus("transformers", "224", _transformers, "vision modeling_*.py files"),
    "diffusers": Corpus("diffusers", "64", _under("models/unets", "models/autoencoders"), "latent size"),
    "monai": Corpus("monai", "96x96x96", _under("networks/nets"), "3-D"),
    "keras": Corpus("keras", "224", _under("src/applications"), "keras.applications"),
    "keras-hub": Corpus("keras_hub", "224", _keras_hub, "vision backbones"),
    "ultralytics": Corpus("ultralytics", "224", _under("nn/tasks.py", "nn/modules"), "YOLO from yaml"),
    "vit-pytorch": Corpus("vit_pytorch", "224", _under(".")),
}


def package_root(package: str) -> Path | None:
    """The installed package's folder, found without importing it (that is the children's job)."""
    spec = importlib.util.find_spec(package)
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def sample(files: list[str], limit: int | None) -> list[str]:
    """``limit`` files spread evenly over the sorted list (all of them without a limit)."""
    if not limit or limit >= len(files):
        return files
    return [files[i * len(files) // limit] for i in range(limit)]


def measure(name: str, corpus: Corpus, limit: int | None, timeout: int, jobs: int) -> dict[str, Any]:
    """Lint one corpus; its figures, model records and findings (paths relative to the package)."""
    root = package_root(corpus.package)
    if root is None:
        return {"corpus": name, "error": f"{corpus.package} is not installed"}
    files = sample(sorted(str(p) for p in python_files([str(p) for p in corpus.select(root)])), limit)
    options = options_from({"res": corpus.res, "timeout": timeout, "no-worker": True})
    start, results = time.perf_counter(), []
    for number, (path, analysis, seconds) in enumerate(
            lint.analyse_files(files, lambda _: options, jobs=jobs), 1):
        results.append((path, analysis, seconds))
        done = sum(m.analysed for m in analysis.models)
        print(f"[{name} {number}/{len(files)}] {os.path.relpath(path, root)}: "
              f"{done}/{len(analysis.models)} analysed, {seconds:.1f}s", file=sys.stderr, flush=True)
    seconds_of = {os.path.relpath(path, root): round(s, 2) for path, _, s in results}
    kept = lint.without_blocks([(path, analysis) for path, analysis, _ in results])
    models, findings = [], []
    for path, analysis in kept:
        where = os.path.relpath(path, root)
        models += [{"file": where, **m.to_json()} for m in analysis.models]
        findings += [{"file": where, "line": f.line, "code": f.code, "message": f.message,
                      "details": dict(f.details)} for f in analysis.findings]
    return {"corpus": name, "rfa_lint": os.path.dirname(lint.__file__), "package": corpus.package,
            "root": str(root), "res": corpus.res,
            "note": corpus.note, "limit": limit, "files": len(files),
            "seconds": round(time.perf_counter() - start, 1),
            "file_seconds": seconds_of,
            "files_without_models": sorted(set(seconds_of) - {m["file"] for m in models}),
            **figures(models, findings), "models": models, "findings": findings}


def cause(reason: str) -> str:
    """A skip's reason without what names one model (names, places, numbers): its cause, to count."""
    text = re.sub(r"'[^']*'|\b(trace) [\w.]+ on\b", lambda m: f"{m.group(1)} X on" if m.group(1) else "'X'",
                  reason)
    text = re.sub(r"\((at )?[^()]*\.py:\d+\)|\d+", "N", text)
    return re.split(r" \(fix it| pass input_shape|; give them| \(input \(", text)[0][:CAUSE_CHARS]


def losses(models: list[dict]) -> list[dict[str, Any]]:
    """The models not analysed for another reason than needing arguments, by code and cause,
    most frequent first, with two examples each."""
    groups = collections.defaultdict(list)
    for m in models:
        if not m["analysed"] and m["code"] != NEEDS_ARGUMENTS:
            groups[(m["code"], cause(m["reason"]))].append(f"{m['file']}:{m['line']} {m['name']}")
    return [{"code": code, "cause": text, "count": len(items), "examples": items[:2]}
            for (code, text), items in sorted(groups.items(), key=lambda item: -len(item[1]))]


def figures(models: list[dict], findings: list[dict]) -> dict[str, Any]:
    """The table's numbers of one corpus."""
    skipped = collections.Counter(m["code"] for m in models if not m["analysed"])
    analysed = sum(m["analysed"] for m in models)
    buildable = len(models) - skipped[NEEDS_ARGUMENTS]
    return {"found": len(models), "analysed": analysed, "skipped": dict(sorted(skipped.items())),
            "buildable": buildable, "buildable_analysed": analysed,
            "share": round(analysed / buildable, 3) if buildable else None,
            "codes": dict(sorted(collections.Counter(f["code"] for f in findings).items())),
            "losses": losses(models)}


def markdown(runs: list[dict]) -> str:
    """One row per corpus."""
    lines = ["| corpus | res | files | models found | analysed | skipped per code | needs arguments "
             "(RFA902) | analysed of the rest | findings shown by default | time |",
             "|---|---|--:|--:|--:|---|--:|--:|---|--:|"]
    for run in runs:
        if "error" in run:
            lines.append(f"| {run['corpus']} | | | | | {run['error']} | | | | |")
            continue
        skips = ", ".join(f"{code} {n}" for code, n in run["skipped"].items() if code != NEEDS_ARGUMENTS)
        share = f"{run['buildable_analysed']}/{run['buildable']}"
        if run["share"] is not None:
            share += f" ({100 * run['share']:.1f} %)"
        codes = ", ".join(f"{code} {n}" for code, n in run["codes"].items() if code not in DEFAULT_IGNORE)
        files = f"{run['files']} (sample)" if run["limit"] else str(run["files"])
        cells = [run["corpus"], run["res"], files, run["found"], run["analysed"], skips or "-",
                 run["skipped"].get(NEEDS_ARGUMENTS, 0), share, codes or "-", f"{run['seconds']:.0f} s"]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA),
                        help="a corpus to run (repeatable; default: all)")
    parser.add_argument("--limit", type=int, help="lint only this many files of each corpus, evenly spaced")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per model (default: 60)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="files at once (default: 2)")
    parser.add_argument("--json", metavar="PATTERN", help="each corpus's JSON file; {corpus} is its name")
    parser.add_argument("--markdown", metavar="FILE", help="write the table here too")
    args = parser.parse_args(argv)
    runs = []
    for name in args.corpus or CORPORA:
        run = measure(name, CORPORA[name], args.limit, args.timeout, args.jobs)
        runs.append(run)
        if args.json:
            target = Path(args.json.format(corpus=name))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(run, indent=1) + "\n")
    table = markdown(runs)
    if args.markdown:
        Path(args.markdown).write_text(table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
