"""VGG nets as RF graphs, from Simonyan & Zisserman 2015, table 1 (configurations A, B, D, E).

Five stages of 3x3 convs (stride 1, 64 / 128 / 256 / 512 / 512 filters), each followed by a
2x2 max pool with stride 2, then three fully connected layers (4096, 4096, 1000); the first
reads the whole final map.  Node names follow the seed's.
"""

from __future__ import annotations

from rfa_lint.rf.graph import EnrichedNetworkNode, LayerDefinition

Node = EnrichedNetworkNode

_WIDTHS = (64, 128, 256, 512, 512)
_FC = (("Readout", 4096), ("Dense", 4096), ("Softmax", 1000))


def vgg(convs_per_stage: list[int]) -> Node:
    """The network of table 1 with ``convs_per_stage`` 3x3 convs in each of the five stages."""
    x = Node(name="input", layer_info=LayerDefinition("Input", kernel_size=1, kind="input"))
    conv_index = 0
    for stage, (count, width) in enumerate(zip(convs_per_stage, _WIDTHS)):
        for _ in range(count):
            layer = LayerDefinition("Conv3x3-ReLU", kernel_size=3, stride_size=1, filters=width, kind="conv")
            x = Node(name=f"{conv_index}-Conv3x3-ReLU", layer_info=layer, predecessors=[x])
            conv_index += 1
        pool = LayerDefinition("MaxPooling", kernel_size=2, stride_size=2, kind="pool")
        x = Node(name=f"{stage}-MaxPooling", layer_info=pool, predecessors=[x])
    for name, units in _FC:
        x = Node(name=name, layer_info=LayerDefinition("DenseLayer", kernel_size=None, units=units),
                 predecessors=[x])
    return x


def vgg11() -> Node:
    """Configuration A."""
    return vgg([1, 1, 2, 2, 2])


def vgg13() -> Node:
    """Configuration B."""
    return vgg([2, 2, 2, 2, 2])


def vgg16() -> Node:
    """Configuration D."""
    return vgg([2, 2, 3, 3, 3])


def vgg19() -> Node:
    """Configuration E."""
    return vgg([2, 2, 4, 4, 4])
