"""explain's MACs and parameters: from each node's own inputs, attention counted, every parameter.

By hand: ``out_h * out_w * k_h * k_w * c_in * c_out / groups`` per conv, ``vectors * in * out``
per linear, ``L * S * E`` per attention product (queries by keys, weights by values).  Against
``torch.utils.flop_counter.FlopCounterMode`` (:mod:`tests.flops`): conv + matrix products + SDPA,
FLOPs / 2, on the meta device.
"""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from flops import reference_macs
from rfa_lint.explain import explain_plain
from rfa_lint.explain.cost import node_maps, remapped, total_macs
from rfa_lint.explain.edits import Edit, apply, editable
from rfa_lint.explain.facts import built
from rfa_lint.explain.suggest import suggestions
from rfa_lint.frontends.torch import building_context, to_plain
from rfa_lint.settings import Options

ROOT = Path(__file__).resolve().parents[1]


def traced(model: nn.Module, side: int) -> dict:
    return to_plain(model, resolution=(side,))


def traced_macs(plain: dict) -> int:
    return sum(spec.get("macs", 0) for spec in plain["nodes"])


# --- a squeeze-excitation gate -------------------------------------------------------------------

class Gated(nn.Module):
    """torchvision's squeeze-excitation: ``scale * input``, the 1x1 gate first."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.squeeze, self.excite = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.conv = nn.Conv2d(8, 16, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        scale = torch.sigmoid(self.excite(torch.relu(self.squeeze(F.adaptive_avg_pool2d(x, 1)))))
        return self.conv(scale * x)


def test_a_gate_does_not_set_the_map_of_what_it_scales():
    plain = traced(Gated(), 32)
    # stem 16x16: 16*16*3*3*3*8 = 55,296; squeeze 8*4 = 32, excite 4*8 = 32 on the 1x1 gate;
    # conv on the gated 16x16 map: 16*16*3*3*8*16 = 294,912
    assert traced_macs(plain) == 55_296 + 64 + 294_912
    assert node_maps(plain, (32,))[-1] == (16, 16)
    assert total_macs(plain, (32,)) == 350_272
    # walked to 64px: stem 32*32*216 = 221,184, conv 32*32*1,152 = 1,179,648, gate 64
    assert total_macs(plain, (64,)) == 1_400_896 == traced_macs(traced(Gated(), 64))
    # the stem's stride removed at 32px: the same maps as at 64px
    edited = apply(editable(plain), [Edit("stride", ("stem",))])
    assert total_macs(edited, (32,)) == 1_400_896


class Cropped(nn.Module):
    """A crop between two layers (a U-Net's skip): no node records it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.b(self.a(x)[..., 1:-1, 1:-1])


def test_a_crop_between_layers_keeps_its_amount_when_maps_change():
    plain = traced(Cropped(), 32)
    # a: 16x16 out, 16*16*9*3*4 = 27,648; b on the 14x14 crop: 14*14*9*4*4 = 28,224
    assert total_macs(plain, (32,)) == 27_648 + 28_224 == traced_macs(plain)
    # at 64px: a 32x32 (110,592), b on 30x30 (129,600)
    assert total_macs(plain, (64,)) == 110_592 + 129_600 == traced_macs(traced(Cropped(), 64))


# --- attention -----------------------------------------------------------------------------------

class Tokens(nn.Module):
    """A patch embedding (8x8 patches, 16 features) and one attention of 2 heads over the tokens."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.embed = nn.Conv2d(3, 16, 8, stride=8)
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True)
        self.qkv, self.proj = nn.Linear(16, 48), nn.Linear(16, 16)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)  # (1, tokens, 16)
        if self.form == "module":
            return self.mha(x, x, x, need_weights=False)[0]
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, 2, 8).permute(2, 0, 3, 1, 4)
        if self.form == "sdpa":
            x = F.scaled_dot_product_attention(q, k, v)
        elif self.form == "matmul":
            x = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        else:
            x = torch.einsum("bhqk,bhkd->bhqd", torch.einsum("bhqd,bhkd->bhqk", q, k).softmax(-1), v)
        return self.proj(x.transpose(1, 2).reshape(b, n, 16))


@pytest.mark.parametrize("form", ["module", "sdpa", "matmul", "einsum"])
def test_attention_counts_its_projections_and_both_products(form):
    plain = traced(Tokens(form), 32)
    # 16 tokens: the patch conv 4*4*8*8*3*16 = 49,152; projections in 16*16*48 = 12,288 and out
    # 16*16*16 = 4,096; queries by keys and weights by values 2 * 16*16*16 = 8,192 (2 heads of 8)
    assert traced_macs(plain) == 49_152 + 12_288 + 4_096 + 8_192
    # at 64px 64 tokens: 196,608 + 49,152 + 16,384 + 2 * 64*64*16 = 131,072: the products grow
    # with the square of the tokens
    assert total_macs(plain, (64,)) == 393_216 == traced_macs(traced(Tokens(form), 64))


def test_windowed_attention_products_grow_with_the_windows():
    """Swin's products run inside 7x7 windows: on a map twice as large, four times as many.  (At
    224px its last stage is one window, which the trace cannot tell from a global attention.)"""
    with building_context():
        model = torchvision.models.swin_t()
    small, large = traced(model, 448), traced(model, 896)
    assert total_macs(small, (896,)) == traced_macs(large)


# --- parameters ----------------------------------------------------------------------------------

class Embedded(nn.Module):
    """A class token and position embeddings: parameters of no layer."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.position = nn.Parameter(torch.zeros(1, 17, 8))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.position
        return self.head(x[:, 0])


