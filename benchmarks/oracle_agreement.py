"""Count the layers whose analytic maximum RF is the widest gradient support (tests/oracle.py).

Real models of issues 12 and 25 (torchvision, timm, smp, HRNet, deeplabv3 at 1024px), each
traced by rfa-lint and measured by the oracle (positive weights, identity activations, max
pools as averages, float64) at the output positions ``centre .. centre + phases - 1``; up to
``--layers`` conv / pool layers per model, evenly spaced from the first to the last.  Prints one
line per model and the totals: agree / disagree / refused (the probed window touches one border
of the image only, so its extent is not the RF).  The integration test
``tests/test_oracle.py::test_real_model_layer`` checks a few of these layers on every run.

    python benchmarks/oracle_agreement.py [--layers 12] [--only resnet18,hrnet]

To compare with another checkout: ``PYTHONPATH=/path/to/checkout python benchmarks/...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402
from oracle import analytic, disagreement, measure, positive_  # noqa: E402
from torch import nn  # noqa: E402


def _torchvision(name: str, **options):
    def build():
        import torchvision

        return torchvision.models.get_model(name, weights=None, **options)
    return build


def _timm(name: str):
    def build():
        import timm

        return timm.create_model(name, pretrained=False)
    return build


def _unet():
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet18", encoder_weights=None, classes=2)


def _deeplab_plus():
    import segmentation_models_pytorch as smp

    return smp.DeepLabV3Plus("resnet18", encoder_weights=None, classes=2)


#: name -> (build, image side, phases): phases for the models that upsample.
MODELS = {
    "resnet18": (_torchvision("resnet18"), 224, 1),
    "resnet50": (_torchvision("resnet50"), 224, 1),
    "vgg16": (_torchvision("vgg16"), 224, 1),
    "alexnet": (_torchvision("alexnet"), 320, 1),
    "mobilenet_v2": (_torchvision("mobilenet_v2"), 224, 1),
    "mobilenet_v3_large": (_torchvision("mobilenet_v3_large"), 224, 1),
    "efficientnet_b0": (_torchvision("efficientnet_b0"), 224, 1),
    "densenet121": (_torchvision("densenet121"), 224, 1),
    "inception_v3": (_torchvision("inception_v3", aux_logits=False, init_weights=False), 299, 1),
    "googlenet": (_torchvision("googlenet", aux_logits=False, init_weights=False), 224, 1),
    "squeezenet1_0": (_torchvision("squeezenet1_0"), 224, 1),
    "shufflenet_v2_x1_0": (_torchvision("shufflenet_v2_x1_0"), 224, 1),
    "regnet_y_400mf": (_torchvision("regnet_y_400mf"), 224, 1),
    "convnext_tiny": (_torchvision("convnext_tiny"), 224, 1),
    "timm/regnety_002": (_timm("regnety_002"), 224, 1),
    "timm/ghostnet_100": (_timm("ghostnet_100"), 224, 1),
    "timm/rexnet_100": (_timm("rexnet_100"), 224, 1),
    "timm/dla34": (_timm("dla34"), 224, 1),
    "timm/cspdarknet53": (_timm("cspdarknet53"), 256, 1),
    "timm/selecsls42b": (_timm("selecsls42b"), 224, 1),
    "timm/hrnet_w18_small": (_timm("hrnet_w18_small"), 224, 4),
    "smp/Unet(resnet18)": (_unet, 256, 4),
    "smp/DeepLabV3Plus(resnet18)": (_deeplab_plus, 1024, 4),
    "deeplabv3_mobilenet_v3_large@1024": (
        _torchvision("deeplabv3_mobilenet_v3_large", weights_backbone=None, num_classes=3), 1024, 1),
}

_WINDOWS = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
            nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)


def _layers(model: nn.Module, graph, count: int, phases: int) -> dict:
    """Up to ``count`` conv / pool modules, evenly spaced, each with its one graph node and an
    output map with room for ``phases`` positions from its centre."""
    nodes = {}
    for n in graph.all_layers:
        for path in n.module_paths:
            nodes.setdefault(path, []).append(n)
    paths = [p for p, m in model.named_modules() if isinstance(m, _WINDOWS) and len(nodes.get(p, ())) == 1
             and all(n // 2 + phases <= n for n in nodes[p][0].map_out or (0,))]
    if len(paths) > count:
        paths = [paths[round(i * (len(paths) - 1) / (count - 1))] for i in range(count)]
    return {p: nodes[p][0] for p in paths}


def compare(name: str, count: int) -> tuple[int, int, int, list[str]]:
    build, side, phases = MODELS[name]
    model = build().eval()
    shape = (1, 3, side, side)
    _, graph = analytic(model, shape)
    chosen = _layers(model, graph, count, phases)
    measured = measure(positive_(model), shape, {p: model.get_submodule(p) for p in chosen}, phases)
    agree, wrong, refused = 0, [], 0
    for path, node in chosen.items():
        try:
            found = disagreement(node, measured[path])
        except ValueError:
            refused += 1
            continue
        if found is None:
            agree += 1
        else:
            wrong.append(f"{path}: {found}")
    return agree, len(wrong), refused, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--only", default="", help="comma-separated model names (substrings)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = [n for n in MODELS if not args.only or any(s in n for s in args.only.split(","))]
    totals = [0, 0, 0]
    for name in names:
        start = time.perf_counter()
        try:
            agree, wrong, refused, details = compare(name, args.layers)
        except Exception as error:  # a model this environment cannot build: say so, go on
            print(f"{name}: not measured ({type(error).__name__}: {error})", flush=True)
            continue
        totals = [t + v for t, v in zip(totals, (agree, wrong, refused))]
        print(f"{name}: {agree} agree, {wrong} disagree, {refused} refused "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        for line in details:
            print(f"    {line}", flush=True)
    print(f"total: {totals[0]} agree, {totals[1]} disagree, {totals[2]} refused")


if __name__ == "__main__":
    main()
