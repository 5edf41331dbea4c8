"""Kernels on another machine than their notebook: one rule for where the history and
the agent's working folder go, said once in the cell; and nothing of the kernel's loopback for the browser.

The rule itself is tested on `locate` (milliseconds); one real kernel, told a notebook path its
machine does not have (what JPY_SESSION_NAME holds behind a gateway), shows it end to end.
tests/test_gateway.py shows it through a real Kernel Gateway and JupyterLab.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hermes_jupyter.history import paths
from hermes_jupyter.history.paths import UNNAMED_DIR, remote_stem

from .kernel import Kernel

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
LOOPBACK_URL = re.compile(r"(?:https?|wss?)://(?:127(?:\.\d{1,3}){3}|localhost|\[::1\]|0\.0\.0\.0)(?::\d+)?",
                          re.IGNORECASE)


class Shell:
    """What `locate` reads of a shell (the user namespace) and, as `.settings`, the Hermes settings it is given."""

    def __init__(self, notebook: str | None = None, history_dir: str | None = None, **namespace: str):
        self.user_ns = namespace
        self.settings = type("Settings", (), {"notebook": notebook, "history_dir": history_dir})()


def locate(shell: Shell, kernel_tag: str, cwd: Path) -> paths.Location:
    return paths.locate(shell, kernel_tag, cwd, settings=shell.settings)


def working_folder(shell: Shell, cwd: Path) -> Path:
    return paths.working_folder(shell, cwd, settings=shell.settings)


@pytest.fixture
def kernel_cwd(tmp_path, monkeypatch):
    for name in ("JPY_SESSION_NAME", "HERMES_JUPYTER_NOTEBOOK", "HERMES_JUPYTER_HISTORY_DIR"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "kernel"
    folder.mkdir()
    return folder


def test_a_notebook_on_another_machine_keeps_its_history_with_the_kernel_under_its_own_name(kernel_cwd, monkeypatch):
    server_path = "/srv/nowhere-here/team/analysis.ipynb"  # the server's folder: not on this machine
    monkeypatch.setenv("JPY_SESSION_NAME", server_path)
    where = locate(Shell(), "k1", cwd=kernel_cwd)
    assert where.known and not where.beside
    assert where.history == kernel_cwd / UNNAMED_DIR / f"{remote_stem(Path(server_path))}.hermes.json"
    assert re.fullmatch(r"analysis-[0-9a-f]{8}\.hermes\.json", where.history.name)
    assert where.recording == where.history.with_name(where.history.name.replace(".hermes.json", ".hermes-recording.yaml"))
    assert where.workdir == kernel_cwd.resolve() == working_folder(Shell(), cwd=kernel_cwd)
    assert locate(Shell(), "k2", cwd=kernel_cwd).history == where.history  # the next kernel resumes it
    assert where.label(where.history) == str(where.history)  # absolute: the notebook's folder is not here
    notice = where.notice
    assert notice is not None and "\n" not in notice
    assert server_path in notice and str(where.history) in notice and f"the agent works in {kernel_cwd}" in notice


def test_two_notebooks_of_one_name_in_different_server_folders_never_share_a_history(kernel_cwd, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/srv/nowhere-here/alice/analysis.ipynb")
    first = locate(Shell(), "k1", cwd=kernel_cwd).history
    monkeypatch.setenv("JPY_SESSION_NAME", "/srv/nowhere-here/bob/analysis.ipynb")
    assert locate(Shell(), "k2", cwd=kernel_cwd).history != first


def test_an_existing_folder_without_the_notebook_is_not_the_servers_folder(kernel_cwd, tmp_path, monkeypatch):
    # A kernel image with an empty /home/jovyan/work: the path exists, the notebook does not.
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("JPY_SESSION_NAME", str(work / "analysis.ipynb"))
    where = locate(Shell(), "k", cwd=kernel_cwd)
    assert not where.beside and where.history.parent == kernel_cwd / UNNAMED_DIR
    assert not list(work.iterdir())


def test_a_notebook_the_kernel_sees_keeps_its_history_beside_it(kernel_cwd, tmp_path, monkeypatch):
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    (elsewhere / "seen.ipynb").write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(elsewhere / "seen.ipynb"))
    where = locate(Shell(), "k", cwd=kernel_cwd)  # there, though the kernel runs in another folder
    assert where.beside and where.notice is None
    assert where.history == elsewhere / "seen.hermes.json" and where.workdir == elsewhere
    # A notebook renamed since its kernel started: Jupyter's stale path still names the kernel's own folder.
    monkeypatch.setenv("JPY_SESSION_NAME", str(kernel_cwd / "renamed-since.ipynb"))
    assert locate(Shell(), "k", cwd=kernel_cwd).history == kernel_cwd / "renamed-since.hermes.json"
    # A notebook the user names counts once its folder exists (papermill's output is not written yet).
    named = locate(Shell(notebook=str(elsewhere / "out.ipynb")), "k", cwd=kernel_cwd)
    assert named.beside and named.history == elsewhere / "out.hermes.json"


def test_history_dir_holds_every_history_kept_away_from_its_notebook(kernel_cwd, tmp_path, monkeypatch):
    monkeypatch.setenv("HISTORY_ROOT", str(tmp_path / "histories"))
    remote = locate(Shell(history_dir="$HISTORY_ROOT/me", __session__="/srv/nowhere-here/analysis.ipynb"),
                    "k", cwd=kernel_cwd)
    assert remote.history.parent == tmp_path / "histories" / "me" and remote.configured
    assert "(Hermes.history_dir)" in (remote.notice or "")
    unknown = locate(Shell(history_dir="$HISTORY_ROOT/me"), "k", cwd=kernel_cwd)
    assert unknown.history.parent == tmp_path / "histories" / "me" and unknown.history.name.startswith("unnamed-")
    monkeypatch.setenv("HERMES_JUPYTER_HISTORY_DIR", "relative")  # the environment, relative to the kernel's folder
    assert locate(Shell(), "k", cwd=kernel_cwd).history.parent == kernel_cwd / "relative"
    seen = tmp_path / "seen"
    seen.mkdir()
    (seen / "x.ipynb").write_text("{}")
    beside = locate(Shell(__vsc_ipynb_file__=str(seen / "x.ipynb")), "k", cwd=kernel_cwd)
    assert beside.history == seen / "x.hermes.json"  # a notebook the kernel sees keeps its history beside it


def test_a_kernel_told_a_path_its_machine_lacks_says_so_once_and_resumes_after_a_restart(tmp_path):
    kernels, server = tmp_path / "kernels", tmp_path / "server"  # server/ is never created: "another machine"
    kernels.mkdir()
    env = {"JPY_SESSION_NAME": str(server / "team" / "analysis.ipynb"), "HERMES_JUPYTER_HISTORY_DIR": ""}
    setup = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n%config Hermes.plain = True"
    k = Kernel(kernels, env=env)
    try:
        loaded = k.run(setup)
        notices = [line for line in loaded.stdout.splitlines() if line.startswith("[hermes]")]
        assert len(notices) == 1 and "cannot see the folder of its notebook" in notices[0], loaded.stdout
        answer = k.run("%hermes --wait remember alpha")
        assert "I will remember" in answer.stdout and "cannot see" not in answer.stdout  # said once, not per turn
        config = k.run("%hermes /config").stdout
        assert f"working in {kernels}" in config
    finally:
        k.close()
    histories = list((kernels / UNNAMED_DIR).glob("analysis-*.hermes.json"))
    assert len(histories) == 1 and "remember alpha" in histories[0].read_text()
    assert not server.exists()
    k = Kernel(kernels, env=env)
    try:
        resumed = k.run(setup).stdout
        assert f"resuming session 'main' (1 earlier turns) from {histories[0]}" in resumed
    finally:
        k.close()
    assert json.loads(histories[0].read_text())["sessions"]["main"]["turns"][0]["prompt"] == "remember alpha"


def test_config_names_no_loopback_server_of_the_kernel(tmp_path):
    k = Kernel(tmp_path)
    try:
        config = k.run(f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n%hermes /config")
        assert "scripted" in config.stdout
        assert not LOOPBACK_URL.findall(config.stdout), config.stdout
    finally:
        k.close()