def test_params_are_every_parameter_of_the_model():
    plain = traced(Embedded(), 16)
    # embed 4*4*3*8 + 8 = 392, cls 8, position 17*8 = 136, head 8*10 + 10 = 90
    assert plain["params"] == 392 + 8 + 136 + 90 == sum(p.numel() for p in Embedded().parameters())
    explained = explain_plain("m.py", "Embedded", plain, Options(resolution=(16,)))
    assert explained.params == 626 and explained.waste.params["unproductive"].total == 626


def keras_params(folder: Path, name: str, side: int) -> tuple[int, int]:
    """(the plain graph's params, ``count_params()``) of ``keras.applications.<name>`` built at
    ``side`` px, in a process of its own (TensorFlow stays out of the suite's processes)."""
    script = textwrap.dedent(f"""
        import keras
        from rfa_lint.frontends.keras import to_plain
        model = keras.applications.{name}(weights=None, input_shape=({side}, {side}, 3))
        print(to_plain(model)["params"], model.count_params())
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True, text=True,
                         timeout=1800, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 0, run.stderr[-2000:]
    params, count = run.stdout.split()
    return int(params), int(count)


def test_keras_params_are_count_params(tmp_path):
    # 28,589,128: the layers' own weights miss ConvNeXt's LayerScale gammas (6,624)
    assert keras_params(tmp_path, "ConvNeXtTiny", 64) == (28_589_128, 28_589_128)


# --- against FlopCounterMode ---------------------------------------------------------------------

def _build(factory, **kwargs) -> nn.Module:
    with warnings.catch_warnings(), building_context():
        warnings.simplefilter("ignore")
        return factory(**kwargs)


def assert_matches_the_counter(model: nn.Module, side: int, within: float = 0.0) -> None:
    plain = traced(model, side)
    ours = total_macs(plain, (side,))
    reference = reference_macs(model, (1, *plain["input_shape"][1:]))
    assert abs(ours - reference) <= within * reference, (ours, reference)
    assert plain["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, side", [("resnet18", 64), ("efficientnet_b0", 64), ("mobilenet_v3_small", 64),
                                        ("vit_b_16", 64)])
def test_macs_are_flop_counter_s(name, side):
    kwargs = {"image_size": side} if name.startswith("vit") else {}
    assert_matches_the_counter(_build(torchvision.models.get_model, name=name, **kwargs), side)


@pytest.mark.integration
@pytest.mark.parametrize("name", torchvision.models.list_models(module=torchvision.models))
def test_every_torchvision_classifier_within_one_percent(name):
    """swin_v2 alone differs (0.3-0.4 % fewer): its position-bias MLP runs on a table of
    coordinates, not on the image, so the trace does not see it."""
    assert_matches_the_counter(_build(torchvision.models.get_model, name=name), 224, within=0.01)


TIMM = ["resnet50", "efficientnet_b0", "convnext_tiny", "vit_small_patch16_224", "regnety_004",
        "resnet18d", "efficientnet_b3", "convnext_nano", "vit_base_patch16_224", "regnetx_002"]


@pytest.mark.integration
@pytest.mark.parametrize("name", TIMM)
def test_five_timm_families_within_one_percent(name):
    timm = pytest.importorskip("timm")
    assert_matches_the_counter(_build(timm.create_model, model_name=name), 224, within=0.01)


KERAS_APPLICATIONS = [
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge", "DenseNet121",
    "DenseNet169", "DenseNet201", "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
    "EfficientNetB4", "EfficientNetB5", "EfficientNetB6", "EfficientNetB7", "EfficientNetV2B0",
    "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2L", "EfficientNetV2M",
    "EfficientNetV2S", "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Large",
    "MobileNetV3Small", "NASNetLarge", "NASNetMobile", "ResNet101", "ResNet101V2", "ResNet152",
    "ResNet152V2", "ResNet50", "ResNet50V2", "VGG16", "VGG19", "Xception",
]


@pytest.mark.integration
@pytest.mark.parametrize("name", KERAS_APPLICATIONS)
def test_keras_applications_params_are_count_params(tmp_path, name):
    ours, count = keras_params(tmp_path, name, 96)
    assert ours == count


# --- a downsampling moved later ------------------------------------------------------------------

class Plain(nn.Module):
    """A stride-2 stem, three 3x3 convs, a stride-2 conv, a 3x3 conv and the head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.c1, self.c2, self.c3 = (nn.Conv2d(16, 16, 3, padding=1) for _ in range(3))
        self.c4, self.c5 = nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):
        for conv in (self.stem, self.c1, self.c2, self.c3, self.c4, self.c5):
            x = conv(x)
        return self.head(x)


