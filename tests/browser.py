"""Browser tests against a real JupyterLab, driven by Playwright in Debian's headless Chromium.

Use from a test module:

    from .browser import jupyterlab, page  # noqa: F401  (pytest fixtures)
    from .browser import requires_browser, write_notebook, open_notebook, run_all, cell_output

    pytestmark = requires_browser

Nothing is downloaded: Playwright drives /usr/bin/chromium (`.ci/browser-deps` installs it).
Waiting is done with Playwright's auto-waiting (`expect`, `wait_for_function`), never sleeps.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Locator, Page, expect, sync_playwright
except ImportError:  # the module is then skipped by `requires_browser` (or fails in CI)
    Locator = Page = expect = sync_playwright = None
    PlaywrightError = Exception

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TIMEOUT_MS = 30_000  # default for every wait below; a cold kernel start is about 1 s here

IN_CI = os.environ.get("CI", "").lower() in ("true", "1")


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: run .ci/browser-deps (apt-get install chromium)"
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[browser]'"
    return None


# Outside CI a machine without the browser skips these tests; in CI (CI=true) they run and fail.
requires_browser = pytest.mark.skipif(not IN_CI and _missing() is not None,
                                      reason=f"browser tests: {_missing()}")

# JupyterLab user settings for every test server: no news/update toast over the screenshots,
# and every cell attached to the DOM (the default windowing detaches cells out of view).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


@dataclass
class LabServer:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    root: Path  # the server's notebooks: notebooks written here open as /lab/tree/<name>
    hermes_home: Path  # the kernels' HERMES_HOME
    log: Path  # the server's stdout+stderr
    startup_seconds: float
    kernels: Path | None = None  # behind a gateway: the kernels' working folder (on "another machine")


@dataclass
class GatewayServer:
    url: str  # http://127.0.0.1:PORT: what JupyterLab's --gateway-url points at
    kernels: Path  # the working folder of every kernel it starts
    hermes_home: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def _serve(name: str, command: list[str], *, cwd: Path, env: dict[str, str], log: Path, ready: str):
    """Run a server until the test session ends; return once `ready` answers 200."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _answers(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not start (exit code {proc.poll()}):\n"
                            + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)  # polling interval of the readiness loop above
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _lab(base: Path, hermes_home: Path, *args: str, root_dir: Path | None = None, **env_extra: str):
    """A `jupyter lab` on 127.0.0.1 with no token and its own settings; notebooks in base/root."""
    root, settings = base / "root", base / "lab-settings"
    for d in (root, settings):
        d.mkdir()
    for name, values in LAB_SETTINGS.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ, HERMES_HOME=str(hermes_home), TIRITH_ENABLED="0",
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
               JUPYTER_CONFIG_DIR=str(base / "config"),  # ignore the developer's ~/.jupyter
               JUPYTER_RUNTIME_DIR=str(base / "runtime"), **env_extra)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--port-retries=0", f"--ServerApp.root_dir={root_dir or root}",
               f"--FileContentsManager.root_dir={root}",
               "--IdentityProvider.token=", "--allow-root",
               "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
               "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: kernel state for open_notebook
               *args]
    with _serve("jupyter lab", command, cwd=root, env=env, log=base / "server.log", ready=f"{url}/api/status"):
        yield LabServer(url, root, hermes_home, base / "server.log", time.monotonic() - started)


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory):
    """A `jupyter lab` on 127.0.0.1 with no token, its own root, settings and HERMES_HOME."""
    if _missing():
        pytest.fail(f"browser tests: {_missing()}")  # only reached in CI: a failure there
    base = tmp_path_factory.mktemp("jupyterlab")
    home = base / "hermes-home"
    home.mkdir()
    with _lab(base, home) as server:
        yield server


