"""What the language server tells an editor's user about the resolution it analyses at: with no
``res`` configured, once per workspace, and in every hover (issue 26, item 2)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from lsp_session import WAIT, opened, session
from lsprotocol import types as lsp

CHAIN = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "chain.py"


def test_with_no_res_the_default_is_said_once_per_workspace_and_in_hover(tmp_path: Path) -> None:
    for name in ("a.py", "b.py"):
        shutil.copy(CHAIN, tmp_path / name)
    messages = asyncio.run(_two_documents(tmp_path, "_Analysed at 224 px, the default: set `res` under "
                                                    "`[tool.rfa-lint]` in pyproject.toml to the resolution "
                                                    "your model sees._"))
    (message,) = messages
    assert message.type == lsp.MessageType.Warning
    assert message.message == (
        f"rfa-lint: no `res` is configured for {tmp_path}, so models are analysed at 224 px, the default. "
        f"Set the resolution your models see under [tool.rfa-lint] in {tmp_path / 'pyproject.toml'}, "
        f"e.g. res = 32.")


def test_with_res_configured_no_word_and_hover_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.rfa-lint]\nres = 16\n", encoding="utf-8")
    for name in ("a.py", "b.py"):
        shutil.copy(CHAIN, tmp_path / name)
    note = f"_Analysed at 16 px: `res` in `{tmp_path / 'pyproject.toml'}`._"
    messages = asyncio.run(_two_documents(tmp_path, note))
    assert messages == []


async def _two_documents(folder: Path, note: str) -> list[lsp.ShowMessageParams]:
    """Open two model files of ``folder``; the hover of a layer ends with the line ``note``.  The messages
    the server showed, all of them: the hover's answer comes after any message sent before it."""
    messages: list[lsp.ShowMessageParams] = []
    async with session(folder, messages) as (client, published, _):
        for name in ("a.py", "b.py"):
            path = folder / name
            client.text_document_did_open(opened(path.as_uri(), path.read_text(encoding="utf-8")))
        for _ in range(2):
            assert (await asyncio.wait_for(published.get(), WAIT)).diagnostics
        text = (folder / "b.py").read_text(encoding="utf-8")
        line = next(i for i, line in enumerate(text.splitlines()) if "self.conv5 =" in line)
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=(folder / "b.py").as_uri()),
            position=lsp.Position(line=line, character=text.splitlines()[line].index("nn.Conv2d") + 2)))
        assert "`conv5`" in hover.contents.value
        assert hover.contents.value.splitlines()[-1] == note
    return messages