def test_a_stem_stride_moved_later_is_measured_and_suggested():
    plain = traced(Plain(), 16)
    # at 16px: stem 8x8 27*16*64 = 27,648; c1-c3 8x8 144*16*64 = 147,456 each; c4, c5 4x4 36,864
    # each; fc 160: 543,904.  RF: stem 3 (j 2), c1 7, c2 11, c3 15, c4 19 (j 4), c5 27:
    # c4 critical, c5 unproductive (its input sees 19 >= 16)
    assert total_macs(plain, (16,)) == 543_904
    shown = [s for s in suggestions(plain, (16,)) if s.kind == "performance"]
    # the stem's stride moved to c2: stem 3 (j 1), c1 5, c2 7 (j 2), c3 11, c4 15 (j 4), c5 23:
    # c5 only critical (its input sees 15); MACs: stem 16x16 110,592, c1 16x16 589,824, c2 and c3
    # 8x8 147,456 each, c4 and c5 36,864 each, fc 160: 1,069,216 (x1.97).  Moved to c1 (c4 17,
    # c5 25) c5 stays unproductive; to c3 it costs more for the same.  Removing the stride instead
    # makes c5 productive too but costs x4.0 (c4 and c5 on 8x8)
    moved, removed = shown[:2]
    assert [(e.op, e.layers, e.into) for e in moved.edits] == [("move", ("stem",), ("c2",))]
    assert (moved.unproductive_after, moved.critical_after, moved.productive_after) == (0, 1, 5)
    assert moved.macs_factor == pytest.approx(1_069_216 / 543_904)
    assert [e.op for e in removed.edits] == ["stride"] and removed.productive_after == 6
    assert removed.macs_factor == pytest.approx(2_175_136 / 543_904)
    edited = built(remapped(apply(editable(plain), moved.edits), (16,)))
    assert [n.range_min_per_axis[0] for n in edited if n.name.startswith("c")] == [5, 7, 11, 15, 23]
