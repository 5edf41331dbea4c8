"""Headless runs (nbclient, papermill) keep a turn's answer in the saved notebook, whatever cells follow it.

A runner keeps only what reaches a cell while that cell runs. A `%hermes` line with nothing after it in
its cell therefore waits there when the run is headless; a turn started with `--no-wait` ends with a
display update sent under the cell running then (nbclient applies it by display id, in any cell).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest
from nbclient import NotebookClient

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"
HELLO = "Hello from the scripted model"


def notebook(folder: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in [SETUP, *cells]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "run.ipynb"
    nbformat.write(nb, path)
    return path


def with_nbclient(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def with_papermill(path: Path) -> nbformat.NotebookNode:
    out = path.with_name("out.ipynb")
    papermill.execute_notebook(str(path), str(out), cwd=str(path.parent), kernel_name="python3",
                               progress_bar=False, log_output=False)
    return nbformat.read(out, as_version=4)


def saved(cell: nbformat.NotebookNode) -> tuple[str, str]:
    """The cell's saved HTML and plain text, as a reader without the kernel gets them."""
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in cell.outputs)
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in cell.outputs)
    return html, text


@pytest.mark.parametrize("run", [with_nbclient, with_papermill], ids=["nbclient", "papermill"])
def test_a_turn_followed_by_other_cells_keeps_its_answer(tmp_path, run):
    nb = run(notebook(tmp_path, ["%hermes -o t say hello", "x = 1", "t.wait(60)\nprint(t.status)",
                                 "%hermes think first"]))
    turn, after, waited, last = nb.cells[1:]
    html, text = saved(turn)
    assert HELLO in html and HELLO in text
    assert not after.outputs
    assert "done" in saved(waited)[1]
    html, text = saved(last)  # the last cell of the notebook: nothing runs after it
    assert "The answer is 42." in html and "The answer is 42." in text


def test_a_no_wait_turn_ends_in_its_own_output_while_a_later_cell_waits(tmp_path):
    nb = with_nbclient(notebook(tmp_path, ["%hermes --no-wait -o t steady story", "n = 2", "t.wait(60)"]))
    turn, _, waited = nb.cells[1:]
    [output] = turn.outputs  # the live view, replaced by the final rendering where it stood
    html, text = saved(turn)
    assert "application/vnd.jupyter.widget-view+json" not in output.data
    assert html.startswith('<div class="hermes-turn">') and "Lorem" in html
    assert text.startswith("[hermes] session 'main'") and "\n-- done · " in text
    assert not any(o.get("output_type") == "display_data" for o in waited.outputs)  # not drawn twice


def test_code_after_the_magic_drives_the_turn_in_its_own_cell(tmp_path):
    nb = with_nbclient(notebook(tmp_path, [
        "%hermes -o t delete victim\nt.wait_for(lambda: t.pending_approvals, timeout=30)\nt.deny()\nt.wait(60)"]))
    html, _text = saved(nb.cells[1])
    assert "denied" in html and "by you" in html  # the cell's code answered: it did not wait at the magic
