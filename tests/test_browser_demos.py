"""Run All on the demo notebooks in a real JupyterLab, as a person who copied them would.

The copy is made by the demos command (hermes_jupyter.demos). Headless runners (nbval, papermill)
have nobody to click and insert no cells; JupyterLab does both, so two demos behave differently
there: 06 must not wait for an approval nobody is asked for, and 07 must not insert its cells again.
"""
from __future__ import annotations

import pytest

from hermes_jupyter.demos import copy_demos

from .browser import cell_output, expect, open_notebook, requires_browser, run_all, screenshot
from .test_browser_cells import sources

pytestmark = requires_browser

def run_all_afresh(page) -> None:
    """Clear the outputs, then Run All and wait for every cell: a demo ships run, and a fresh kernel
    numbers its cells as the saved ones are numbered (run_all waits for each number to change)."""
    page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs'); }")
    run_all(page, timeout=CELL_TIMEOUT)


# Longer than any demo cell takes, shorter than the 60 s an unanswered approval waits.
CELL_TIMEOUT = 45_000


@pytest.fixture(scope="module")
def demos(jupyterlab):
    folder = jupyterlab.root / "demos"
    copy_demos(folder)
    return "demos"


def test_demo_06_runs_all_without_waiting_for_a_click(jupyterlab, demos, page):
    name = f"{demos}/06-record-and-replay.ipynb"
    open_notebook(page, jupyterlab, name)
    run_all_afresh(page)  # a turn waiting for an approval would hold its cell for 60 s
    cells = sources(page, name)
    tidy = [i for i, source in enumerate(cells) if "Tidy up the 06-tmp folder" in source]
    assert len(tidy) == 2
    for i in tidy:
        out = cell_output(page, i)
        expect(out).to_contain_text("denied")
        expect(out).to_contain_text("by the approval policy")
        expect(out.get_by_role("button", name="Deny")).to_have_count(0)
    drift = next(i for i, source in enumerate(cells) if source.startswith("print(drifted.status"))
    expect(cell_output(page, drift)).to_contain_text("Replay drift at the prompt 'Add up 2 7 1 8.'")
    screenshot(page, "demo-06-run-all")


def test_demo_07_run_all_twice_inserts_nothing(jupyterlab, demos, page):
    """The notebook ships the cells /cells would insert, right below each command: they are found there."""
    name = f"{demos}/07-agent-code-to-cells.ipynb"
    open_notebook(page, jupyterlab, name)
    shipped = sources(page, name)
    commands = [i for i, source in enumerate(shipped) if source.startswith("%hermes /cells")]
    assert len(commands) == 3
    for attempt in (1, 2):  # the second in the same kernel: its turns are numbered on (4, 5, 6)
        run_all_afresh(page)
        for i in commands:
            expect(cell_output(page, i)).to_contain_text("below this cell already: nothing inserted")
        assert sources(page, name) == shipped, f"Run All {attempt} changed the notebook's cells"
    expect(cell_output(page, commands[1] + 3)).to_contain_text("{'north': 12, 'south': 21}")
    screenshot(page, "demo-07-run-all-twice")