@pytest.fixture(scope="session")
def kernel_gateway(tmp_path_factory):
    """Jupyter Kernel Gateway on 127.0.0.1, its kernels working in a folder of their own.

    As on another machine, a kernel gets only PATH and the variables the gateway is told to pass:
    no HOME, none of the notebook server's environment. JPY_SESSION_NAME is accepted from a
    client that sends it (what a deployment sets up so kernels can name their notebook).
    """
    if _missing() or importlib.util.find_spec("kernel_gateway") is None:
        pytest.fail(f"gateway tests: {_missing() or 'jupyter-kernel-gateway is not installed'}")
    base = tmp_path_factory.mktemp("kernel-gateway")
    kernels, home, ipython = base / "kernels", base / "hermes-home", base / "ipython"
    for d in (kernels, home, ipython):
        d.mkdir()
    env = dict(os.environ, HERMES_HOME=str(home), TIRITH_ENABLED="0", IPYTHONDIR=str(ipython),
               JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               KG_ENV_PROCESS_WHITELIST="HERMES_HOME,TIRITH_ENABLED,IPYTHONDIR")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1",
               f"--KernelGatewayApp.port={port}", "--KernelGatewayApp.port_retries=0",
               "--JupyterWebsocketPersonality.list_kernels=True",  # JupyterLab lists the kernels it runs
               "--JupyterWebsocketPersonality.env_whitelist=JPY_SESSION_NAME"]
    with _serve("kernel gateway", command, cwd=kernels, env=env, log=base / "gateway.log", ready=f"{url}/api"):
        yield GatewayServer(url, kernels, home, base / "gateway.log")


def _gateway_lab(tmp_path_factory, gateway: GatewayServer, name: str, *args: str):
    base = tmp_path_factory.mktemp(name)
    # The server's kernel root: the path it tells kernels, an empty folder from the kernel's side,
    # like /home/jovyan/work in a kernel image whose notebooks live on the server.
    server_home = base / "server-home"
    server_home.mkdir()
    with _lab(base, gateway.hermes_home, f"--gateway-url={gateway.url}", *args, root_dir=server_home) as server:
        server.kernels = gateway.kernels
        yield server


@pytest.fixture(scope="session")
def gateway_lab(tmp_path_factory, kernel_gateway):
    """JupyterLab whose kernels run behind the gateway, told their notebook's path as a deployment
    would set it up (GatewayClient.allowed_envs): a path on the server, not on the kernel's side."""
    yield from _gateway_lab(tmp_path_factory, kernel_gateway, "gateway-lab",
                            "--GatewayClient.allowed_envs=JPY_SESSION_NAME")


@pytest.fixture(scope="session")
def bare_gateway_lab(tmp_path_factory, kernel_gateway):
    """JupyterLab with --gateway-url and nothing else: its kernels are not told their notebook."""
    yield from _gateway_lab(tmp_path_factory, kernel_gateway, "bare-gateway-lab")


