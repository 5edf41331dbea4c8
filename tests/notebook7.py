"""Notebook 7 (`jupyter notebook`) for the browser tests, beside JupyterLab (tests/browser.py).

Notebook 7 is built from JupyterLab's parts: the same cells, outputs and widget manager, so the
helpers of tests/browser.py (run_cell, cell_output, screenshot) work in it; only the URL and the
server differ. Import the fixture in a test module: ``from .notebook7 import notebook7``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

from .browser import _KERNEL_READY_JS, LAB_SETTINGS, TIMEOUT_MS, LabServer, _answers, _free_port, expect


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory):
    """A `jupyter notebook` (7) on 127.0.0.1 with no token, its own root, settings and HERMES_HOME."""
    if importlib.util.find_spec("notebook") is None:
        pytest.fail("notebook is not installed: pip install -e '.[browser]'")
    base = tmp_path_factory.mktemp("notebook7")
    root, home, settings = base / "root", base / "hermes-home", base / "settings"
    for d in (root, home, settings):
        d.mkdir()
    for name, values in LAB_SETTINGS.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ, HERMES_HOME=str(home), TIRITH_ENABLED="0", JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"), JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "server.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "notebook", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--port-retries=0", f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--allow-root",
             "--JupyterNotebookApp.expose_app_in_browser=True"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = started + 60
        while not _answers(f"{url}/api/status"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jupyter notebook did not start (exit code {proc.poll()}):\n"
                            + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)  # polling interval of the readiness loop above
        yield LabServer(url, root, home, log, time.monotonic() - started)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_in_notebook7(page, server: LabServer, name: str, timeout: float = TIMEOUT_MS) -> None:
    """Open /notebooks/<name> and return once its kernel is connected and idle."""
    page.goto(f"{server.url}/notebooks/{quote(name)}")
    wait_ready(page, name, timeout)


def wait_ready(page, name: str, timeout: float = TIMEOUT_MS) -> None:
    """Wait until the open notebook's kernel is connected and idle, accepting any dialog on the way."""
    for _ in range(3):
        state = page.wait_for_function(_KERNEL_READY_JS, arg=name, timeout=timeout).json_value()
        if state != "dialog":
            return
        page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
        expect(page.locator(".jp-Dialog")).to_have_count(0)
    raise AssertionError(f"dialogs kept appearing while opening {name}")
