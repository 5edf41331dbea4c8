"""The kernel's Interrupt (jupyter_client's interrupt_kernel, as JupyterLab's button sends it) stops the
running turn when no cell runs, in the widget view and in the text view; a running cell is interrupted
as always and the turns go on."""
from __future__ import annotations

from pathlib import Path

from .frontend import Frontend
from .kernel import Kernel, fresh_kernel_fixtures

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"
SAID = "Stopped by the kernel's Interrupt"

shared_kernel, kernel = fresh_kernel_fixtures(SETUP)


def test_interrupt_stops_a_streaming_turn_in_the_widget_view(kernel):
    view = Frontend(kernel, kernel.run("%hermes -o t gated story"))  # held at its gate: it cannot end by itself
    view.hello()
    view.pump(lambda: "orem" in view.text() or "olor" in view.text())
    kernel.manager.interrupt_kernel()
    final = view.final()
    assert SAID in final["text/plain"] and "cancelled" in final["text/html"]
    assert kernel.run("print(t.status, bool(t.text))").stdout == "cancelled True\n"  # the partial answer is kept


def test_interrupt_stops_a_streaming_turn_in_the_text_view(kernel):
    cell = kernel.run("%hermes --plain -o t gated story")
    kernel.pump(lambda: "orem" in cell.stdout or "olor" in cell.stdout)
    kernel.manager.interrupt_kernel()
    kernel.pump(lambda: "-- cancelled" in cell.stdout)
    assert SAID in cell.stdout
    assert kernel.run("print(t.status)").stdout == "cancelled\n"


def test_interrupt_while_a_cell_runs_interrupts_that_cell_only(kernel):
    view = Frontend(kernel, kernel.run("%hermes -o t gated story"))
    view.hello()
    busy = kernel.send("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    kernel.pump(lambda: "sleeping" in busy.stdout)
    kernel.manager.interrupt_kernel()
    kernel.pump(lambda: bool(busy.idle_after))
    assert busy.error is not None and busy.error["ename"] == "KeyboardInterrupt"
    assert kernel.run("print(t.status)").stdout == "running\n"
    kernel.run("t.cancel()")
    assert "Cancelled by user" in view.final()["text/plain"]


def test_interrupt_stops_a_turn_when_the_extension_was_loaded_at_kernel_start(tmp_path):
    """Loaded by c.InteractiveShellApp.extensions: before any cell, ipykernel's SIGINT handler is set already."""
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text("c.InteractiveShellApp.extensions = ['hermes_jupyter']\n")
    k = Kernel(tmp_path, env={"IPYTHONDIR": str(tmp_path / "ipython")})
    try:
        ask = k.run(f"%config Hermes.model = 'scripted:{SCRIPT}'\n%hermes --plain -o t gated story")
        assert ask.reply["status"] == "ok", ask.error
        k.pump(lambda: "orem" in ask.stdout or "olor" in ask.stdout)
        k.manager.interrupt_kernel()
        k.pump(lambda: "-- cancelled" in ask.stdout)
        assert SAID in ask.stdout
    finally:
        k.close()
