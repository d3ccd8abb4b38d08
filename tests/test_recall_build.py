"""Building and tracing the models of real code (issue 23): constructors that compute with
tensors, forwards with more than one input, images into a first Linear, builds that need values.

The fixtures are fixtures/recall/build_*.py, each with its findings derived by hand in the file;
they run through both front doors.  Each fails without its feature: a meta build cannot run
``.item()``, ``nonzero`` or a tensor condition; a forward with a timestep was RFA913; a
patch-Linear ViT was traced as a vector of 48 values; a model needing its weights' values was
RFA905 / RFA904.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from doors import DOORS, door_env, expected_in, rfa_lint, run_door
from expectations import FIXTURES
from oracle import analytic, disagreement, measure, node_of, positive_
from torch import nn

from rfa_lint.frontends import torch as torch_frontend
from rfa_lint.sandbox import child, inputs, offline

BUILD_FIXTURES = sorted((FIXTURES / "recall").glob("build_*.py"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The build fixtures alone, in a folder of their own."""
    root = tmp_path_factory.mktemp("recall") / "models"
    root.mkdir()
    for path in BUILD_FIXTURES:
        shutil.copy(path, root / path.name)
    return root


@pytest.mark.parametrize("door", DOORS)
def test_build_fixtures_give_their_findings_through_both_doors(folder, door):
    found, output = run_door(door, folder)
    assert found == expected_in(folder), output


def test_the_model_list_says_how_each_model_was_built(folder):
    proc = rfa_lint(".", "--res", "16", "--format", "json", "--select", "RFA", "--no-cache", cwd=folder,
                    env=door_env(folder, "built"))
    built = {(Path(f["path"]).name, m["name"]): m["built"] for f in json.loads(proc.stdout)["files"]
             for m in f["models"] if m["analysed"]}
    cpu = {key for key, how in built.items() if how == "cpu"}
    assert cpu == {("build_cpu_only.py", "NormScaled"), ("build_cpu_only.py", "Routed")}, built
    assert set(built.values()) == {"meta", "cpu"}
    assert ("build_stochastic_depth.py", "StochasticDepthNet") in built  # .item() on meta: built there


def _load(name: str):
    """A fixture's module, imported here (these tests check frontends, not the sandbox)."""
    spec = importlib.util.spec_from_file_location(name, FIXTURES / "recall" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_patch_linear_vit_traces_from_an_image_and_matches_the_oracle():
    vit = _load("build_patch_vit").PatchViT()
    plain, graph = analytic(vit, (1, 3, 64, 64))
    assert torch_frontend.to_plain(vit, resolution=(16, 16))["input_shape"] == [1, 3, 16, 16]  # not (1, 48)
    layers = {path: vit.get_submodule(path) for path in ("mix1", "mix2", "mix3")}
    measured = measure(positive_(vit), (1, 3, 64, 64), layers)
    expected = {"mix1": 12, "mix2": 20, "mix3": 28}  # patch 4 (jump 4), then +8 per 3x3 conv
    for path, rf in expected.items():
        node = node_of(graph, path)
        assert node.rf_max_per_axis[0] == rf and disagreement(node, measured[path]) is None, path


def test_a_timestep_is_one_number_per_sample_and_optional_inputs_are_none():
    unet = _load("build_sample_timestep").UNet2DModel()
    plan = inputs.plan(unet, None)
    assert (plan.image, plan.missing, plan.name) == (None, [], "sample")
    # class_labels keeps its default
    assert plan.extra == {"timestep": {"shape": [], "dtype": "int64", "batched": True}}
    block = _load("build_sample_timestep").CrossAttentionBlock()
    assert inputs.plan(block, None).extra == {"context": inputs.TOKENS}
    assert inputs.per_sample("sigma")["dtype"] == "float" and inputs.per_sample("context") is None


def _build(factory, **candidate) -> dict:
    """The child's build of one candidate, in this process."""
    request = {"build_args": [], "build_kwargs": {}, "kind": "class", "evidence": "", "input_shape": None,
               "resolution": [16, 16], **candidate}
    with offline.no_network() as network:
        context = child._Context(str(FIXTURES / "recall" / "build_sample_timestep.py"),
                                 {"torch": torch_frontend}, network)
        return child.build_and_trace(factory, request, context)


def test_named_input_shapes_feed_every_input():
    block = _load("build_sample_timestep").MaskedBlock
    unknown = _build(block)
    assert unknown == {"status": "needs-inputs",
                       "detail": "mask; give their shapes with '# rfa-lint: input(x=(...), mask=(...))'"}
    result = _build(block, input_shape={"x": [1, 3, 16, 16], "mask": [1, 1, 16, 16]})
    assert result["status"] == "ok", result
    assert result["graph"]["input_shape"] == [1, 3, 16, 16] and result["graph"]["built"] == "meta"
    wrong = _build(block, input_shape={"x": [1, 3, 16, 16], "mask": [1, 1, 16, 16], "msak": [1]})
    assert wrong["status"] == "needs-inputs" and "msak" in wrong["detail"]


def test_conditioning_is_as_wide_as_the_first_layer_that_reads_it():
    block = _load("build_sample_timestep").CrossAttentionBlock
    result = _build(block)
    assert result["status"] == "ok" and result["graph"]["input_shape"] == [1, 3, 16, 16], result

    class Normed(nn.Module):  # a LayerNorm reads it first, through a cast
        def __init__(self):
            super().__init__()
            self.conv, self.norm, self.proj = nn.Conv2d(3, 4, 3), nn.LayerNorm(12), nn.Linear(12, 4)

        def forward(self, x, encoder_hidden_states):
            context = self.proj(self.norm(encoder_hidden_states.float()))
            return self.conv(x) + context.mean(1)[:, :, None, None]

    assert _build(Normed)["status"] == "ok"

    class Registration(nn.Module):  # a check in Python reads the input first: no width to learn
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3)

        def forward(self, moving, fixed):
            if moving.shape[2:] != fixed.shape[2:]:
                raise ValueError("the fixed image must be as large as the moving one")
            return self.conv(torch.cat([moving, fixed], dim=1))

    directive = "'# rfa-lint: input(moving=(...), fixed=(...))'"
    assert _build(Registration) == {"status": "needs-inputs",
                                    "detail": f"fixed; give their shapes with {directive}"}


