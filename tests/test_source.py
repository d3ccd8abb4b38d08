"""source.py on real snippets, the fixtures in fixtures/source/ and torchvision's own model files.

Fixture files mark each line that must yield a candidate with ``# candidate: <kind> [<framework>]``
(the framework when the text alone shows it); every other line must yield none.  The sandbox
child decides on the real objects which candidates are models (tests/test_discovery.py).
"""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfa_lint import source as source_module
from rfa_lint.source import SourceInfo, invalidate_caches, may_define_model, might_define_model, read_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SOURCE_FIXTURES = sorted((FIXTURES / "source").glob("*.py"))
MARKER = re.compile(r"#\s*candidate:\s*(class|factory)(?:\s+(torch|keras))?")


def _torchvision_models() -> Path | None:
    spec = importlib.util.find_spec("torchvision")
    return Path(spec.submodule_search_locations[0], "models") if spec else None


TORCHVISION_MODELS = _torchvision_models()
TORCHVISION_FILES = sorted(TORCHVISION_MODELS.rglob("*.py")) if TORCHVISION_MODELS else []
needs_torchvision = pytest.mark.skipif(TORCHVISION_MODELS is None, reason="torchvision not installed")


def read(snippet: str):
    return read_source(textwrap.dedent(snippet))


def candidates(snippet: str) -> dict:
    return {c.name: c for c in read(snippet).candidates}


# --- which definitions are candidates ------------------------------------------------------


@pytest.mark.parametrize("path", SOURCE_FIXTURES, ids=lambda p: p.name)
def test_fixture_yields_exactly_the_marked_candidates(path):
    text = path.read_text()
    lines = text.splitlines()
    expected = {
        (number, *match.groups()) for number, line in enumerate(lines, 1) if (match := MARKER.search(line))
    }
    info = read_source(text)
    assert info.syntax_error is None
    assert {(c.line, c.kind, c.framework) for c in info.candidates} == expected
    for c in info.candidates:
        assert re.search(rf"\b(class|def) {c.name}\b", lines[c.line - 1])


def test_positions_are_the_keyword_line_and_column_not_the_decorators():
    found = candidates(
        """
        import torch.nn as nn

        @decorator
        @another(
            1,
        )
        class Net(
            nn.Module,
        ):
            pass
        if True:
            class Late(nn.Module):
                x = 1
        """
    )
    assert (found["Net"].line, found["Net"].column, found["Net"].end_line) == (8, 0, 11)
    assert (found["Late"].line, found["Late"].column, found["Late"].end_line) == (13, 4, 14)


@pytest.mark.parametrize(
    "imports, expected",
    [
        ("import torch", {"torch"}),
        ("import torch.nn as nn", {"torch"}),
        ("from torchvision.models import resnet18", {"torch"}),
        ("import keras", {"keras"}),
        ("from tensorflow import keras", {"keras"}),
        ("import tensorflow as tf", {"keras"}),
        ("import tf_keras", {"keras"}),
        ("import torch, keras", {"torch", "keras"}),
        ("def build():\n    import torch", {"torch"}),  # a lazy import still runs when building
        ("from .torch import Net", set()),  # a sibling module, not the framework
        ("import numpy as np", set()),
        ("import torchaudio_like_name", set()),
    ],
)
def test_frameworks_are_the_imported_ones(imports, expected):
    assert read(imports).frameworks == expected


# --- directives --------------------------------------------------------------------------------

NO_DIRECTIVES = {
    "build_args": (), "build_kwargs": (), "input_shape": None, "skip": False, "directive_error": None,
}


