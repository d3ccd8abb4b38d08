"""Notebook documents in a real ``rfa-lint server`` session: the three fixture notebooks opened
as an editor with Jupyter support opens them (LSP 3.17 ``notebookDocument/*``)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from lsp_session import WAIT, cell_edited, notebook_opened, session
from lsprotocol import types as lsp
from test_notebook import FIXTURES, expected

#: the Python code cells of each fixture: one publication each per analysis
CODE_CELLS = {"cifar_torch.ipynb": 6, "define_then_train.ipynb": 4, "keras_functional.ipynb": 4}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.rfa-lint]\nres = 32\n", encoding="utf-8")
    for path in FIXTURES.glob("*.ipynb"):
        shutil.copy(path, tmp_path)
    return tmp_path


async def published_on(published: asyncio.Queue, count: int) -> dict[str, lsp.PublishDiagnosticsParams]:
    """The next ``count`` publications, by URI (each URI once)."""
    got = {}
    for _ in range(count):
        params = await asyncio.wait_for(published.get(), WAIT)
        got[params.uri] = params
    assert len(got) == count, sorted(got)
    return got


def test_notebook_documents_in_a_session(folder: Path) -> None:
    asyncio.run(_notebooks(folder))


async def _notebooks(folder: Path) -> None:
    async with session(folder) as (client, published, result):
        (selector,) = result.capabilities.notebook_document_sync.notebook_selector
        assert selector.notebook == "jupyter-notebook" and [c.language for c in selector.cells] == ["python"]

        cells: dict[str, dict[int, str]] = {}
        for name in CODE_CELLS:
            params, cells[name] = notebook_opened(folder / name)
            client.notebook_document_did_open(params)
        first = await published_on(published, sum(CODE_CELLS.values()))

        # every finding on the cell and line its `# expect:` comment is on, nothing else: no
        # RFA9xx, so no training cell ran (they download CIFAR-10, fit, write TRAINED)
        where = {uri: (name, number) for name, uris in cells.items() for number, uri in uris.items()}
        found = {(*where[uri], d.range.start.line + 1, d.code)
                 for uri, params in first.items() for d in params.diagnostics}
        assert found == expected(folder)
        assert cells["cifar_torch.ipynb"][1] not in first  # a markdown cell: never a document of ours
        assert not (folder / "TRAINED").exists()

        # the span is the layer's call in the cell, as the CLI's `cell 4:9:13`
        net = cells["cifar_torch.ipynb"][4]
        by_code = {d.code: d for d in first[net].diagnostics}
        source = (folder / "cifar_torch.ipynb")
        text = next(c.text for c in notebook_opened(source)[0].cell_text_documents if c.uri == net)
        critical = text.splitlines()[8]
        assert by_code["RFA102"].range == lsp.Range(
            start=lsp.Position(line=8, character=12),
            end=lsp.Position(line=8, character=critical.index("),  # expect") + 1))

        # hover in a cell: the layer's facts at the configured resolution; a magic has none
        document = lsp.TextDocumentIdentifier(uri=net)
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=document, position=lsp.Position(line=9, character=14)))
        assert "`features.5`" in hover.contents.value
        # at 32 px the window of the 4x4 map's inner positions runs from -3 to 33 (conv1's padding
        # on both sides): 37, not the unbounded 35 + 2 * 8 = 51 (its taps on the 8x8 maps' padding
        # read nothing)
        assert "max 37 px" in hover.contents.value
        assert "at 32 px: unproductive" in hover.contents.value
        assert f"Analysed at 32 px: `res` in `{folder / 'pyproject.toml'}`" in hover.contents.value
        magic = cells["cifar_torch.ipynb"][3]
        assert await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=magic),
            position=lsp.Position(line=0, character=2))) is None

        # the quick fix writes into the cell, on the layer's line of it
        actions = await client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=document, range=by_code["RFA101"].range,
            context=lsp.CodeActionContext(diagnostics=[by_code["RFA101"]])))
        assert [a.title for a in actions] == ["Add '# noqa: RFA101'"]
        (edit,) = actions[0].edit.changes[net]
        assert edit.range.start.line == edit.range.end.line == 9
        assert edit.new_text == text.splitlines()[9] + "  # noqa: RFA101"

        # edits of cells: the noqa applied in cell 4 of one notebook; in another, a model of
        # depth 2 (RF 11 < 32 px) made in cell 3 clears the Block's findings in cell 2
        lines = text.splitlines()
        lines[9] = edit.new_text
        client.notebook_document_did_change(cell_edited(
            (folder / "cifar_torch.ipynb").as_uri(), 2, net, "\n".join(lines)))
        make = cells["define_then_train.ipynb"][3]
        client.notebook_document_did_change(cell_edited(
            (folder / "define_then_train.ipynb").as_uri(), 2, make, "model = Net(depth=2)"))
        changed = await published_on(published, CODE_CELLS["cifar_torch.ipynb"]
                                     + CODE_CELLS["define_then_train.ipynb"])
        assert sorted(d.code for d in changed[net].diagnostics) == ["RFA102", "RFA110"]
        assert changed[net].version == 2
        assert list(changed[cells["define_then_train.ipynb"][2]].diagnostics) == []
        assert not set(changed) & set(cells["keras_functional.ipynb"].values())  # not analysed again

        # a structure change: the last cell (`model?`) replaced by a new one; the cell that
        # left is cleared, the new one published, cell 4 keeps its findings on its lines
        book, last = (folder / "cifar_torch.ipynb").as_uri(), cells["cifar_torch.ipynb"][7]
        new = lsp.TextDocumentItem(uri=f"{last}-new", language_id="python", version=1, text="print(model)\n")
        client.notebook_document_did_change(lsp.DidChangeNotebookDocumentParams(
            notebook_document=lsp.VersionedNotebookDocumentIdentifier(uri=book, version=3),
            change=lsp.NotebookDocumentChangeEvent(cells=lsp.NotebookDocumentCellChanges(
                structure=lsp.NotebookDocumentCellChangeStructure(
                    array=lsp.NotebookCellArrayChange(start=6, delete_count=1, cells=[
                        lsp.NotebookCell(kind=lsp.NotebookCellKind.Code, document=new.uri)]),
                    did_open=[new], did_close=[lsp.TextDocumentIdentifier(uri=last)])))))
        moved = await published_on(published, CODE_CELLS["cifar_torch.ipynb"] + 1)
        assert list(moved[last].diagnostics) == [] and list(moved[new.uri].diagnostics) == []
        assert moved[net].diagnostics == changed[net].diagnostics
