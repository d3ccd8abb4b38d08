"""Receptive-field graphs built by hand, for the RF core's tests and its benchmark
(benchmarks/bench_core.py times the very graph tests/test_rf_core.py checks)."""

from rfa_lint.graphs import EnrichedNetworkNode, LayerDefinition


def conv(name, preds=(), k=3, s=1, d=1, **kw):
    return EnrichedNetworkNode(
        name=name,
        layer_info=LayerDefinition(name=f"Conv{k}x{k}", kernel_size=k, stride_size=s, dilation=d, **kw),
        predecessors=list(preds),
    )


def densenet_like(blocks=40, layers_per_block=50):
    """2,000 nodes: in each block every layer reads all earlier layers of the block (concat)."""
    prev = conv("stem", k=7, s=2)
    for b in range(blocks):
        members = [prev]
        for i in range(layers_per_block - 1):
            members.append(conv(f"b{b}l{i}", members, k=3))
        prev = conv(f"t{b}", members, k=2, s=2) if b < blocks - 1 else members[-1]
    return prev
