"""The README's pictures are not stale: each is recorded in docs/images/SOURCES.json with the
hash of what it is drawn from, and that source, made again by ``docs/make_images.py``'s own
functions, hashes the same.  A changed picture (new colours, a new chart, new wording) fails
here until ``python docs/make_images.py`` draws it again."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "docs" / "images" / "SOURCES.json"
REMAKE = "stale: run python docs/make_images.py"


def _make_images():
    spec = importlib.util.spec_from_file_location("make_images", ROOT / "docs" / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_images = _make_images()
recorded = json.loads(MANIFEST.read_text())


def test_every_readme_image_is_recorded_with_its_own_hash():
    shown = set(re.findall(r"docs/images/([\w.-]+\.png)", (ROOT / "README.md").read_text()))
    assert shown and shown <= set(recorded)
    for name, entry in recorded.items():
        assert make_images.digest((ROOT / "docs" / "images" / name).read_bytes()) == entry["image"], \
            f"{name} is not the image docs/make_images.py drew"


def test_the_architecture_pictures_are_drawn_from_todays_dot_source():
    pytest.importorskip("torchvision")
    for name, source in make_images.graph_sources().items():
        assert make_images.digest(source) == recorded[f"{name}.png"]["source"], f"{name}.png {REMAKE}"


@pytest.mark.integration
def test_the_explain_screenshot_shows_todays_page():
    pytest.importorskip("torchvision")
    if shutil.which("dot") is None:
        pytest.skip("the page's picture needs GraphViz's dot")
    entry = recorded[f"{make_images.EXPLAIN_IMAGE}.png"]
    tools = make_images.page_tools()
    if tools != {k: entry[k] for k in tools}:
        pytest.skip(f"the page was drawn with {entry['dot']} and matplotlib {entry['matplotlib']}; "
                    f"here: {tools}")
    assert make_images.digest(make_images.explain_page()) == entry["source"], \
        f"{make_images.EXPLAIN_IMAGE}.png {REMAKE}"
