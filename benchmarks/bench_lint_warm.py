"""Per-file cost of cold files: 20 small model files, warm fork server vs a fresh child per file.

Each side lints 1 file and then 20 files with an empty cache (``--no-cache``, one file at a
time); (t20 - t1) / 19 is what each file after the first costs.  "fresh child" is the old way
(``python -m rfa_lint.sandbox.child`` per file, each importing torch), forced by making the fork
server unavailable.  The reference is a plain ``python -c "import torch"``.  Target: the
per-file cost with the fork server is well below one torch import.
    python benchmarks/bench_lint_warm.py
"""

import shutil
import sys
import tempfile
from pathlib import Path

from bench_lint_common import median_seconds, python, verdict

MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "chain.py"
LINT = """
import sys
from rfa_lint.cli import main
from rfa_lint.sandbox import SERVERS, warm

if sys.argv.pop(1) == "fresh":
    def unavailable(*args):
        raise warm.ServerLost("benchmark: fresh children only")
    SERVERS.server_for = unavailable
main()
"""
FILES = 20


def main() -> int:
    import_torch = median_seconds(python("import torch"), runs=3)
    per_file = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = [str(shutil.copy(MODEL, Path(folder, f"model_{i:02}.py"))) for i in range(FILES)]
        for side in ("warm", "fresh"):
            lint = [side, "--res", "16", "--no-cache", "-j", "1", "--exit-zero", "-q"]
            one = median_seconds(python(LINT, *lint, paths[0]), runs=3)
            many = median_seconds(python(LINT, *lint, *paths), runs=1)
            per_file[side] = (many - one) / (FILES - 1)
            print(f"{side:>5}: 1 file {one:6.2f} s, {FILES} files {many:6.2f} s -> "
                  f"{per_file[side]:.3f} s per file after the first")
    print(f'python -c "import torch": {import_torch:.2f} s')
    print(f"per file, warm vs fresh child:  {per_file['fresh'] / per_file['warm']:.1f}x less")
    print(f"per file, warm vs import torch: {per_file['warm'] / import_torch:.2f} of one import")
    ok = per_file["warm"] < import_torch / 2
    print(f"target: no framework import paid per file: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