@pytest.fixture(scope="session")
def chromium_browser():
    if _missing():
        pytest.fail(f"browser tests: {_missing()}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser):
    """A fresh Chromium page (own cookies and storage) for one test."""
    expect.set_options(timeout=TIMEOUT_MS)
    context = chromium_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    try:  # shut down the kernels this test started: the server lives for the whole session
        page.evaluate("() => window.jupyterapp?.serviceManager.sessions.shutdownAll()")
    except PlaywrightError:
        pass  # the page is gone; the server's exit stops the kernels
    context.close()


def write_notebook(root: Path, name: str, cells: list[str]) -> Path:
    """Write code cells as a notebook; its python3 kernelspec avoids the kernel-picker dialog."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}",
                   "metadata": {}, "outputs": [], "source": source}
                  for i, source in enumerate(cells)],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                           "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4, "nbformat_minor": 5,
    }
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))
    return path


# True when the notebook at `path` has a connected, idle kernel; "dialog" when a dialog is up.
# (The toolbar's ExecutionIndicator says "idle" for a moment before the kernel even connects,
# so the DOM alone is not a reliable readiness signal.)
_KERNEL_READY_JS = """(path) => {
  if (document.querySelector('.jp-Dialog')) return 'dialog';
  const app = window.jupyterapp;
  if (!app) return false;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content) {
      const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
      return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected'
        && widget.content.widgets.length > 0;
    }
  }
  return false;
}"""


def open_notebook(page: Page, server: LabServer, name: str, timeout: float = TIMEOUT_MS) -> None:
    """Open /lab/tree/<name> and return once its kernel is connected and idle.

    `?reset` starts from an empty workspace, so only this notebook is open in the page.
    A dialog that appears meanwhile (kernel picker, ...) is accepted.
    """
    page.goto(f"{server.url}/lab/tree/{quote(name)}?reset")
    for _ in range(3):
        state = page.wait_for_function(_KERNEL_READY_JS, arg=name, timeout=timeout).json_value()
        if state != "dialog":
            return
        page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
        expect(page.locator(".jp-Dialog")).to_have_count(0)
    raise AssertionError(f"dialogs kept appearing while opening {name}")


_RECONNECT_JS = """async (path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) {
      await widget.sessionContext.session?.kernel?.reconnect();
      return;
    }
  }
}"""


def open_remote_notebook(page: Page, server: LabServer, name: str) -> None:
    """`open_notebook` for a JupyterLab whose kernels are behind a gateway.

    Now and then (about one start in ten here) the first connection to a kernel through the gateway
    stays deaf, JupyterLab waiting for a kernel that is up. The logs show JupyterLab opening two
    websockets with one session id while the kernel starts; the gateway probably keeps the one
    JupyterLab dropped. Reconnecting, as Kernel > Reconnect to Kernel does, brings it back.
    """
    try:
        open_notebook(page, server, name, timeout=20_000)
    except PlaywrightError:
        _reconnect(page, name)


def _reconnect(page: Page, name: str) -> None:
    print(f"[browser] {name}: the kernel connection through the gateway stayed deaf; reconnecting")
    page.evaluate(_RECONNECT_JS, name)
    page.wait_for_function(_KERNEL_READY_JS, arg=name, timeout=TIMEOUT_MS)


def cell(page: Page, index: int) -> Locator:
    """The index-th cell of the open notebook."""
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index)


def cell_output(page: Page, index: int) -> Locator:
    """The output area of a cell (never its source: safe for text selectors)."""
    return cell(page, index).locator(".jp-Cell-outputArea")


def _wait_executed(prompt: Locator, before: str, timeout: float) -> None:
    # "[ ]:" or "[3]:" -> "[*]:" -> "[4]:": a new execution count means the cell has finished.
    expect(prompt).not_to_have_text(before, timeout=timeout)
    expect(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=timeout)


def run_cell(page: Page, index: int, wait: bool = True, timeout: float = TIMEOUT_MS) -> None:
    """Select a cell and run it with Ctrl+Enter; with `wait`, return once it has finished.

    Ctrl+Enter ("run and do not advance") rather than Shift+Enter, which on the last cell
    appends a new cell.
    """
    prompt = cell(page, index).locator(".jp-InputPrompt")
    before = prompt.inner_text().strip()
    prompt.click()  # selects the cell in command mode
    page.keyboard.press("Control+Enter")
    if wait:
        _wait_executed(prompt, before, timeout)


def run_all(page: Page, wait: bool = True, timeout: float = TIMEOUT_MS) -> None:
    """Run > Run All Cells from the menu bar; with `wait`, return once every code cell ran."""
    prompts = page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell .jp-InputPrompt")
    before = [p.strip() for p in prompts.all_inner_texts()]
    page.locator("#jp-MainMenu").get_by_role("menuitem", name="Run", exact=True).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    if wait:
        for i, text in enumerate(before):
            _wait_executed(prompts.nth(i), text, timeout)


def save(page: Page) -> None:
    """File > Save (Ctrl+S) on the current notebook, returning once the server has written the file.

    Waiting for the tab's dirty mark to go is not enough: Notebook 7 has no such mark, so the wait
    passed at once and a reload read the file as it was before the save.
    """
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of the page as artifacts/screenshots/<name>.png (repo root) and return it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (name if name.endswith(".png") else f"{name}.png")
    page.screenshot(path=str(path))
    return path



def replace_kernel(page: Page, name: str) -> None:
    """Shut the open notebook's kernel down and start a new one for it; return once that one is idle.

    A new kernel rather than Kernel > Restart: restarting through a kernel gateway sometimes leaves
    JupyterLab's connection deaf (seen with plain `print` cells, jupyter_server 2.21, Kernel Gateway 3.0.1),
    and reconnecting did not bring it back in our tries; a new kernel's first connection is handled as in
    `open_remote_notebook`.
    """
    page.evaluate("""async (path) => {
      for (const widget of window.jupyterapp.shell.widgets('main')) {
        if (widget.context && widget.context.path === path) {
          await widget.sessionContext.shutdown();
          await widget.sessionContext.changeKernel({name: 'python3'});
          return;
        }
      }
      throw new Error('no open notebook ' + path);
    }""", name)
    try:
        page.wait_for_function(_KERNEL_READY_JS, arg=name, timeout=20_000)
    except PlaywrightError:
        _reconnect(page, name)
