"""Coverage of rfa-lint on a corpus of model code: models analysed, skipped per code, findings.

    python benchmarks/coverage.py RES PATH...                 # this checkout
    PYTHONPATH=../old CHECKOUT=../old python benchmarks/coverage.py RES PATH...   # another one

Prints one JSON line.  For a checkout from before per-model coverage existed (no
``Analysis.models``), a model counts as analysed when it has a graph and as skipped when it has
a model-level RFA9xx finding.  Used for the recall / truth figures in the session notes
(torchvision's ``models/``, timm files, segmentation_models_pytorch, keras.applications).
"""

import collections
import json
import os
import sys
import time

sys.path.insert(0, os.environ.get("CHECKOUT", ""))

import rfa_lint  # noqa: E402
from rfa_lint import lint  # noqa: E402
from rfa_lint.files import python_files  # noqa: E402

try:  # the settings moved out of lint.py; older checkouts keep them there
    from rfa_lint.settings import options_from  # noqa: E402
except ImportError:
    options_from = lint.options_from


def main(res: str, paths: list[str]) -> dict:
    files = [str(p) for p in python_files(paths)]
    options = options_from({"res": res, "timeout": 120})
    start = time.time()
    results = [(path, analysis) for path, analysis, _ in lint.analyse_files(files, lambda _: options, jobs=2)]
    if hasattr(lint, "without_blocks"):
        results = lint.without_blocks(results)
    analysed, skipped, codes, per_file = 0, collections.Counter(), collections.Counter(), {}
    for path, analysis in results:
        if hasattr(analysis, "models"):
            ok = sum(m.analysed for m in analysis.models)
            skips = collections.Counter(m.code for m in analysis.models if not m.analysed)
        else:
            ok = len(analysis.graphs)
            skips = collections.Counter(f.code for f in analysis.findings
                                        if f.code.startswith("RFA9") and f.code != "RFA905")
        analysed += ok
        skipped.update(skips)
        codes.update(f.code for f in analysis.findings)
        per_file[os.path.basename(path)] = (ok, dict(skips))
    return {"rfa_lint": rfa_lint.__file__, "files": len(files), "analysed": analysed,
            "skipped": dict(skipped), "codes": dict(sorted(codes.items())),
            "seconds": round(time.time() - start, 1), "per_file": per_file}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))