def directive_fields(source: str) -> dict:
    (candidate,) = read("import torch.nn as nn\n" + textwrap.dedent(source)).candidates
    return {field: getattr(candidate, field) for field in NO_DIRECTIVES}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("class Net(nn.Module):  # rfa-lint: skip\n    pass", {"skip": True}),
        (
            "# rfa-lint: build(18, channels=(3, 64))\nclass Net(nn.Module): pass",
            {"build_args": (18,), "build_kwargs": (("channels", (3, 64)),)},
        ),
        (
            "# rfa-lint: build(depth=50); input(2, 3, 128, 128)\nclass Net(nn.Module): pass",
            {"build_kwargs": (("depth", 50),), "input_shape": (2, 3, 128, 128)},
        ),
        (
            """
            # The network of the paper.
            # rfa-lint: input(1, 1, 28, 28)
            @register
            @another
            class Net(nn.Module): pass
            """,
            {"input_shape": (1, 1, 28, 28)},
        ),
        ("@register\n# rfa-lint: skip\nclass Net(nn.Module): pass", {"skip": True}),
        ("class Net(\n    nn.Module,\n):  # rfa-lint: skip\n    pass", {"skip": True}),
        ("class Net(  # rfa-lint: skip\n    nn.Module,\n):\n    pass", {"skip": True}),
        (
            "# rfa-lint: input(1, 3, 8, 8)\nclass Net(nn.Module):  # rfa-lint: build(1)\n    pass",
            {"input_shape": (1, 3, 8, 8), "build_args": (1,)},
        ),
        (
            "class Net(nn.Module):  # rfa-lint: build(sep='#;')  # noqa: RFA902\n    pass",
            {"build_kwargs": (("sep", "#;"),)},
        ),
        (
            "# rfa-lint: build(None, True, -1.5, 'x', [1, 2], {'a': (1,)}, {3})\nclass Net(nn.Module): pass",
            {"build_args": (None, True, -1.5, "x", [1, 2], {"a": (1,)}, {3})},
        ),
        ("#rfa-lint:skip\nclass Net(nn.Module): pass", {"skip": True}),
        ("# rfa-lint: skip\ndef make() -> nn.Module:\n    pass", {"skip": True}),
    ],
)
def test_directives_configure_the_candidate(source, expected):
    assert directive_fields(source) == {**NO_DIRECTIVES, **expected}


@pytest.mark.parametrize(
    "source",
    [
        "# rfa-lint: skip\n\nclass Net(nn.Module): pass",  # a blank line separates it
        "class Net(nn.Module):\n    # rfa-lint: skip\n    x = 1",  # inside the body
        'class Net(nn.Module):\n    """# rfa-lint: skip"""',  # a docstring
        'x = """\n# rfa-lint: skip"""\nclass Net(nn.Module): pass',  # a string above
        "class Net(nn.Module):  # rfa-lint skip\n    pass",  # no colon: an ordinary comment
    ],
)
def test_text_that_is_not_a_directive_of_the_candidate_is_ignored(source):
    assert directive_fields(source) == NO_DIRECTIVES


def test_a_directive_belongs_to_one_definition_only():
    found = candidates(
        """
        import torch.nn as nn
        class A(nn.Module):
            x = 1  # rfa-lint: skip
        class B(nn.Module):  # rfa-lint: skip
            pass
        """
    )
    assert (found["A"].skip, found["B"].skip) == (False, True)


@pytest.mark.parametrize(
    "directive, message",
    [
        ("build(depth=DEPTH)", "DEPTH is not a literal"),
        ("build(*sizes)", "*sizes is not a literal"),
        ("build(**config)", "not **mapping"),
        ("build(x=__import__('os').system('exit 1'))", "is not a literal"),
        ("build(1); build(2)", "build given more than once"),
        ("input(1, 3, 64)x", "cannot parse"),
        ("input(1, 3, 0, 64)", "positive integers"),
        ("input(1, 3, 6.4)", "positive integers"),
        ("input(True)", "positive integers"),
        ("input()", "positive integers"),
        ("input(x=(1, 0))", "positive integers"),
        ("input(1, 3, x=(1, 3))", "one per forward parameter"),
        ("skp", "unknown directive 'skp'"),
        ("skip()", "unknown directive 'skip()'"),
        ("os.system('exit 1')", "unknown directive"),
        ("x = 1", "unknown directive"),
        ("", "empty directive"),
        ("build(" + "(" * 300 + ")" * 300 + ")", "cannot parse"),
    ],
)
def test_malformed_directives_are_reported_never_raised(directive, message):
    fields = directive_fields(
        f"# rfa-lint: input(1, 3, 8, 8)\nclass Net(nn.Module):  # rfa-lint: {directive}\n    pass"
    )
    assert fields["directive_error"].startswith("line 3: ")
    assert message in fields["directive_error"]
    assert fields["input_shape"] == (1, 3, 8, 8)  # the well-formed directive still applies


def test_every_malformed_directive_of_a_candidate_is_reported():
    fields = directive_fields("# rfa-lint: skp\n# rfa-lint: input(0)\nclass Net(nn.Module): pass")
    assert fields["directive_error"] == (
        "line 2: unknown directive 'skp' (expected build(...), input(...) or skip); "
        "line 3: input(...) takes the shape as positive integers, e.g. input(1, 3, 64, 64), "
        "or one per forward parameter, e.g. input(x=(1, 3, 64, 64), t=(1,))"
    )


