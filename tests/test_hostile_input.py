"""Bad input gets a one-line message and loses nothing, in a real kernel.

A prompt with a lone surrogate (half an emoji from a bad paste), exports to a folder that does
not exist or outside the notebook's folder, attachments from outside it, and a history file
corrupted while the kernel runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .kernel import fresh_kernel_fixtures

SETUP = ("%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:demo'\n"
         "%config Hermes.notebook = 'nb.ipynb'")
BAD = 'bad = "half an emoji \\ud83d here"\n'


# The notebook in a subfolder of tmp_path: paths outside the notebook's folder stay inside tmp_path.
shared_kernel, kernel = fresh_kernel_fixtures(SETUP, folder="notebooks")


def one_line_usage_error(cell) -> str:
    assert cell.error is None and cell.reply["status"] == "error", cell.error  # a UsageError, no traceback
    lines = cell.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: "), cell.stderr
    return lines[0]


def turns(kernel) -> list[dict]:
    history = json.loads((kernel.cwd / "nb.hermes.json").read_text())
    return history["sessions"]["main"]["turns"]


def test_a_prompt_with_a_lone_surrogate_runs_and_is_kept(kernel):
    widget = kernel.run(BAD + "%hermes --wait hello {bad}", timeout=120)
    assert widget.reply["status"] == "ok" and widget.error is None and not widget.stderr, widget.stderr
    shown = json.dumps([m["content"] for m in widget.outputs], ensure_ascii=False)
    assert "cannot be encoded" in shown  # said once, in the turn's own output
    plain = kernel.run(BAD + "%hermes --wait --plain hello again {bad}", timeout=120)
    assert plain.reply["status"] == "ok" and not plain.stderr, plain.stderr
    assert plain.stdout.count("[warn] the prompt held characters that cannot be encoded") == 1
    assert [t["prompt"] for t in turns(kernel)] == ["hello half an emoji \ufffd here",
                                                    "hello again half an emoji \ufffd here"]
    export = kernel.run("%hermes /export md")
    assert export.reply["status"] == "ok", export.error
    assert "hello half an emoji \ufffd here" in (kernel.cwd / "nb-main.md").read_text()


def test_export_to_a_missing_folder_is_one_line_and_writes_nothing(kernel):
    kernel.run("%hermes --wait --plain hello")
    before = (kernel.cwd / "nb.hermes.json").read_text()
    line = one_line_usage_error(kernel.run("%hermes /export md no_such_dir/out.md"))
    assert "no_such_dir does not exist" in line and "Nothing was written" in line
    assert not (kernel.cwd / "no_such_dir").exists()
    assert (kernel.cwd / "nb.hermes.json").read_text() == before
    again = kernel.run("%hermes /export md out.md")  # and the session is still there to export
    assert again.reply["status"] == "ok" and "hello" in (kernel.cwd / "out.md").read_text()


@pytest.mark.parametrize("target", ["../../evil.html", "/tmp/hermes-evil.html", "nb.ipynb", "nb.hermes.json", "."])
def test_export_stays_in_the_notebooks_folder_and_never_replaces_it(kernel, target):
    kernel.run("%hermes --wait --plain hello")
    (kernel.cwd / "nb.ipynb").write_text("{}")
    before = {p: p.read_text() for p in (kernel.cwd / "nb.ipynb", kernel.cwd / "nb.hermes.json")}
    one_line_usage_error(kernel.run(f"%hermes /export html {target}"))
    assert not (kernel.cwd.parent.parent / "evil.html").exists() and not Path("/tmp/hermes-evil.html").exists()
    assert {p: p.read_text() for p in before} == before


def test_attachments_come_from_the_notebooks_folder_only(kernel, tmp_path):
    (tmp_path / "outside.txt").write_text("not for the model")
    (kernel.cwd / "link.txt").symlink_to(tmp_path / "outside.txt")
    (kernel.cwd / "inside.txt").write_text("fine")
    for spec in ("/etc/shadow", "../outside.txt", "link.txt", "sub/../../outside.txt"):
        line = one_line_usage_error(kernel.run(f"%hermes --attach {spec} read it"))
        assert f"Cannot attach {spec!r}: it is outside the notebook's folder" in line and "Nothing was sent" in line
    assert not (kernel.cwd / "nb.hermes.json").exists() or turns(kernel) == []  # nothing was sent
    kernel.run("%hermes --wait --plain --attach inside.txt read it")
    assert turns(kernel)[-1]["attachments"] == ["inside.txt"]  # recorded relative to the folder


def test_a_history_corrupted_while_the_kernel_runs_is_moved_aside_and_said_in_the_cell(kernel):
    kernel.run("%hermes --wait --plain hello")
    (kernel.cwd / "nb.hermes.json").write_text("{ this is not json")
    cell = kernel.run("%hermes --wait --plain hello again")
    assert cell.reply["status"] == "ok"
    notice = [line for line in cell.stderr.splitlines() if "could not be read" in line]
    assert len(notice) == 1 and "moved to" in notice[0], cell.stderr
    aside = list(kernel.cwd.glob("nb.hermes.corrupt-*.json"))
    assert aside and aside[0].read_text() == "{ this is not json"  # never deleted
    assert [t["prompt"] for t in turns(kernel)] == ["hello", "hello again"]  # this kernel's turns kept
