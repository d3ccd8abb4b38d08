"""flake8 with the rfa-lint plugin vs without it, over model-free code (flake8's and click's sources).

Both sides run the same wrapper around flake8's command line; "without" drops the RFA entry
point before flake8 loads its plugins, which is what uninstalling rfa-lint would do.  So the
difference is all the plugin costs on files without models: loading it and its text pre-check.
Target: <= 5 % slower.
    python benchmarks/bench_lint_flake8.py
"""

import os
import sys

import click
import flake8
from bench_lint_common import median_seconds, python, verdict

FLAKE8 = """
import sys
from flake8.main import cli
from flake8.plugins import finder

if sys.argv.pop(1) == "without":
    found = finder._find_importlib_plugins
    finder._find_importlib_plugins = lambda: (p for p in found() if p.entry_point.name != "RFA")
sys.exit(cli.main())
"""
TREES = [os.path.dirname(flake8.__file__), os.path.dirname(click.__file__)]
RUNS = 7


def main() -> int:
    files = sum(f.endswith(".py") for tree in TREES for _, _, fs in os.walk(tree) for f in fs)
    times = {}
    for _ in range(2):  # interleaved, so both sides see the same machine load
        for side in ("without", "with"):
            times.setdefault(side, []).append(median_seconds(python(FLAKE8, side, *TREES), RUNS))
    without, with_plugin = min(times["without"]), min(times["with"])
    overhead = with_plugin / without - 1
    print(f"flake8 over {files} model-free files ({', '.join(TREES)})")
    print(f"  without the plugin   {without:6.3f} s")
    print(f"  with the plugin      {with_plugin:6.3f} s")
    print(f"  overhead             {overhead:+6.1%}")
    print(f"  load average         {os.getloadavg()[0]:6.1f}")
    print(f"  target: <= 5 % slower: {verdict(overhead <= 0.05)}")
    return 0 if overhead <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
