"""Time the RF core on a 2,000-node DenseNet-like graph (build + classify + range).

Baseline in the same run: the same graph's nodes created without any predecessors, i.e. the
cost of object construction alone, so the ratio shows what RF propagation adds.
    python benchmarks/bench_core.py
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from synthetic_graphs import densenet_like  # noqa: E402  (the graph tests/test_rf_core.py checks)

from rfa_lint.graphs import EnrichedNetworkNode, LayerDefinition  # noqa: E402
from rfa_lint.rf import classify, input_resolution_range  # noqa: E402


def analyse():
    out = densenet_like()
    verdicts = [classify(n, 32) for n in out.all_layers]
    input_resolution_range(out, kernel_fit=True)
    return len(out.all_layers), verdicts


def baseline():
    layer = LayerDefinition("Conv3x3", kernel_size=3)
    return [EnrichedNetworkNode(f"n{i}", layer) for i in range(2000)]


def median_seconds(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    nodes, _ = analyse()
    full, base = median_seconds(analyse), median_seconds(baseline)
    print(f"{nodes}-node DenseNet-like graph: build+classify+range {full * 1000:.0f} ms (median of 5)")
    print(f"baseline, 2000 unconnected nodes: {base * 1000:.0f} ms; ratio {full / base:.1f}x")
