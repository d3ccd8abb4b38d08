"""Cold vs cached: lint the installed torchvision/models/ folder at 32px, then again unchanged.

The cold run starts with an empty cache folder; the second run finds every file unchanged and
reads its results back without starting a child.  Targets: the re-run <= 0.5 s and >= 20x
faster than cold.
    python benchmarks/bench_lint_cache.py
"""

import os
import sys
import tempfile

import torchvision
from bench_lint_common import PYTHON, median_seconds, seconds, verdict

MODELS = os.path.join(os.path.dirname(torchvision.__file__), "models")


def main() -> int:
    with tempfile.TemporaryDirectory() as cache:
        command = [PYTHON, "-m", "rfa_lint", MODELS, "--res", "32", "--cache-dir", cache,
                   "--format", "json", "--exit-zero", "-q"]
        cold = seconds(command)
        warm = median_seconds(command, runs=5)
    ratio = cold / warm
    files = sum(name.endswith(".py") for _, _, names in os.walk(MODELS) for name in names)
    print(f"rfa-lint {MODELS} --res 32 ({files} files)")
    print(f"  cold (empty cache)   {cold:8.2f} s")
    print(f"  unchanged re-run     {warm:8.2f} s   (median of 5)")
    print(f"  ratio                {ratio:8.1f}x")
    ok = warm <= 0.5 and ratio >= 20
    print(f"  target: re-run <= 0.5 s and >= 20x faster: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
