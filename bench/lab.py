"""A JupyterLab on 127.0.0.1 and a headless Chromium page on it, outside pytest.

The same setup as the browser tests' fixtures (tests/browser.py: settings,
Chromium flags, notebook helpers), as one context manager.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.browser import CHROMIUM, CHROMIUM_ARGS, LAB_SETTINGS, TIMEOUT_MS, VIEWPORT, LabServer, _answers, _free_port


@contextlib.contextmanager
def lab_page(base: Path, env: dict[str, str]) -> Iterator[tuple[LabServer, object]]:
    from playwright.sync_api import expect, sync_playwright

    root, settings = base / "root", base / "lab-settings"
    for d in (root, settings):
        d.mkdir(parents=True, exist_ok=True)
    for name, values in LAB_SETTINGS.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(env, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
               JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "server.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--port-retries=0", f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--allow-root",
             "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not _answers(f"{url}/api/status"):
            if proc.poll() is not None or time.monotonic() > started + 60:
                raise RuntimeError("jupyter lab did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)  # readiness polling interval
        server = LabServer(url, root, Path(env["HERMES_HOME"]), log, time.monotonic() - started)
        expect.set_options(timeout=TIMEOUT_MS)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            try:
                yield server, page
            finally:
                with contextlib.suppress(Exception):
                    page.evaluate("() => window.jupyterapp?.serviceManager.sessions.shutdownAll()")
                context.close()
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

