"""%hermes /cells in a real JupyterLab: the answer's two code blocks become two cells below the command.

JupyterLab applies the first set_next_input payload; the one-shot widget (views/cells_widget.py)
inserts the second below it. The inserted cells run and give the answer's output, and reloading
the saved notebook inserts nothing again.
"""
from __future__ import annotations

import time
from pathlib import Path

from .browser import (cell, cell_output, expect, open_notebook, requires_browser, run_cell, screenshot,
                      write_notebook)

pytestmark = requires_browser

SCRIPT = Path(__file__).parent / "scripts" / "cells.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"
SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"
LONG = 60_000

# The notebook's cells as its model holds them (the test server exposes the app; the extension does not use it).
SOURCES_JS = """(path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content.model) {
      return widget.content.model.sharedModel.cells.map((c) => c.getSource());
    }
  }
  return null;
}"""


def sources(page, name: str) -> list[str]:
    return page.evaluate(SOURCES_JS, name)


def test_two_code_blocks_become_two_cells_that_run(jupyterlab, page):
    name = "cells.ipynb"
    write_notebook(jupyterlab.root, name, [SETUP, "%hermes --wait two blocks", "%hermes /cells"])
    open_notebook(page, jupyterlab, name)
    run_cell(page, 0)
    run_cell(page, 1, timeout=LONG)
    expect(cell_output(page, 1)).to_contain_text("Then show the total")
    started = time.monotonic()
    run_cell(page, 2)
    page.wait_for_function(f"() => ({SOURCES_JS})({name!r})?.length === 5")
    took = time.monotonic() - started
    got = sources(page, name)
    assert got[:3] == [SETUP, "%hermes --wait two blocks", "%hermes /cells"]
    assert got[3:] == [
        "# hermes: session 'main', turn 1 (block 1 of 2)\nsquares = [n * n for n in range(5)]",
        "# hermes: session 'main', turn 1 (block 2 of 2)\ntotal = sum(squares)\nprint(\"total of squares:\", total)"]
    out = cell_output(page, 2)
    expect(out).to_contain_text("[hermes] 2 cells from session 'main', turn 1 go in below this cell "
                                "(skipped: 1 bash block; 1 block without a language)")
    expect(out).to_contain_text("[hermes] the page inserted the other 1 cell below this cell")
    print(f"\n[cells] /cells run to both cells in the notebook: {took:.2f} s")
    run_cell(page, 3)
    run_cell(page, 4)
    expect(cell_output(page, 4)).to_have_text("total of squares: 30")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "cells-inserted.png"))
    screenshot(page, "cells-inserted")

    # Saved and opened again (same kernel, a new page): nothing is inserted twice.
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)
    open_notebook(page, jupyterlab, name)
    expect(cell_output(page, 2)).to_contain_text("the page inserted the other 1 cell")
    expect(cell(page, 4)).to_be_visible()
    assert sources(page, name) == got
    # Running the command again is asking again: two more cells, right below it.
    run_cell(page, 2)
    page.wait_for_function(f"() => ({SOURCES_JS})({name!r})?.length === 7")
    assert sources(page, name) == [*got[:3], *got[3:], *got[3:]]