# --- files that do not parse or define no model -----------------------------------------------


@pytest.mark.parametrize(
    "source, line, message",
    [
        ("import torch\nclass Net(torch.nn.Module)\n    pass\n", 2, "expected ':'"),
        ("def f(:\n", 1, "invalid syntax"),
        ("import torch\nx = (\n", 2, "'(' was never closed"),
        ("  import torch\n", 1, "unexpected indent"),
        ("(" * 300, 1, "too many nested parentheses"),
        ("x = " + "+".join(["1"] * 100_000), 1, "recursion"),  # crashes libcst's parser
        ("import torch\n\x00", 1, "null bytes"),
    ],
)
def test_syntax_errors_are_reported_with_their_position(source, line, message):
    info = read_source(source)
    assert info.candidates == ()
    error_line, column, text = info.syntax_error
    assert error_line == line and column >= 0 and message in text


def test_a_byte_order_mark_is_not_an_error():
    info = read_source("\ufeffimport torch.nn as nn\nclass Net(nn.Module): pass\n")
    assert info.syntax_error is None
    assert [(c.name, c.line) for c in info.candidates] == [("Net", 2)]


@pytest.mark.parametrize(
    "source",
    [
        "",
        "import numpy as np\n\nclass Model:\n    pass\n",
        (FIXTURES / "source" / "no_model.py").read_text(),
    ],
)
def test_files_without_a_framework_are_rejected_before_parsing(source):
    assert not might_define_model(source)


def test_a_framework_file_without_models_passes_the_pre_check_but_has_no_candidates():
    info = read("import torch\n\ndef add(a, b) -> torch.Tensor:\n    return a + b\n")
    assert might_define_model("import torch\n")
    assert info == SourceInfo(frameworks=frozenset({"torch"}))


def _package(root: Path, **modules: str) -> Path:
    (root / "pkg").mkdir()
    for name, text in {"__init__": "", **modules}.items():
        (root / "pkg" / f"{name}.py").write_text(text)
    return root / "pkg"


def test_a_package_that_names_no_framework_defines_no_model_whatever_it_imports(tmp_path):
    """click's modules: relative imports and classes, but no file of the package can reach a
    framework through its own imports, so the file is answered without parsing anything."""
    package = _package(tmp_path, core="from .base import Base\n\nclass Net(Base):\n    pass\n",
                       base="class Base:\n    pass\n")
    text = (package / "core.py").read_text()
    assert might_define_model(text)  # the relative import alone passes the text's pre-check
    assert not may_define_model(package / "core.py", text)


def test_a_sibling_that_names_a_framework_makes_the_package_s_files_candidates(tmp_path):
    """The package's texts are read once per process; a long-lived one (the language server)
    invalidates them before it looks again."""
    package = _package(tmp_path, core="from .base import Base\n\nclass Net(Base):\n    pass\n",
                       base="class Base:\n    pass\n")
    text = (package / "core.py").read_text()
    assert not may_define_model(package / "core.py", text)
    (package / "base.py").write_text("import torch.nn as nn\n\nclass Base(nn.Module):\n    pass\n")
    invalidate_caches()
    assert may_define_model(package / "core.py", text)


def test_a_subpackage_behind_a_symbolic_link_is_read_as_imports_reach_it(tmp_path):
    """``pkg/backbones -> elsewhere``: ``from .backbones.blocks import *`` follows the link, so
    the framework its modules import counts; a link back up the tree is read once."""
    elsewhere = tmp_path / "elsewhere" / "backbones"
    elsewhere.mkdir(parents=True)
    (elsewhere / "__init__.py").write_text("")
    (elsewhere / "blocks.py").write_text("import torch.nn as nn\n")
    (tmp_path / "project").mkdir()
    net = "from .backbones.blocks import *\n\nclass Net(Module):\n    pass\n"
    package = _package(tmp_path / "project", net=net)
    (package / "backbones").symlink_to(elsewhere)
    assert may_define_model(package / "net.py", net)
    (elsewhere / "blocks.py").write_text("X = 1\n")
    (elsewhere / "loop").symlink_to(elsewhere)
    invalidate_caches()
    assert not may_define_model(package / "net.py", net)  # and the loop ends


