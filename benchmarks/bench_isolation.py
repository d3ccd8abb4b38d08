"""What the kernel's isolation costs per file: namespaces + Landlock vs processes only, same run.

Each side lints 1 file and then 20 small model files with an empty cache (``--no-cache``, one
file at a time, the run's own fork server: ``--no-worker``); (t20 - t1) / 19 is what each file
after the first costs.  "processes only" is the same code where the kernel refuses user
namespaces: the run starts inside a user namespace whose ``max_user_namespaces`` is 0 (the
fallback every run takes on such a kernel), so nothing is patched; the seccomp filter is on in
both.  The sides alternate, and each time is a median, so the machine's load falls on both
alike.  Every run must report each file's RFA101, or the benchmark stops: a run whose fork
server cannot start (an interpreter without rfa-lint installed) takes a quarter of a second and
measures nothing.  Target: the isolation adds at most 20 % per file.
    python benchmarks/bench_isolation.py   (with the interpreter rfa-lint is installed in)
"""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_lint_common import PYTHON, verdict

MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "chain.py"
FILES = 20
ROUNDS = 3
PROCESSES_ONLY = ["unshare", "--user", "--map-root-user", "sh", "-c",
                  'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh"]
SIDES = {"namespaces + landlock": [], "processes only": PROCESSES_ONLY}  # + seccomp, both


def lint(prefix: list[str], paths: list[str]) -> list[str]:
    return [*prefix, PYTHON, "-m", "rfa_lint", *paths, "--res", "16", "--no-cache", "--no-worker", "-j", "1",
            "--exit-zero", "-q"]


def seconds(command: list[str], files: int) -> float:
    """Wall-clock seconds of one lint of ``files`` files; SystemExit when it did not lint them."""
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    took = time.perf_counter() - start
    if run.stdout.count(" RFA101 ") != files:
        said = run.stdout[-1500:] + run.stderr[-1500:]
        raise SystemExit(f"not a lint of {files} files: {' '.join(command)}\n{said}")
    return took


def isolation_of(prefix: list[str], folder: str) -> str:
    shown = subprocess.run([*prefix, PYTHON, "-m", "rfa_lint", folder, "--show-settings"],
                           capture_output=True, text=True).stdout
    return next(line.split(":", 1)[1].strip() for line in shown.splitlines() if "# isolation:" in line)


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        paths = [str(shutil.copy(MODEL, Path(folder, f"model_{i:02}.py"))) for i in range(FILES)]
        for side, prefix in SIDES.items():
            print(f"{side:>22}: the run says 'isolation: {isolation_of(prefix, folder)}'")
        times: dict[str, dict[str, list[float]]] = {side: {"one": [], "many": []} for side in SIDES}
        for _ in range(ROUNDS):
            for side, prefix in SIDES.items():
                times[side]["one"].append(seconds(lint(prefix, paths[:1]), 1))
                times[side]["many"].append(seconds(lint(prefix, paths), FILES))
    per_file = {}
    for side, measured in times.items():
        one, many = statistics.median(measured["one"]), statistics.median(measured["many"])
        per_file[side] = (many - one) / (FILES - 1)
        print(f"{side:>22}: 1 file {one:6.2f} s, {FILES} files {many:6.2f} s -> "
              f"{per_file[side] * 1000:.0f} ms per file after the first (medians of {ROUNDS})")
    ratio = per_file["namespaces + landlock"] / per_file["processes only"]
    print(f"per file, isolated / processes only: {ratio:.2f}")
    ok = ratio <= 1.2
    print(f"target: the isolation adds at most 20 % per file: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
