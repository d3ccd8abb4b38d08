"""What an editor waits for: one-line edits of a one-model file (a ResNet-18 built in the file).

Through flake8 (what VS Code's flake8 extension, pylsp and ALE run on every save), with the
worker warm, next to ``python -c "import torch"`` timed in the same run, and without the worker
(``--rfa-no-worker``: a framework import per run, the path before the worker); a comment-only
edit (a cache hit); five buffers 0.3 s apart (the last result's wait); and through ``rfa-lint
server`` (a scripted LSP client: didChange -> publishDiagnostics, its debounce included).
Every edit changes the code (a new cache key), so each one builds and traces the model.
Target: the flake8 edit with the worker takes at most half a bare torch import.
    python benchmarks/bench_editor.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_lint_common import PYTHON, median_seconds, python, seconds, verdict
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

MODEL = '''import torch
from torch import nn

DROPOUT = 0.0  # the line each edit changes


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) \\
            if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        widths, blocks, cin = (64, 128, 256, 512), [], 64
        for stage, width in enumerate(widths):
            for index in range(2):
                blocks.append(Block(cin, width, 2 if stage and not index else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(DROPOUT),
                                  nn.Linear(512, 1000))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))
'''
EDITS = 10
FLAKE8 = [PYTHON, "-m", "flake8", "--select=RFA", "--rfa-res=64"]


def edited(number: int) -> str:
    return MODEL.replace("DROPOUT = 0.0", f"DROPOUT = 0.{number + 1}")


def flake8_edits(path: Path, *options: str, edits: int = EDITS, first: int = 0) -> list[float]:
    """Seconds of each flake8 run after a one-line edit (a text not linted before) saved to ``path``."""
    times = []
    for number in range(first, first + edits):
        path.write_text(edited(number))
        times.append(seconds([*FLAKE8, *options, str(path)]))
    return times


def same_findings(path: Path) -> bool:
    """Whether flake8 reports the same with the worker and without (no cache on either side)."""
    path.write_text(edited(300))
    found = [subprocess.run([*FLAKE8, "--rfa-no-cache", *options, str(path)], capture_output=True,
                            text=True).stdout for options in ([], ["--rfa-no-worker"])]
    return found[0] == found[1] and "RFA" in found[0]


def five_buffers(path: Path, *options: str, first: int = 100) -> float:
    """Five flake8 runs on the same file's unsaved buffers (stdin), started 0.3 s apart: seconds
    from the first start until the last one's result."""
    start, runs = time.perf_counter(), []
    for number in range(first, first + 5):
        run = subprocess.Popen([*FLAKE8, *options, "--stdin-display-name", str(path), "-"],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               text=True)
        run.stdin.write(edited(number))
        run.stdin.close()
        runs.append(run)
        time.sleep(0.3)
    for run in runs:
        run.wait()
    return time.perf_counter() - start


async def lsp_edits(path: Path) -> list[float]:
    """Seconds from each didChange (a one-line edit) to its publishDiagnostics."""
    published: asyncio.Queue = asyncio.Queue()
    client = LanguageClient("bench", "1")

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.put_nowait(params)

    await client.start_io(PYTHON, "-m", "rfa_lint", "server", cwd=str(path.parent))
    uri, times = path.as_uri(), []
    try:
        await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
        client.initialized(lsp.InitializedParams())
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=MODEL)))
        await asyncio.wait_for(published.get(), 300)
        for number in range(EDITS):
            start = time.perf_counter()
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=number + 2),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=edited(200 + number))]))
            await asyncio.wait_for(published.get(), 300)
            times.append(time.perf_counter() - start)
        await client.shutdown_async(None)
    finally:
        client.exit(None)
        await asyncio.wait_for(client.stop(), 60)
    return times


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["RFA_LINT_WORKER_DIR"] = os.path.join(folder, "workers")  # a worker of this run only
        os.environ["RFA_LINT_CACHE_DIR"] = os.path.join(folder, "cache")
        path = Path(folder, "model.py")
        try:
            path.write_text(MODEL)
            first = seconds([*FLAKE8, str(path)])  # starts the worker
            torch_import = median_seconds(python("import torch"), runs=5)
            warm = flake8_edits(path)
            cold = flake8_edits(path, "--rfa-no-worker", edits=3, first=EDITS)
            same = same_findings(path)
            path.write_text(edited(EDITS - 1) + "# a comment\n")
            comment = median_seconds([*FLAKE8, str(path)], runs=5)
            buffers = five_buffers(path)
            buffers_cold = five_buffers(path, "--rfa-no-worker", first=110)
            served = asyncio.run(lsp_edits(path))
        finally:
            subprocess.run([PYTHON, "-m", "rfa_lint.sandbox.worker", "stop"], capture_output=True)
    edit, bare = statistics.median(warm), torch_import
    print(f"one-line edits of a one-model file (ResNet-18 at 64px), load average {os.getloadavg()[0]:.1f}")
    print(f"  python -c 'import torch'              {bare:6.2f} s   (median of 5)")
    print(f"  flake8, first run (starts the worker) {first:6.2f} s")
    print(f"  flake8 edit, worker warm              {edit:6.2f} s   (median of {EDITS}; "
          f"min {min(warm):.2f}, max {max(warm):.2f})")
    print(f"  flake8 edit, --rfa-no-worker          {statistics.median(cold):6.2f} s   (median of 3)")
    print(f"  flake8 comment-only edit (cache hit)  {comment:6.2f} s   (median of 5)")
    print(f"  five buffers 0.3 s apart, last result {buffers:6.2f} s   after the first started "
          f"({buffers_cold:.2f} s with --rfa-no-worker)")
    print(f"  rfa-lint server didChange -> publish  {statistics.median(served):6.2f} s   (median of {EDITS}, "
          f"debounce included)")
    print(f"  same findings with and without the worker: {same}")
    ratio = edit / bare
    print(f"  flake8 edit / bare torch import       {ratio:6.2f}")
    ok = ratio <= 0.5 and same
    print(f"  target: the edit <= half a bare torch import: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
