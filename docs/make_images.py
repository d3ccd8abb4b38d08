"""Every picture the README shows, made again from the code that draws it.

    python docs/make_images.py

- the architecture pictures (``examples/render_walkthrough.py``'s ``PICTURES``): their DOT source,
  drawn by GraphViz's ``dot``;
- the ``rfa-lint explain --format html`` page of ResNet18 at 16px, as headless Chromium shows it
  (``apt-get install chromium``; without it the screenshot is left as it is, and said so).

``docs/images/SOURCES.json`` records, for each image, the sha256 of what it is drawn from (the
DOT source; the HTML page) and of the image itself, with the versions of the drawing programs a
page depends on.  ``tests/test_readme_images.py`` makes the sources again and compares: an image
whose source changed (a new chart, a new colour) is stale until this script runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
MANIFEST = IMAGES / "SOURCES.json"
EXPLAIN_IMAGE = "explain_resnet18_16px"
EXPLAIN_COMMAND = ["explain", "examples/cifar_models.py", "--model", "imagenet_resnet18", "--res", "16",
                   "--format", "html", "--no-cache"]
WINDOW = (1200, 1500)  # the screenshot's size: the page's head, suggestions, picture and chart


def graph_sources() -> dict[str, str]:
    """Picture name -> its DOT source, as ``examples/render_walkthrough.py`` draws it."""
    sys.path.insert(0, str(ROOT / "examples"))
    from render_walkthrough import PICTURES

    from rfa_lint.frontends.torch import building_context, create_graph_from_pytorch_model
    from rfa_lint.render import DEFAULT_MAX_NODES, visualize_architecture

    sources = {}
    for name, (factory, resolution) in PICTURES.items():
        with building_context():  # weights on the meta device; each layer remembers its line
            model = factory()
        graph = create_graph_from_pytorch_model(model)
        sources[name] = visualize_architecture(graph, name, resolution, max_nodes=DEFAULT_MAX_NODES).source
    return sources


def explain_page() -> str:
    """The HTML page of the README's explain example, as ``rfa-lint explain`` writes it."""
    proc = subprocess.run([sys.executable, "-m", "rfa_lint", *EXPLAIN_COMMAND], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=True)
    return proc.stdout


def page_tools() -> dict[str, str]:
    """The versions of what draws inside the page: ``dot`` (the picture) and matplotlib (the chart)."""
    import matplotlib

    dot = subprocess.run(["dot", "-V"], capture_output=True, text=True, timeout=60).stderr.strip()
    return {"dot": dot, "matplotlib": matplotlib.__version__}


def digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-headless-shell")


def screenshot(page: str, target: Path) -> None:
    """``page`` as headless Chromium shows it in a window of :data:`WINDOW`, written to ``target``."""
    with tempfile.TemporaryDirectory() as folder:
        html, png = Path(folder, "page.html"), Path(folder, "page.png")
        html.write_text(page, encoding="utf-8")
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={png}", html.as_uri()],
                       cwd=folder, capture_output=True, timeout=300, check=True)
        os.replace(png, target)


def main() -> int:
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for name, source in graph_sources().items():
        target = IMAGES / f"{name}.png"
        png = subprocess.run(["dot", "-Tpng"], input=source.encode(), capture_output=True, timeout=300,
                             check=True).stdout
        target.write_bytes(png)
        manifest[target.name] = {"source": digest(source), "image": digest(png)}
        print(f"{target.relative_to(ROOT)}: drawn by dot")
    target = IMAGES / f"{EXPLAIN_IMAGE}.png"
    if chromium() is None:
        print(f"{target.relative_to(ROOT)}: left as it is (no chromium here)", file=sys.stderr)
    else:
        page = explain_page()
        screenshot(page, target)
        manifest[target.name] = {"source": digest(page), "image": digest(target.read_bytes()), **page_tools()}
        command = " ".join(EXPLAIN_COMMAND)
        print(f"{target.relative_to(ROOT)}: the page of 'rfa-lint {command}' in headless Chromium")
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