def test_a_module_that_is_no_regular_file_is_never_opened_and_may_hold_a_framework(tmp_path):
    """Opening a FIFO named ``pipe.py`` would wait for a writer for ever (flake8 hung)."""
    package = _package(tmp_path, core="from .base import Base\n\nclass Net(Base):\n    pass\n",
                       base="class Base:\n    pass\n")
    os.mkfifo(package / "pipe.py")
    assert may_define_model(package / "core.py", (package / "core.py").read_text())


def test_a_package_s_modules_are_read_once_however_many_of_its_files_are_checked(tmp_path, monkeypatch):
    """The check costs one read of each module per process, not per file checked (that was a
    walk and a stat of the whole package per file: quadratic in a package of thousands)."""
    modules = {f"m{i}": "from . import m0\n\nclass C(Base):\n    pass\n" for i in range(30)}
    package = _package(tmp_path, **modules)
    reads = []
    monkeypatch.setattr(source_module, "read_regular", lambda path, limit: reads.append(path) or b"")
    for name in modules:
        assert not may_define_model(package / f"{name}.py", modules[name])
    assert sorted(reads) == sorted(package.glob("*.py"))


def test_a_loose_file_with_a_star_import_stays_a_candidate(tmp_path):
    """Outside a package an import may reach any module below the folder: not narrowed."""
    (tmp_path / "net.py").write_text("from layers import *\n\nclass Net(Block):\n    pass\n")
    assert may_define_model(tmp_path / "net.py", (tmp_path / "net.py").read_text())


@pytest.mark.parametrize(
    "body, handoff",
    [
        ("return nn.Conv2d(8, 8, 3)", {3}),  # the returned object is the layer built on line 3
        ("return nn.Conv2d(\n        8, 8, 3,\n    )", {3}),
        ("return nn.Sequential(nn.Conv2d(8, 8, 3))", set()),  # which of two objects? keep the line
        ("return nn.Sequential(\n        nn.Conv2d(8, 8, 3),\n    )", {3}),  # the conv is on line 4
        ("conv = nn.Conv2d(8, 8, 3)\n    return conv", set()),
        ("return x + 1", set()),
    ],
)
def test_handoff_lines_are_returns_of_the_object_built_there(body, handoff):
    info = read(f"import torch.nn as nn\ndef helper(x=1):\n    {body}\n")
    assert info.handoff_lines == handoff


@pytest.mark.parametrize(
    "source, candidate",
    [
        ("from .parts import *\n\nclass UNet(nn.Module):\n    pass\n", ("UNet", "class", None)),
        ("from ..base import Base\n\nclass Unet(Base):\n    pass\n", ("Unet", "class", None)),
        ("import torch\ndef ResNet18():\n    return ResNet(BasicBlock, [2, 2, 2, 2])\n",
         ("ResNet18", "returns", None)),
        ("import timm\n@register_model\ndef vit(pretrained=False, **kwargs):\n    return _create(**kwargs)\n",
         ("vit", "registry", None)),
        ("import timm\n@MODELS.register_module()\ndef vit(**kwargs):\n    return build(**kwargs)\n",
         ("vit", "registry", None)),
        ("import torch\ndef make():\n    model = Net()\n    for m in model.modules():\n        init(m)\n"
         "    return model\n", ("make", "returns", None)),  # a loop over its own parts builds it
        ("import torch.nn as nn\ndef net() -> nn.Module:\n    pass\n", ("net", "annotation", "torch")),
    ],
)
def test_candidates_that_only_the_child_can_confirm(source, candidate):
    (found,) = read(source).candidates
    assert might_define_model(source)
    evidence = found.evidence if found.kind == "factory" else found.kind
    assert (found.name, evidence, found.framework) == candidate


@pytest.mark.parametrize(
    "body",
    [
        "model = Net()\n    for epoch in range(3):\n        train(model)\n    return model",  # a script
        "model = Net()\n    while True:\n        step(model)\n    return model",
        "for epoch in range(3):\n        train(model)\n    return Net()",  # named like a script
        "print('hello')",  # returns nothing
        "return 1 + 2",  # returns no call
    ],
)
def test_functions_that_merely_take_no_arguments_are_not_candidates(body):
    assert read(f"import torch\ndef main():\n    {body}\n").candidates == ()