def test_parameters_go_to_meta_and_everything_else_stays_real():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rates = [x.item() for x in torch.linspace(0, 0.1, 3)]
            self.conv = nn.Conv2d(3, 8, 3)
            self.pos = nn.Parameter(torch.zeros(1, 8, 4, 4))
            self.register_buffer("index", torch.arange(16))
            self.register_buffer("table", torch.zeros(2048, 1024))  # weight-sized: never allocated

        def forward(self, x):
            return self.conv(x)

    with torch_frontend.building_context():
        net = Net()
    assert {p.device.type for p in net.parameters()} == {"meta"}
    assert isinstance(net.pos, nn.Parameter) and net.pos.requires_grad
    assert net.index.device.type == "cpu" and net.index.tolist() == list(range(16))
    assert net.table.is_meta
    assert net.rates[-1] == pytest.approx(0.1)


def test_trials_start_at_the_first_layers_rank_and_leave_no_state_behind():
    trials = _load("build_trials")
    video = _build(trials.CausalVideo, resolution=[16])  # after an image, the cache made it 224^3
    assert video["status"] == "ok" and video["graph"]["input_shape"] == [1, 3, 16, 16, 16], video

    class Streaming(nn.Module):
        """Keeps its last input, then refuses maps under 24px: the trial at 16px fails after
        setting the cache, which a later size must not see."""

        def __init__(self):
            super().__init__()
            self.conv, self.previous = nn.Conv2d(3, 4, 3), None

        def forward(self, x):
            if self.previous is not None:
                x = x + self.previous
            self.previous = x
            if x.shape[-1] < 24:
                raise ValueError("too small")
            return self.conv(x)

    model = Streaming()
    assert torch_frontend.to_plain(model, resolution=(16, 16))["input_shape"] == [1, 3, 224, 224]


def test_a_second_image_is_made_like_the_first():
    siamese = _load("build_trials").Siamese()
    assert inputs.plan(siamese, None).extra == {"x2": inputs.LIKE_IMAGE}
    result = _build(type(siamese))
    assert result["status"] == "ok" and result["graph"]["input_shape"] == [1, 3, 16, 16], result

    class Flow(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(6, 4, 3)

        def forward(self, image1, image2, num_flow_updates=12, context=None):
            return self.conv(torch.cat([image1, image2], dim=1))

    assert inputs.plan(Flow(), None).extra == {"image2": inputs.LIKE_IMAGE}


def test_required_arguments_behind_kwargs_need_arguments_and_a_bare_call_is_a_failure():
    models = _load("build_forwarded_arguments")
    assert _build(models.Deep) == {"status": "needs-arguments", "detail": "in_channels"}
    assert _build(models.deep_wide, kind="factory") == {"status": "needs-arguments", "detail": "in_channels"}
    assert _build(models.Broken)["status"] == "build-failed"


def test_one_axis_models_try_long_sequences_and_their_declared_length():
    class Wave(nn.Module):  # downsamples 1024x: no image size fits
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*[nn.Conv1d(2 if i == 0 else 4, 4, 4, stride=4) for i in range(5)])

        def forward(self, x):
            return self.body(x)

    assert torch_frontend.to_plain(Wave(), resolution=(16,))["input_shape"] == [1, 2, 1024]
    wave = Wave()
    wave.sample_size = 4096  # diffusers' UNets say their size so
    assert inputs.declared_size(wave) == (4096,)
    assert torch_frontend.to_plain(wave, resolution=(16,), declared=(4096,))["input_shape"] == [1, 2, 4096]


def test_an_op_of_no_layers_that_takes_no_image_is_no_model():
    class Attend(nn.Module):  # vit-pytorch's: attention of given queries, keys and values
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    class RearrangeImage(nn.Module):  # tokens back to a map: no image goes in
        def forward(self, x):
            batch, tokens, channels = x.shape
            side = int(tokens**0.5)
            return x.transpose(1, 2).reshape(batch, channels, side, side)

    assert _build(Attend)["status"] == "not-a-model"
    assert _build(RearrangeImage)["status"] == "not-a-model"
    assert _build(RearrangeImage, directed=True)["status"] == "trace-failed"  # named: told why


def test_a_video_model_whose_first_conv_reads_patches_takes_rgb_clips():
    class PatchedVideo(nn.Module):  # diffusers' LTX: 2x2x2 patches of RGB into a 24-channel conv
        def __init__(self):
            super().__init__()
            self.conv_in = nn.Conv3d(24, 8, 3, padding=1)

        def forward(self, x):
            b, c, t, h, w = x.shape
            patches = x.reshape(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 7, 2, 4, 6)
            return self.conv_in(patches.reshape(b, c * 8, t // 2, h // 2, w // 2))

    assert torch_frontend.to_plain(PatchedVideo(), resolution=(16,))["input_shape"] == [1, 3, 16, 16, 16]
