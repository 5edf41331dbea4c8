"""History beside the notebook, in real kernels: resumed after a restart, never losing a prompt."""
from __future__ import annotations

import json
from pathlib import Path

from hermes_jupyter.safety.sanitize import drop_unanswered

from .kernel import Kernel

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n%config Hermes.plain = True"
SECRET = "sk-proj-" + "Zq7" * 12


def start(tmp_path, **env):
    # Headless kernels can't tell their notebook: name it, as a user would (see test_privacy.py).
    if "JPY_SESSION_NAME" not in env:
        env["HERMES_JUPYTER_NOTEBOOK"] = "nb.ipynb"
    kernel = Kernel(tmp_path, env=env)
    setup = kernel.run(SETUP)
    assert setup.reply["status"] == "ok", setup.error
    return kernel, setup


def user_prompts(kernel, session="main"):
    cell = kernel.run("import hermes_jupyter as h\nprint([m['content'] for m in "
                      f"h.get_engine().session({session!r}).messages if m['role'] == 'user'])")
    return cell.stdout.strip()


def test_a_restarted_kernel_resumes_the_notebooks_session(tmp_path):
    notebook = tmp_path / "analysis.ipynb"
    kernel, _ = start(tmp_path, JPY_SESSION_NAME=str(notebook))
    kernel.run("%hermes --wait -s research remember alpha")
    kernel.close()
    history = tmp_path / "analysis.hermes.json"
    assert history.exists()  # named after the notebook, beside it

    kernel, setup = start(tmp_path, JPY_SESSION_NAME=str(notebook))
    try:
        assert "resuming session 'research' (1 earlier turns) from analysis.hermes.json" in setup.stdout
        kernel.run("%hermes --wait remember beta")
        assert user_prompts(kernel, "research") == "['remember alpha', 'remember beta']"
        config = kernel.run("%hermes /config")
        assert "history           analysis.hermes.json\n" in config.stdout  # relative to the notebook's folder
    finally:
        kernel.close()
    saved = json.loads(history.read_text())
    assert saved["current"] == "research"
    turns = saved["sessions"]["research"]["turns"]
    assert [t["prompt"] for t in turns] == ["remember alpha", "remember beta"]
    assert [t["status"] for t in turns] == ["done", "done"]


def test_failed_and_cancelled_turns_keep_the_prompt(tmp_path):
    kernel, _ = start(tmp_path)
    try:
        kernel.run("%hermes --wait fail auth")
        kernel.run("%hermes -o t gated story")  # held at its gate: still running when cancelled
        kernel.run("t.wait_for(lambda: len(t.text) > 50, 30); t.cancel(); t.wait(10)")
    finally:
        kernel.close()
    saved = json.loads((tmp_path / "nb.hermes.json").read_text())
    session = saved["sessions"]["main"]
    turns = {t["prompt"]: t for t in session["turns"]}
    assert turns["fail auth"]["status"] == "failed" and turns["fail auth"]["error"]["kind"] == "auth"
    assert turns["gated story"]["status"] == "cancelled" and len(turns["gated story"]["answer"]) > 50
    kept = "\n".join(m["content"] for m in session["messages"] if m["role"] == "user")
    sent = "\n".join(m["content"] for m in drop_unanswered(session["messages"]) if m["role"] == "user")
    # Both prompts were asked, so both stay in the conversation, as in their turns' records (above).
    # The failed one is not sent to the model again; the cancelled one is, with its partial answer.
    assert "fail auth" in kept and "fail auth" not in sent and "gated story" in sent


