"""The extension on a kernel behind Jupyter Kernel Gateway, in a real JupyterLab in headless Chromium.

A real gateway (`kernel_gateway` fixture) runs the kernels in a folder of their own with a stripped
environment, as on another machine; JupyterLab reaches it with --gateway-url. The notebooks stay
on the server: the kernel never sees their folder. Screenshots go to artifacts/screenshots/.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .browser import (
    cell_output,
    expect,
    open_remote_notebook,
    replace_kernel,
    requires_browser,
    run_cell,
    screenshot,
    write_notebook,
)

pytestmark = requires_browser

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"
LONG = 60_000
# A URL on a loopback address: one the browser would open on the user's machine, not the kernel's.
LOOPBACK_URL = re.compile(r"(?:https?|wss?)://(?:127(?:\.\d{1,3}){3}|localhost|\[::1\]|0\.0\.0\.0)(?::\d+)?",
                          re.IGNORECASE)
KEPT_IN = re.compile(r"kept in (\S+\.hermes\.json)")


def kernel_traffic(page) -> list[str]:
    """Everything the browser receives from its kernels from now on (outputs, widget states), as text."""
    frames: list[str] = []

    def on_socket(socket) -> None:
        if "/api/kernels/" in socket.url:
            socket.on("framereceived", lambda payload: frames.append(
                payload if isinstance(payload, str) else payload.decode("utf-8", "replace")))
    page.on("websocket", on_socket)
    return frames


def outputs_html(page) -> str:
    return "\n".join(page.locator(".jp-OutputArea").evaluate_all("areas => areas.map(a => a.innerHTML)"))


def test_turn_approval_stop_and_history_on_a_kernel_behind_a_gateway(gateway_lab, page):
    kernels, notebooks = gateway_lab.kernels, gateway_lab.root
    (kernels / "victim").mkdir()
    (notebooks / "victim").mkdir()  # beside the notebook on the server: out of the remote agent's reach
    probe = f"from hermes_jupyter.models.scripted import shared_server\nprint(shared_server({str(SCRIPT)!r}).base_url)"
    write_notebook(notebooks, "remote.ipynb", [
        SETUP, "import os; print(os.getcwd())", "%hermes delete victim", "%hermes long story", probe,
        "%load_ext hermes_jupyter",  # in the next kernel
    ])
    traffic = kernel_traffic(page)
    loaded_urls: list[str] = []
    page.on("request", lambda request: loaded_urls.append(request.url))
    open_remote_notebook(page, gateway_lab, "remote.ipynb")

    run_cell(page, 0)
    loaded = cell_output(page, 0)
    expect(loaded).to_contain_text("cannot see the folder of its notebook")
    text = loaded.inner_text()
    assert text.count("[hermes]") == 1, text  # said once, in one line
    history = Path(KEPT_IN.search(text).group(1))
    assert history.parent == kernels / ".hermes-jupyter", text
    assert re.fullmatch(r"remote-[0-9a-f]{8}\.hermes\.json", history.name), history
    assert f"the agent works in {kernels}" in text
    run_cell(page, 1)
    expect(cell_output(page, 1)).to_have_text(str(kernels))  # the kernel runs apart from the notebooks
    screenshot(page, "gateway-01-remote-notice")

    run_cell(page, 2)
    asked = cell_output(page, 2)
    expect(asked.get_by_role("button", name="Allow once")).to_be_visible(timeout=LONG)
    screenshot(page, "gateway-02-approval-card")
    asked.get_by_role("button", name="Allow once").click()
    expect(asked.locator(".hermes-turn")).to_contain_text("allowed once", timeout=LONG)
    expect(asked.locator(".hermes-turn")).to_contain_text("Result:", timeout=LONG)  # the model's next step: the command ran
    assert not (kernels / "victim").exists()  # the agent worked in the kernel's folder...
    assert (notebooks / "victim").exists()  # ...never in a server path it cannot see
    expect(asked.locator(".hermes-turn")).to_contain_text(str(history))  # the footer names the file
    screenshot(page, "gateway-03-allowed")

    run_cell(page, 3)
    story = cell_output(page, 3)
    answer = story.locator(".hermes-answer").first
    expect(answer).to_contain_text("orem", timeout=LONG)
    first = answer.inner_text()
    expect(answer).to_have_text(re.compile(r"(\w+\W+){40}"), timeout=LONG)  # grew: it streams through the gateway
    assert answer.inner_text().startswith(first.strip())
    screenshot(page, "gateway-04-streaming")
    story.get_by_role("button", name="Stop").click()
    expect(story).to_contain_text("cancelled", timeout=LONG)
    screenshot(page, "gateway-05-stopped")

    # The browser loaded nothing but JupyterLab's own pages (not the gateway, not a kernel's server)...
    strangers = [url for url in loaded_urls if not url.startswith((gateway_lab.url + "/", "data:", "blob:"))]
    assert loaded_urls and not strangers, strangers
    # ...and nothing it got from these turns points at the kernel's loopback servers...
    seen = "\n".join(traffic) + outputs_html(page)
    assert traffic and "long story" in seen
    assert not LOOPBACK_URL.findall(seen), LOOPBACK_URL.findall(seen)
    # ...though it would be caught: the scripted server is one cell away.
    run_cell(page, 4)
    base_url = cell_output(page, 4).inner_text().strip()
    assert LOOPBACK_URL.match(base_url) and base_url not in seen

    saved = json.loads(history.read_text())
    assert [t["prompt"] for t in saved["sessions"]["main"]["turns"]] == ["delete victim", "long story"]
    assert not list(notebooks.rglob("*.hermes.json")) and not (notebooks / ".hermes-jupyter").exists()

    # The same notebook's next kernel resumes the conversation from the same file, and says so.
    replace_kernel(page, "remote.ipynb")
    run_cell(page, 5, timeout=LONG)
    resumed = cell_output(page, 5)
    expect(resumed).to_contain_text(f"resuming session 'main' (2 earlier turns) from {history}")
    expect(resumed).to_contain_text("cannot see the folder of its notebook")
    screenshot(page, "gateway-06-resumed")


def test_a_gateway_kernel_not_told_its_notebook_starts_fresh_in_its_own_folder(bare_gateway_lab, page):
    kernels, notebooks = bare_gateway_lab.kernels, bare_gateway_lab.root
    write_notebook(notebooks, "bare.ipynb", [SETUP, "%hermes think first"])
    open_remote_notebook(page, bare_gateway_lab, "bare.ipynb")
    run_cell(page, 0)
    loaded = cell_output(page, 0)
    expect(loaded).to_contain_text("cannot tell which notebook it runs")
    history = Path(KEPT_IN.search(loaded.inner_text()).group(1))
    assert history.parent == kernels / ".hermes-jupyter" and history.name.startswith("unnamed-")
    run_cell(page, 1)
    expect(cell_output(page, 1).locator(".hermes-turn")).to_contain_text("The answer is 42.", timeout=LONG)
    screenshot(page, "gateway-07-unnamed")
    assert "think first" in history.read_text()
    assert not list(notebooks.rglob("*.hermes.json"))
