"""Smoke test of the browser harness: a real JupyterLab in headless Chromium."""
import time

from .browser import cell_output, expect, open_notebook, requires_browser, run_all, run_cell, screenshot, write_notebook

pytestmark = requires_browser


def test_lab_runs_cells_and_renders_widgets(jupyterlab, page):
    started = time.monotonic()
    write_notebook(jupyterlab.root, "smoke.ipynb", [
        "print(6*7)",
        'import ipywidgets as w; w.Button(description="Click me")',
    ])
    open_notebook(page, jupyterlab, "smoke.ipynb")
    opened = time.monotonic()
    run_cell(page, 0)
    ran = time.monotonic()
    run_all(page)

    expect(cell_output(page, 0)).to_contain_text("42")
    button = cell_output(page, 1).locator("button", has_text="Click me")
    expect(button).to_be_visible()  # a rendered widget: the widget manager works
    expect(cell_output(page, 1)).not_to_contain_text("Button(")  # not the text repr
    button.click()
    path = screenshot(page, "smoke-widgets")
    assert path.stat().st_size > 10_000
    print(f"\nJupyterLab start {jupyterlab.startup_seconds:.1f}s, open notebook "
          f"{opened - started:.1f}s, run one cell {ran - opened:.2f}s")


def test_hermes_magic_in_lab(jupyterlab, page):
    write_notebook(jupyterlab.root, "hermes.ipynb", [
        "%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:demo'",
        "%hermes --wait --plain hello",
    ])
    open_notebook(page, jupyterlab, "hermes.ipynb")
    started = time.monotonic()
    run_all(page, timeout=60_000)
    expect(cell_output(page, 1)).to_contain_text("scripted demo model")
    screenshot(page, "smoke-hermes")
    print(f"\n%load_ext + %hermes --wait hello: {time.monotonic() - started:.1f}s")
