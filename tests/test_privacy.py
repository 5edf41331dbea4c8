"""A notebook never continues another notebook's conversation.

Headless runners (papermill, nbclient) and gateway kernels don't tell the kernel which notebook
it runs. Two such notebooks in one folder must keep separate conversations: the second's first
request to the model holds none of the first's prompts. Paths shown to the user are ones they
can find, and error hints name the user's endpoint, never the extension's own proxy.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hermes_jupyter import Engine
from hermes_jupyter import events as ev
from hermes_jupyter.history.paths import UNNAMED_DIR, found_notebook, locate
from hermes_jupyter.models.scripted import ScriptedServer

from .kernel import Kernel

SCRIPT = {"model": "scripted-privacy", "rules": [{"default": True, "steps": [{"text": "Noted: {prompt}"}]}]}


def notebook(server: ScriptedServer, secret_prompt: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext hermes_jupyter\n%config Hermes.plain = True"),
        nbformat.v4.new_code_cell(f"%hermes --wait --base-url {server.base_url} --model {server.model} {secret_prompt}"),
    ]
    return nb


def all_text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def prompts_sent(server: ScriptedServer, since: int) -> str:
    """Everything the model was sent since request number `since`, as one text."""
    return json.dumps([r.get("messages") for r in server.requests[since:]])


@pytest.fixture
def server():
    with ScriptedServer(SCRIPT) as s:
        yield s


def run_with_papermill(path: Path, out: Path) -> nbformat.NotebookNode:
    import papermill

    papermill.execute_notebook(str(path), str(out), cwd=str(path.parent), kernel_name="python3",
                               progress_bar=False, log_output=False)
    return nbformat.read(out, as_version=4)


def run_with_nbclient(path: Path, out: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, out)
    return nb


@pytest.mark.parametrize("runner", [run_with_papermill, run_with_nbclient], ids=["papermill", "nbclient"])
def test_two_headless_notebooks_in_one_folder_keep_separate_conversations(tmp_path, server, runner):
    first, second = tmp_path / "ui.ipynb", tmp_path / "admin.ipynb"
    nbformat.write(notebook(server, "the ui launch code is PELICAN-42"), first)
    nbformat.write(notebook(server, "summarise our conversation so far"), second)

    done_first = runner(first, tmp_path / "ui.out.ipynb")
    assert "Noted: the ui launch code is PELICAN-42" in all_text(done_first)
    seen = len(server.requests)
    done_second = runner(second, tmp_path / "admin.out.ipynb")
    # The second notebook's requests carry none of the first one's conversation...
    assert seen < len(server.requests)
    assert "PELICAN-42" not in prompts_sent(server, seen)
    # ...nothing was resumed, and each run said once, in one line, where its history goes and how to name it.
    for done in (done_first, done_second):
        text = all_text(done)
        assert "resuming session" not in text
        notices = [line for line in text.splitlines() if "cannot tell which notebook" in line]
        assert len(notices) == 1, text
        assert "%config Hermes.notebook = 'NAME.ipynb'" in notices[0]
        assert str(tmp_path / UNNAMED_DIR) in notices[0]  # an absolute path the user can find
    files = sorted((tmp_path / UNNAMED_DIR).glob("unnamed-*.hermes.json"))
    assert len(files) == 2  # one per kernel, never a shared file
    assert not (tmp_path / "hermes-history.hermes.json").exists()
    assert sum("PELICAN-42" in f.read_text() for f in files) == 1


def test_a_notebook_run_from_inside_another_notebooks_kernel_does_not_take_itself_for_it(tmp_path, server):
    """`!papermill b.ipynb` (or nbclient in a cell) in notebook a's kernel: the kernel it starts inherits a's
    JPY_SESSION_NAME. It must not resume a's conversation nor write to a's history (found by a newcomer)."""
    first, second = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    nbformat.write(notebook(server, "my secret plan is ALPHA"), first)
    nbformat.write(notebook(server, "summarise our conversation so far"), second)
    # a runs in a kernel Jupyter gave JPY_SESSION_NAME, as jupyter_server does: a's history goes beside it.
    nb = nbformat.read(first, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(
        env={**os.environ, "JPY_SESSION_NAME": str(first)})
    assert "Noted: my secret plan is ALPHA" in all_text(nb)
    assert "ALPHA" in (tmp_path / "a.hermes.json").read_text()
    before = (tmp_path / "a.hermes.json").read_text()
    seen = len(server.requests)
    # b is run by papermill in a process that has a's environment, as a cell's `!papermill` does.
    run = textwrap.dedent(f"""
        import papermill
        papermill.execute_notebook({str(second)!r}, {str(tmp_path / "b.out.ipynb")!r}, cwd={str(tmp_path)!r},
                                   kernel_name="python3", progress_bar=False, log_output=False)
    """)
    subprocess.run([sys.executable, "-c", run], env={**os.environ, "JPY_SESSION_NAME": str(first)}, check=True,
                   timeout=180)
    assert seen < len(server.requests)
    assert "ALPHA" not in prompts_sent(server, seen)
    text = all_text(nbformat.read(tmp_path / "b.out.ipynb", as_version=4))
    assert "resuming session" not in text and "cannot tell which notebook" in text
    assert (tmp_path / "a.hermes.json").read_text() == before


def test_jpy_session_name_counts_only_when_given_to_this_kernel(tmp_path, monkeypatch):
    """The launcher jupyter_client names in JPY_PARENT_PID tells a given variable from an inherited one."""
    (tmp_path / "a.ipynb").write_text("{}")
    monkeypatch.delenv("HERMES_JUPYTER_NOTEBOOK", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "a.ipynb"))

    class Shell:
        user_ns = {"__session__": str(tmp_path / "a.ipynb")}

    def launcher(**env: str) -> subprocess.Popen:
        clean = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                                env={**clean, **env})

    cases = {  # the launcher's own JPY_SESSION_NAME -> is the notebook found?
        None: True,  # jupyter_server: gives the variable, does not hold it
        str(tmp_path / "a.ipynb"): False,  # a notebook's kernel running papermill or nbclient: inherited
        str(tmp_path / "other.ipynb"): True,  # a server that happens to hold another value
    }
    for held, expected in cases.items():
        proc = launcher(**({"JPY_SESSION_NAME": held} if held else {}))
        try:
            monkeypatch.setenv("JPY_PARENT_PID", str(proc.pid))
            found = found_notebook(Shell())
            assert (found is not None) == expected, held
            if found is not None:
                assert found.path == tmp_path / "a.ipynb"
        finally:
            proc.communicate(b"", timeout=10)
    # No launcher to ask (none named, or one this kernel cannot see): the variable is trusted.
    for pid in ("", "999999999", "not-a-pid"):
        monkeypatch.setenv("JPY_PARENT_PID", pid)
        assert found_notebook(Shell()) is not None


def test_naming_the_notebook_later_moves_the_history_beside_it_and_resumes(tmp_path, server):
    k = Kernel(tmp_path)
    try:
        loaded = k.run("%load_ext hermes_jupyter\n%config Hermes.plain = True")
        assert "cannot tell which notebook" in loaded.stdout
        footer = k.run(f"%hermes --wait --base-url {server.base_url} --model {server.model} first question")
        assert "Noted: first question" in footer.stdout
        named = k.run("%config Hermes.notebook = 'analysis.ipynb'")
        assert named.error is None, named.error
        config = k.run("%hermes /config").stdout
        assert re.search(r"history\s+analysis\.hermes\.json\n", config), config  # relative to the notebook's folder
        sessions = k.run("%hermes /sessions").stdout
        assert "history: analysis.hermes.json" in sessions
        saved = json.loads((tmp_path / "analysis.hermes.json").read_text())
        assert "first question" in json.dumps(saved["sessions"]["main"]["messages"])
    finally:
        k.close()
    # A new kernel that knows its notebook resumes it.
    k = Kernel(tmp_path)
    try:
        resumed = k.run("%config Hermes.notebook = 'analysis.ipynb'\n%load_ext hermes_jupyter")
        assert "resuming session 'main' (1 earlier turns) from analysis.hermes.json" in resumed.stdout
    finally:
        k.close()


def test_locations_are_paths_the_user_can_find(tmp_path):
    class Shell:
        user_ns: dict = {}
    unknown = locate(Shell(), "k1", cwd=tmp_path)
    assert not unknown.known and unknown.history.parent == tmp_path.resolve() / UNNAMED_DIR
    assert Path(unknown.label(unknown.history)).is_absolute()
    assert unknown.recording.name.endswith(".hermes-recording.yaml") and unknown.recording.parent == unknown.history.parent

    # A notebook the frontend reports is kept beside only where this kernel sees it.
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.ipynb").write_text("{}")

    class Named:
        user_ns = {"__vsc_ipynb_file__": str(tmp_path / "sub" / "x.ipynb")}
    known = locate(Named(), "k2", cwd=tmp_path)
    assert known.history == tmp_path / "sub" / "x.hermes.json"
    assert known.label(known.history) == "x.hermes.json"
    assert known.label(known.recording) == "x.hermes-recording.yaml"


def test_a_recording_turn_against_an_unreachable_provider_names_the_providers_url(tmp_path):
    provider = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    engine = Engine()
    turn = engine.submit("hello", cwd=tmp_path, base_url=provider, model="gpt-test",
                         record_to=str(tmp_path / "r.hermes-recording.yaml"))
    assert turn.wait(120)
    assert turn.status == "failed"
    error = next(e for e in turn.events if isinstance(e, ev.Error))
    assert turn.config is not None and turn.config.base_url != provider  # the turn did go through the proxy
    proxy = turn.config.base_url
    shown = error.message + " " + error.hint
    assert proxy not in shown
    assert provider in error.hint, error


def test_naming_the_notebook_later_keeps_the_files_earlier_conversation(tmp_path, server):
    """Once, the file's 'main' already held another kernel's conversation; naming the notebook
    later replaced its messages with this kernel's, and the unnamed file stayed."""
    run = f"%hermes --wait --base-url {server.base_url} --model {server.model}"
    k = Kernel(tmp_path)
    try:
        k.run("%config Hermes.notebook = 'x.ipynb'\n%load_ext hermes_jupyter\n%config Hermes.plain = True")
        assert "Noted: earlier X conversation" in k.run(f"{run} earlier X conversation").stdout
    finally:
        k.close()
    k = Kernel(tmp_path)
    try:
        k.run("%load_ext hermes_jupyter\n%config Hermes.plain = True")
        k.run(f"{run} unnamed first")
        assert len(list((tmp_path / UNNAMED_DIR).glob("unnamed-*.hermes.json"))) == 1
        named = k.run("%config Hermes.notebook = 'x.ipynb'")
        assert "[hermes] session 'main' in x.hermes.json also holds turns that this kernel did not run" in named.stderr
        k.run(f"{run} after naming")
    finally:
        k.close()
    prompts = ["earlier X conversation", "unnamed first", "after naming"]
    saved = json.loads((tmp_path / "x.hermes.json").read_text())["sessions"]["main"]
    assert [t["prompt"] for t in saved["turns"]] == prompts
    assert [m["content"] for m in saved["messages"] if m["role"] == "user"] == prompts
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"] * 3
    assert not list((tmp_path / UNNAMED_DIR).glob("unnamed-*.hermes.json"))  # moved: it is all in x.hermes.json
    # A new kernel on the notebook resumes all three turns and sends them.
    k = Kernel(tmp_path)
    try:
        k.run("%config Hermes.notebook = 'x.ipynb'\n%load_ext hermes_jupyter\n%config Hermes.plain = True")
        seen = len(server.requests)
        k.run(f"{run} one more")
        sent = [m["content"] for m in server.requests[seen]["messages"] if m["role"] == "user"]
        assert sent[-4:] == [*prompts, "one more"]
    finally:
        k.close()
