"""ResNets as RF graphs, from He et al. 2016 ("Deep Residual Learning"), table 1.

conv1 7x7/2, a 3x3/2 max pool, four stages of blocks (conv2_x .. conv5_x), the first block of
conv3_x .. conv5_x downsampling by 2, then global average pooling and a 1000-way fc.  A basic
block is two 3x3 convs; a bottleneck is 1x1, 3x3, 1x1 (4x the width out).  Shortcuts are
identities, or 1x1 projections where the shape changes (the paper's option B).  A bottleneck
downsamples in its first 1x1, as the paper's released models do (torchvision's "v1.5" moves the
stride to the 3x3, which gives larger receptive fields).  Node names follow the seed's.
"""

from __future__ import annotations

from typing import Callable

from rfa_lint.rf.graph import EnrichedNetworkNode, LayerDefinition

Node = EnrichedNetworkNode
Block = Callable[[Node, int, int, int, int], Node]

#: Output width of conv2_x .. conv5_x's 3x3 convs (a bottleneck's output is 4x).
_WIDTHS = (64, 128, 256, 512)
_EXPANSION = 4


def _conv(pred: Node, name: str, kernel: int, stride: int, filters: int) -> Node:
    """A conv with its batch norm and ReLU (one node: they act per position)."""
    layer = LayerDefinition(f"Conv{kernel}x{kernel}-BatchNorm-ReLU", kernel_size=kernel,
                            stride_size=stride, filters=filters, kind="conv")
    return Node(name=name, layer_info=layer, predecessors=[pred])


def _shortcut(pred: Node, name: str, stride: int, filters: int, projected: bool) -> Node:
    if not projected:
        return pred
    layer = LayerDefinition("1x1Conv-Projection", kernel_size=1, stride_size=stride, filters=filters,
                            kind="conv")
    return Node(name=f"{name}-Projection", layer_info=layer, predecessors=[pred])


def _add(preds: list[Node], name: str) -> Node:
    layer = LayerDefinition("Addition", kernel_size=1, kind="merge")
    return Node(name=f"{name}-Addition", layer_info=layer, predecessors=preds)


def residual_block(pred: Node, stage: int, index: int, stride: int, in_width: int) -> Node:
    """Two 3x3 convs and the shortcut."""
    name, width = f"Stage{stage}-Block{index}", _WIDTHS[stage]
    conv = _conv(pred, f"{name}-0-Conv3x3-BatchNorm-ReLU", 3, stride, width)
    conv = _conv(conv, f"{name}-1-Conv3x3-BatchNorm-ReLU", 3, 1, width)
    shortcut = _shortcut(pred, name, stride, width, stride != 1 or in_width != width)
    return _add([shortcut, conv], name)


def bottleneck(pred: Node, stage: int, index: int, stride: int, in_width: int) -> Node:
    """1x1 (downsampling), 3x3, 1x1 (to 4x the width) and the shortcut."""
    name, width = f"Stage{stage}-Block{index}", _WIDTHS[stage]
    conv = _conv(pred, f"{name}-0-Conv1x1-BatchNorm-ReLU", 1, stride, width)
    conv = _conv(conv, f"{name}-1-Conv3x3-BatchNorm-ReLU", 3, 1, width)
    conv = _conv(conv, f"{name}-2-Conv1x1-BatchNorm-ReLU", 1, 1, width * _EXPANSION)
    out = width * _EXPANSION
    shortcut = _shortcut(pred, name, stride, out, stride != 1 or in_width != out)
    return _add([shortcut, conv], name)


def resnet(blocks_per_stage: list[int], block: Block) -> Node:
    """The network of table 1 with ``blocks_per_stage`` blocks in conv2_x .. conv5_x."""
    conv1 = Node(name="StemConv", layer_info=LayerDefinition("Conv7x7", kernel_size=7, stride_size=2,
                                                             filters=64, kind="conv"))
    pool = LayerDefinition("MaxPool3x3", kernel_size=3, stride_size=2, kind="pool")
    x = Node(name="StemPool", layer_info=pool, predecessors=[conv1])
    width = 64
    for stage, count in enumerate(blocks_per_stage):
        for index in range(count):
            x = block(x, stage, index, 2 if stage > 0 and index == 0 else 1, width)
            width = _WIDTHS[stage] * (_EXPANSION if block is bottleneck else 1)
    pool = Node(name="GlobalAveragePooling",
                layer_info=LayerDefinition("Global Average Pooling", kernel_size=None, kind="global"),
                predecessors=[x])
    return Node(name="Softmax", layer_info=LayerDefinition("Fully Connected", kernel_size=1, units=1000),
                predecessors=[pool])


def resnet18() -> Node:
    return resnet([2, 2, 2, 2], residual_block)


def resnet36() -> Node:
    """The paper's 34-layer network (the seed's name for it)."""
    return resnet([3, 4, 6, 3], residual_block)


def resnet50() -> Node:
    return resnet([3, 4, 6, 3], bottleneck)


def resnet101() -> Node:
    return resnet([3, 4, 23, 3], bottleneck)


def resnet152() -> Node:
    return resnet([3, 8, 36, 3], bottleneck)