@pytest.mark.parametrize(
    "source",
    [
        "import atexit, torch\n@atexit.register\ndef cleanup():\n    shutil.rmtree('out')\n",
        "import torch.nn as nn\ndef train(epochs=2) -> nn.Module:\n    return fit(Net(), epochs)\n",
        "import torch.nn as nn\ndef make() -> nn.Module:\n    model = Net()\n    while True:\n"
        "        step(model)\n    return model\n",
        "import timm\n@register_model\ndef vit():\n    print('side effect')\n",  # returns nothing
    ],
)
def test_scripts_and_other_registries_are_never_candidates(source):
    assert read(source).candidates == ()


def test_a_factory_may_loop_before_it_builds_what_it_returns():
    (found,) = read(
        "import keras\n"
        "def Xception(weights='imagenet'):\n    x = inputs = Input((299, 299, 3))\n"
        "    for i in range(8):\n        x = block(x)\n    model = Functional(inputs, x)\n    return model\n"
    ).candidates
    assert (found.name, found.evidence, found.returns) == ("Xception", "returns", ("Functional",))


def test_returned_calls_are_followed_through_the_files_functions():
    (found,) = read(
        "import keras\n"
        "def ResNet50(weights='imagenet'):\n    return ResNet(stack, weights)\n"
        "def ResNet(stack_fn, weights):\n"
        "    model = Functional(stack_fn(), name='resnet')\n    return model\n"
    ).candidates
    assert found.returns == ("ResNet", "Functional")


# --- the pre-check never hides a candidate ---------------------------------------------------

IMPORTS = [
    "import torch",
    "import torch.nn as nn",
    "import torch.nn as tnn",
    "from torch import nn",
    "from torch.nn import Module",
    "import tensorflow as tf",
    "from keras import Model",
    "from keras.models import Sequential",
    "import numpy as np",
    "from mylib import Model, Module",
    "from .blocks import Block",
]
NAMES = [
    "nn.Module", "tnn.Module", "torch.nn.Module", "Module", "Model", "Sequential", "tf.keras.Model",
    "keras.Model", "object", "np.ndarray", "Block", "Local0", "Local1", "Local2",
]
definitions = st.one_of(
    st.builds("class Local{}({}):\n    pass\n".format, st.integers(0, 2), st.sampled_from(NAMES)),
    st.builds("def make{}() -> {!r}:\n    pass\n".format, st.integers(0, 2), st.sampled_from(NAMES)),
    st.builds("def make{}(*, w=None) -> {}:\n    pass\n".format, st.integers(0, 2), st.sampled_from(NAMES)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(IMPORTS), max_size=3), st.lists(definitions, min_size=1, max_size=4))
def test_pre_check_is_true_for_every_generated_file_with_candidates(imports, defs):
    text = "\n".join(imports) + "\n\n" + "\n".join(defs)
    assert might_define_model(text) or not any(c.framework for c in read_source(text).candidates)


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.rglob("*.py")) + TORCHVISION_FILES, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_pre_check_is_true_for_every_real_file_with_candidates(path):
    text = path.read_bytes().decode("utf-8", "replace")
    assert might_define_model(text) or not any(c.framework for c in read_source(text).candidates)


# --- torchvision's own model files ------------------------------------------------------------


@needs_torchvision
def test_torchvision_resnet_yields_its_blocks_network_and_public_factories():
    info = read_source((TORCHVISION_MODELS / "resnet.py").read_text())
    classes = {c.name for c in info.candidates if c.kind == "class" and c.framework}
    factories = [c.name for c in info.candidates if c.kind == "factory"]
    assert classes == {"BasicBlock", "Bottleneck", "ResNet"}  # the Weights enums: the child says no
    assert factories == [
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
        "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    ]
    assert {c.framework for c in info.candidates if c.kind == "factory"} == {"torch"}
    assert info.frameworks == {"torch"}


@needs_torchvision
@pytest.mark.parametrize(
    "path", TORCHVISION_FILES, ids=lambda p: str(p.relative_to(TORCHVISION_MODELS or p.parent))
)
def test_every_torchvision_model_file_reads_cleanly(path):
    # speed is the benchmarks' business (no timed assertions in tests): ~6 ms for resnet.py
    info = read_source(path.read_text())
    assert info.syntax_error is None
    assert all(c.directive_error is None for c in info.candidates)


def test_the_linters_own_modules_import_no_framework():
    # In a fresh interpreter: this test process has torchvision loaded by conftest.
    code = (
        "import sys, rfa_lint.source, rfa_lint.rules; "
        "print(sorted({'torch', 'tensorflow', 'keras', 'libcst'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
