"""%hermes /cells in a real kernel: the payloads of the cell's reply, per frontend, and --ran reproducing the agent.

A frontend is told apart by the execute_request's metadata, as the kernel sees it: JupyterLab and
Notebook 7 send the cell's id, VS Code its cell URI, nbclient nothing (and allow_stdin False).
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from hermes_jupyter.views.cells_widget import first_payload, inserted_line

from .kernel import Execution, Kernel, fresh_kernel_fixtures

SCRIPT = Path(__file__).parent / "scripts" / "cells.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n%config Hermes.plain = True"


shared_kernel, kernel = fresh_kernel_fixtures(SETUP)


def run_as(kernel: Kernel, code: str, cell_id: str) -> Execution:
    """Run a cell as a frontend that names it in the request's metadata (allow_stdin: a person is there)."""
    msg = kernel.client.session.msg("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": True,
        "stop_on_error": True})
    msg["metadata"]["cellId"] = cell_id
    cell = Execution(msg["header"]["msg_id"])
    cell.sent_at = time.monotonic()
    kernel.cells[cell.msg_id] = cell
    kernel.client.shell_channel.send(msg)
    kernel.pump(lambda: bool(cell.idle_after))
    kernel.await_reply(cell)
    return cell


def answer_widget(kernel: Kernel, widget: str, content: dict) -> dict:
    """Send what the page's widget sends (a custom message) and return the update of the command's output
    it brings (filed under that message: the kernel answers in its context)."""
    msg = kernel.client.session.msg("comm_msg", {"comm_id": widget, "data": {"method": "custom", "content": content}})
    reply = kernel.cells[msg["header"]["msg_id"]] = Execution(msg["header"]["msg_id"])
    reply.sent_at = time.monotonic()
    kernel.client.shell_channel.send(msg)
    kernel.pump(lambda: widget not in kernel.widgets and any(
        m["msg_type"] == "update_display_data" for m in reply.outputs))
    [update] = [m["content"] for m in reply.outputs if m["msg_type"] == "update_display_data"]
    return update


def inserted(cell: Execution) -> list[str]:
    return [p["text"] for p in cell.reply.get("payload", []) if p.get("source") == "set_next_input"]


def test_ran_gives_the_agents_runs_and_a_fresh_kernel_reproduces_them(kernel, tmp_path):
    turn = kernel.run("%hermes --wait --approvals allow run twice")
    assert "result is 42" in turn.stdout
    cells = kernel.run("%hermes /cells --ran", cell_id=None)  # nbclient's way: no cell id, no stdin
    assert cells.reply["status"] == "ok", cells.error
    assert cells.stdout == ("[hermes] 2 cells from session 'main', turn 1 sent as new cells; this runner (nbclient, "
                            "papermill, nbval) does not insert cells (skipped: 1 run that raised an error)\n")
    texts = inserted(cells)
    assert texts == ["# hermes: session 'main', turn 1 (run 1 of 2)\nbase = 20\nprint('base is', base)",
                     "# hermes: session 'main', turn 1 (run 2 of 2)\nresult = base + 22\nprint('result is', result)"]
    # "Run all" of those cells, without the agent: a kernel that never loaded the extension.
    fresh = Kernel(tmp_path)
    try:
        outputs = [fresh.run(text) for text in texts]
        assert [o.reply["status"] for o in outputs] == ["ok", "ok"]
        assert [o.stdout for o in outputs] == ["base is 20\n", "result is 42\n"]
        assert fresh.run("print(base, result, 'hermes_jupyter' in __import__('sys').modules)").stdout == "20 42 False\n"
    finally:
        fresh.close()


def test_vscode_gets_every_cell_in_reverse_and_jupyterlab_the_first_and_a_widget(kernel):
    kernel.run("%hermes --wait two blocks")
    vscode = run_as(kernel, "%hermes /cells", "vscode-notebook-cell:/work/demo.ipynb#W3sZmlsZQ%3D%3D")
    texts = inserted(vscode)
    # vscode-jupyter inserts each payload at the cell's index + 1: the last one sent ends up first.
    assert [t.splitlines()[0] for t in texts] == ["# hermes: session 'main', turn 1 (block 2 of 2)",
                                                  "# hermes: session 'main', turn 1 (block 1 of 2)"]
    assert not kernel.find_widgets("AnyModel")
    lab = run_as(kernel, "%hermes /cells 1", "7f3c2a9e-0000-4000-8000-000000000001")
    # One payload (JupyterLab applies the first only): block 1, with a marker line the widget finds it by.
    [payload] = inserted(lab)
    first, marker = payload.rsplit("\n", 1)
    assert first == texts[1]
    assert re.fullmatch(r"# hermes: 1 more cell goes below this one \[[0-9a-f]{8}\]", marker)
    [widget] = kernel.find_widgets("AnyModel", marker=marker)
    assert kernel.widgets[widget]["cells"] == texts[::-1]
    # The page's answer once it inserted the rest: the output becomes one line and the widget goes.
    update = answer_widget(kernel, widget, {"type": "inserted", "count": 1})
    assert update["data"] == {"text/plain": "[hermes] the page inserted the other 1 cell below this cell"}
    assert update["transient"]["display_id"]  # the widget's own output, replaced where it is



def test_a_page_that_cannot_insert_says_so_and_an_unknown_frontend_gets_every_cell(kernel):
    kernel.run("%hermes --wait two blocks")
    lab = run_as(kernel, "%hermes /cells", "3b1d0c4e-0000-4000-8000-000000000002")
    [widget] = kernel.find_widgets("AnyModel")
    update = answer_widget(kernel, widget, {"type": "gave_up"})
    assert update["data"]["text/plain"].startswith("[hermes] the page did not insert the other cells below this cell")
    assert len(inserted(lab)) == 1
    # No cell id but a person at the keyboard (Colab, classic Notebook: not verified): every cell, in order.
    other = kernel.run("%hermes /cells", allow_stdin=True, cell_id=None)
    assert [t.splitlines()[0][-14:] for t in inserted(other)] == ["(block 1 of 2)", "(block 2 of 2)"]
    assert other.stdout.splitlines()[-1] == "[hermes] a frontend that applies only one payload shows the first of them only"
    assert not kernel.find_widgets("AnyModel")


def test_cells_the_page_found_below_already_are_named_not_inserted(kernel):
    """The page's widget leaves out cells whose header is below already (tests/test_browser_cells.py runs
    it); the command's output then says what it found."""
    kernel.run("%hermes --wait two blocks")
    run_as(kernel, "%hermes /cells", "5a2e0d1f-0000-4000-8000-000000000003")
    [widget] = kernel.find_widgets("AnyModel")
    update = answer_widget(kernel, widget, {"type": "inserted", "count": 0, "present": 2})
    assert update["data"] == {"text/plain": "[hermes] these cells were below this cell already: nothing inserted"}
    run_as(kernel, "%hermes /cells", "5a2e0d1f-0000-4000-8000-000000000004")
    [widget] = kernel.find_widgets("AnyModel")
    update = answer_widget(kernel, widget, {"type": "inserted", "count": 0, "present": 1})
    assert update["data"] == {"text/plain": "[hermes] 1 of the 2 cells was below this cell already; the page "
                                            "inserted the other 1"}
    # A single cell goes with the widget too (it may be below already): a marker, and a line for each outcome.
    assert inserted_line(1, 0, 0, "this cell") == "[hermes] the cell is in, below this cell"
    assert inserted_line(1, 0, 1, "this cell") == "[hermes] the cell was below this cell already: nothing inserted"
    assert first_payload(["x = 1"])[1].startswith("# hermes: this line goes once the page has checked the cells below")
