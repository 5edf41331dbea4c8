"""A notebook saved mid-turn stays readable after its kernel dies (headless Chromium, real JupyterLab).

Saved while a turn streams, then the kernel is killed with SIGKILL: the live view says the kernel
stopped instead of keeping a Stop button, and the notebook reopened (and nbconvert's HTML) shows
the turn as far as it went, where it is kept and the command that shows it again, not only
"Error displaying widget: model not found".
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from .browser import cell_output, expect, open_notebook, requires_browser, run_cell, save, screenshot, write_notebook

pytestmark = requires_browser

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"
LONG = 60_000


def test_a_notebook_saved_mid_turn_shows_the_turn_after_its_kernel_died(jupyterlab, page, chromium_browser):
    name = "saved-mid-turn.ipynb"
    write_notebook(jupyterlab.root, name, [SETUP, "import os\nprint(os.getpid())", "%hermes -o t long story"])
    open_notebook(page, jupyterlab, name)
    run_cell(page, 0)
    run_cell(page, 1)
    pid = int(cell_output(page, 1).inner_text().strip())
    run_cell(page, 2)
    out = cell_output(page, 2)
    expect(out.locator(".hermes-live .hermes-answer")).to_contain_text("orem", timeout=LONG)
    saved = out.locator(".hermes-snapshot")
    # The turn so far is in the cell's outputs, hidden while the live view draws it.
    expect(saved.locator(".hermes-answer")).to_contain_text("orem", timeout=LONG, use_inner_text=False)
    expect(saved).to_be_hidden()
    screenshot(page, "saved-01-live")
    save(page)
    os.kill(pid, signal.SIGKILL)
    expect(out.locator(".hermes-gone")).to_contain_text("The kernel stopped.", timeout=LONG)
    expect(out.get_by_role("button", name="Stop")).to_have_count(0)
    expect(out.locator(".hermes-live .hermes-foot")).to_contain_text("interrupted")
    expect(saved).to_be_hidden()  # the live view shows the turn as far as it got: not twice
    screenshot(page, "saved-02-kernel-gone")

    reopened = chromium_browser.new_context(viewport=page.viewport_size).new_page()
    reopened.goto(f"{jupyterlab.url}/lab/tree/{name}?reset")
    again = cell_output(reopened, 2)
    shown = again.locator(".hermes-snapshot")
    expect(shown).to_be_visible(timeout=LONG)
    expect(shown).to_contain_text("orem")
    expect(shown).to_contain_text("long story")
    expect(shown).to_contain_text("saved-mid-turn.hermes.json")
    expect(shown).to_contain_text("%hermes /show")
    screenshot(reopened, "saved-03-reopened")
    reopened.context.close()

    html = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--stdout", str(jupyterlab.root / name)],
                          capture_output=True, text=True, check=True).stdout
    assert "Saved while the turn was running" in html and "saved-mid-turn.hermes.json" in html
    notebook = json.loads((jupyterlab.root / name).read_text())
    [snapshot] = [o for o in notebook["cells"][2]["outputs"] if "hermes-snapshot" in str(o["data"].get("text/html"))]
    assert "orem" in "".join(snapshot["data"]["text/plain"])
