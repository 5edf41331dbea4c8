"""%hermes /cells in a real JupyterLab: the answer's two code blocks become two cells below the command.

JupyterLab applies the first set_next_input payload; the one-shot widget (views/cells_widget.py)
inserts the second below it. The inserted cells run and give the answer's output, reloading the
saved notebook inserts nothing again, and neither does running the command again (the cells are below).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .browser import (
    PlaywrightError,
    cell,
    cell_output,
    expect,
    open_notebook,
    requires_browser,
    run_cell,
    save,
    screenshot,
    write_notebook,
)
from .notebook7 import notebook7, open_in_notebook7  # noqa: F401  (fixture)

pytestmark = requires_browser

SCRIPT = Path(__file__).parent / "scripts" / "cells.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"
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


DELETE_JS = """([path, index]) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) widget.content.model.sharedModel.deleteCell(index);
  }
}"""


# Measurement only: the page time at which the notebook first held each number of cells.
WATCH_JS = """(path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) {
      const shared = widget.content.model.sharedModel;
      window.__hermesCellTimes = {};
      shared.changed.connect(() => { window.__hermesCellTimes[shared.cells.length] ??= performance.now(); });
    }
  }
}"""


def sources(page, name: str) -> list[str]:
    return page.evaluate(SOURCES_JS, name)


def wait_cells(page, name: str, count: int) -> None:
    """Until the notebook holds `count` cells; on a timeout, say which it holds and what the command said."""
    try:
        page.wait_for_function(f"() => ({SOURCES_JS})({name!r})?.length === {count}")
    except PlaywrightError as exc:
        raise AssertionError(f"expected {count} cells, the notebook holds {sources(page, name)}; the command's "
                             f"output: {cell_output(page, 2).inner_text()!r}; console: {CONSOLE[-20:]}") from exc


CONSOLE: list[str] = []


@pytest.fixture(params=["lab", "notebook7"])
def frontend(request):
    """(label, server, open) for JupyterLab 4 and Notebook 7: both apply only the first payload."""
    if request.param == "lab":
        return "lab", request.getfixturevalue("jupyterlab"), open_notebook
    return "nb7", request.getfixturevalue("notebook7"), open_in_notebook7


def test_two_code_blocks_become_two_cells_that_run(frontend, page):
    label, server, open_page = frontend
    name = f"cells-{label}.ipynb"
    write_notebook(server.root, name, [SETUP, "%hermes --wait two blocks", "%hermes /cells"])
    page.on("console", lambda m: CONSOLE.append(m.text))
    open_page(page, server, name)
    run_cell(page, 0)
    run_cell(page, 1, timeout=LONG)
    expect(cell_output(page, 1)).to_contain_text("Then show the total")
    page.evaluate(WATCH_JS, name)
    started = time.monotonic()
    run_cell(page, 2)
    wait_cells(page, name, 5)
    took = time.monotonic() - started
    # In the page: when the payload's cell came (4 cells) and when the widget's did (5).
    times = page.evaluate("() => window.__hermesCellTimes")
    got = sources(page, name)
    assert got[:3] == [SETUP, "%hermes --wait two blocks", "%hermes /cells"]
    assert got[3:] == [
        "# hermes: session 'main', turn 1 (block 1 of 2)\nsquares = [n * n for n in range(5)]",
        "# hermes: session 'main', turn 1 (block 2 of 2)\ntotal = sum(squares)\nprint(\"total of squares:\", total)"]
    out = cell_output(page, 2)
    expect(out).to_contain_text("[hermes] 2 cells from session 'main', turn 1 go in below this cell "
                                "(skipped: 1 bash block; 1 block without a language)")
    expect(out).to_contain_text("[hermes] the page inserted the other 1 cell below this cell")
    print(f"\n[cells] {label}: /cells run to both cells in the notebook: {took:.2f} s; the widget's cell "
          f"{times['5'] - times['4']:.0f} ms after the payload's")
    run_cell(page, 3)
    run_cell(page, 4)
    expect(cell_output(page, 4)).to_have_text("total of squares: 30")
    screenshot(page, f"cells-inserted-{label}")

    # Saved and opened again (same kernel, a new page): nothing is inserted twice.
    save(page)
    assert len(json.loads((server.root / name).read_text())["cells"]) == 5
    open_page(page, server, name)
    expect(cell_output(page, 2)).to_contain_text("the page inserted the other 1 cell")
    expect(cell(page, 4)).to_be_visible()
    assert sources(page, name) == got
    # Running the command again (a second Run All): the cells are below already, nothing is inserted.
    run_cell(page, 2)
    expect(cell_output(page, 2)).to_contain_text("[hermes] these cells were below this cell already: nothing inserted")
    assert sources(page, name) == got
    # Once one is gone, only that one comes back, in its place.
    page.evaluate(DELETE_JS, [name, 4])
    wait_cells(page, name, 4)
    run_cell(page, 2)
    expect(cell_output(page, 2)).to_contain_text("[hermes] 1 of the 2 cells was below this cell already; the page "
                                                 "inserted the other 1")
    assert sources(page, name) == [*got[:3], got[4], got[3]]