def test_secrets_never_reach_the_history_file(tmp_path):
    kernel, _ = start(tmp_path, MY_SERVICE_API_KEY="configured-value-1234567")
    try:
        kernel.run(f"%hermes --wait remember {SECRET} and configured-value-1234567 and "
                   "GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    finally:
        kernel.close()
    text = (tmp_path / "nb.hermes.json").read_text()
    for secret in (SECRET, "configured-value-1234567", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"):
        assert secret not in text
    assert "[REDACTED]" in text


def test_a_corrupt_history_is_moved_aside_and_the_user_goes_on(tmp_path):
    (tmp_path / "nb.hermes.json").write_text("{ not json")
    kernel, setup = start(tmp_path)
    try:
        assert "corrupt" in setup.stderr.lower() or "moved" in setup.stderr.lower()
        kernel.run("%hermes --wait remember after the crash")
    finally:
        kernel.close()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    saved = json.loads((tmp_path / "nb.hermes.json").read_text())
    assert saved["sessions"]["main"]["turns"][0]["prompt"] == "remember after the crash"


def test_sessions_can_be_renamed_and_deleted(tmp_path):
    kernel, _ = start(tmp_path)
    try:
        kernel.run("%hermes --wait -s draft remember one")
        kernel.run("%hermes --wait -s keep remember two")
        assert "is now 'final'" in kernel.run("%hermes /rename draft final").stdout
        assert "deleted session 'keep'" in kernel.run("%hermes /delete keep").stdout
        listing = kernel.run("%hermes /sessions").stdout
        assert "final" in listing and "keep" not in listing
    finally:
        kernel.close()
    saved = json.loads((tmp_path / "nb.hermes.json").read_text())
    assert set(saved["sessions"]) == {"final"}


def test_export_as_markdown_and_html_is_redacted(tmp_path):
    kernel, _ = start(tmp_path)
    try:
        kernel.run(f"%hermes --wait run echo {SECRET}")
        kernel.run("%hermes /title Checking the echo tool")
        md = kernel.run("%hermes /export md")
        html = kernel.run(f"%hermes /export html {tmp_path / 'out.html'}")
    finally:
        kernel.close()
    assert "exported session 'main'" in md.stdout and html.reply["status"] == "ok"
    text = (tmp_path / "nb-main.md").read_text()
    assert text.startswith("# Checking the echo tool")
    assert "tool `terminal`" in text and "tool-output-ok" in text and "The tool said" in text
    assert SECRET not in text and "[REDACTED]" in text
    page = (tmp_path / "out.html").read_text()
    assert "<h1>Checking the echo tool</h1>" in page and SECRET not in page


def test_attachments_reach_the_model_and_the_history(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    kernel, _ = start(tmp_path)
    try:
        missing = kernel.run("%hermes --attach nope.csv remember this")
        assert missing.stderr.startswith("UsageError: Cannot attach 'nope.csv'")
        kernel.run("%hermes --wait --attach data.csv remember this")
        sent = kernel.run("import hermes_jupyter as h\nprint(h.get_engine().session().messages[0]['content'])")
    finally:
        kernel.close()
    assert "[Attached files: data.csv]" in sent.stdout  # relative to the notebook's folder (safety/paths.py)
    saved = json.loads((tmp_path / "nb.hermes.json").read_text())
    turns = saved["sessions"]["main"]["turns"]
    assert len(turns) == 1 and turns[0]["attachments"] == ["data.csv"]


def test_a_history_that_cannot_be_written_is_reported_and_the_turn_still_works(tmp_path):
    kernel, _ = start(tmp_path)
    try:
        # a full disk (root ignores file permissions, so the failure is injected)
        kernel.run("import errno, hermes_jupyter.history.store as store\n"
                   "def full(self, record): raise OSError(errno.ENOSPC, 'No space left on device')\n"
                   "store.HistoryStore.save_session = full")
        cell = kernel.run("%hermes --wait remember this")
        assert "I will remember: remember this" in cell.stdout
        assert "[hermes] history not saved to" in cell.stderr
        assert cell.stderr.count("history not saved") == 1  # said once, not on every save
        assert "history error" in kernel.run("%hermes /config").stdout
    finally:
        kernel.close()
