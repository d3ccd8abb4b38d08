"""RFA-Toolbox's ResNet18 @ 16px walkthrough, redrawn by rfa-lint, and the README's pictures.

Run from anywhere:  python examples/render_walkthrough.py
It needs torch and torchvision (``pip install -e ".[torch]"``) and GraphViz's ``dot``.  It writes
``docs/images/*.png`` and prints how many layers each picture colours red and orange.

The three 16px models are zero-argument factories, so the linter itself can check this file:
``rfa-lint examples/render_walkthrough.py --res 16``.
"""

from pathlib import Path

from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock, ResNet

from rfa_lint.frontends.torch import building_context, create_graph_from_pytorch_model
from rfa_lint.render import render_to_file
from rfa_lint.rf import Verdict, classify

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
WARNED_KINDS = ("conv", "pool")  # the layer kinds rfa-lint warns about (lint.FINDING_KINDS)


def resnet18_efficient() -> nn.Module:
    """Save compute: a 3x3 stem, the first three blocks kept, the rest replaced by the head."""
    model = resnet18()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
    model.layer2 = model.layer2[:1]
    model.layer3 = nn.Identity()
    model.layer4 = nn.Identity()
    model.fc = nn.Linear(128, 1000)
    return model


def resnet18_performance() -> nn.Module:
    """Use every layer: a stride-1 3x3 stem, no max-pool, 8 blocks over three stages (3, 3, 2)."""
    model = ResNet(BasicBlock, [3, 3, 2, 1])
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.layer4 = nn.Identity()
    model.fc = nn.Linear(256, 1000)
    return model


#: picture name -> (model factory, input resolution)
PICTURES = {
    "resnet18_32px": (resnet18, 32),
    "resnet50_32px": (resnet50, 32),
    "resnet18_16px": (resnet18, 16),
    "resnet18_efficient_16px": (resnet18_efficient, 16),
    "resnet18_performance_16px": (resnet18_performance, 16),
}


def main() -> None:
    for name, (factory, resolution) in PICTURES.items():
        with building_context():  # weights on the meta device; each layer remembers its line
            model = factory()
        graph = create_graph_from_pytorch_model(model)
        path = render_to_file(graph, IMAGES / name, "png", input_res=resolution)
        print(f"{path.relative_to(ROOT)}: {_counts(graph.all_layers, resolution)}")
        kernels = [node for node in graph.all_layers if node.layer_info.kind in WARNED_KINDS]
        print(f"    conv/pool layers only: {_counts(kernels, resolution)}")


def _counts(nodes: list, resolution: int) -> str:
    verdicts = [classify(node, resolution) for node in nodes]
    red, orange = verdicts.count(Verdict.UNPRODUCTIVE), verdicts.count(Verdict.CRITICAL)
    return f"{len(nodes)} layers, {red} red, {orange} orange"


if __name__ == "__main__":
    main()
