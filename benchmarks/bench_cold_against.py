"""Cold lint of torchvision/models/ at 32px: this checkout against another one, in the same run.

    python benchmarks/bench_cold_against.py ../base            # a checkout of an earlier commit
    python benchmarks/bench_cold_against.py ../base --rounds 3 --target 1.10

Each round lints the folder once with each checkout, alternately (so load that comes and goes
hits both alike), each with an empty cache and a worker folder of its own (the run starts its
own worker, as a first run does).  The other checkout is put first on ``PYTHONPATH``, which the
sandbox's children keep.  Prints the median seconds of each and their ratio; the target (this
checkout at most ``--target`` times the other's) is issue 23's "the common path must not slow
down by more than 10 %".  Also prints each side's findings count: a change in them is a change
in what the linter says, to be explained.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torchvision
from bench_lint_common import PYTHON, verdict

MODELS = os.path.join(os.path.dirname(torchvision.__file__), "models")
HERE = Path(__file__).resolve().parents[1]


def cold_run(checkout: Path) -> tuple[float, int]:
    """Seconds of one cold lint with ``checkout``'s code, and how many findings it printed."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as workers:
        env = {**os.environ, "RFA_LINT_WORKER_DIR": workers, "PYTHONPATH": str(checkout)}
        command = [PYTHON, "-m", "rfa_lint", MODELS, "--res", "32", "--cache-dir", cache,
                   "--format", "json", "--exit-zero", "-q"]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=checkout)
        elapsed = time.perf_counter() - start
        subprocess.run([PYTHON, "-m", "rfa_lint.sandbox.worker", "stop"], capture_output=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: rfa-lint exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed, len(json.loads(proc.stdout)["findings"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="the other checkout (its folder holds rfa_lint/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=1.10, help="largest ratio this / baseline")
    args = parser.parse_args()
    sides = {"this": HERE, "baseline": args.baseline.resolve()}
    times: dict[str, list[float]] = {name: [] for name in sides}
    counts: dict[str, set[int]] = {name: set() for name in sides}
    for round_ in range(args.rounds):
        for name, checkout in sides.items():
            elapsed, found = cold_run(checkout)
            times[name].append(elapsed)
            counts[name].add(found)
            print(f"  round {round_ + 1}: {name:8} {elapsed:7.2f} s, {found} findings", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["this"] / medians["baseline"]
    print(f"rfa-lint {MODELS} --res 32, cold, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    for name, checkout in sides.items():
        print(f"  {name:8} {medians[name]:7.2f} s  findings {sorted(counts[name])}  ({checkout})")
    print(f"  ratio this / baseline {ratio:.3f}; target <= {args.target}: {verdict(ratio <= args.target)}")
    return 0 if ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
