"""The seed library's hand-built "Custom" graph, analysed with rfa-lint's API at 32px."""

from rfa_lint import input_resolution_range
from rfa_lint.graphs import EnrichedNetworkNode, LayerDefinition
from rfa_lint.rf import classify

conv1 = EnrichedNetworkNode(
    name="Conv1",
    layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=64),
    predecessors=[],
)
conv2 = EnrichedNetworkNode(
    name="Conv2",
    layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=128),
    predecessors=[conv1],
)
conv3 = EnrichedNetworkNode(
    name="Conv3",
    layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=256),
    predecessors=[conv1],
)
conv4 = EnrichedNetworkNode(
    name="Conv4",
    layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=256),
    predecessors=[conv2, conv3],
)
out = EnrichedNetworkNode(
    name="Softmax",
    layer_info=LayerDefinition(name="Fully Connected", units=1000),
    predecessors=[conv4],
)

if __name__ == "__main__":
    for resolution in (32, 5):
        for node in out.all_layers:
            verdict = classify(node, resolution).name.lower()
            print(f"{resolution:>3}px  {node.name:<8} rf min {node.receptive_field_min!s:>4}  {verdict}")
    print("productive input range (min, max):", input_resolution_range(out, cardinality=2))
