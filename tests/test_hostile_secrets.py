"""No secret at rest: 90 vendor shapes in 17 families plus a structural sample (one shape of each of the 26
families of tests/secret_shapes.py, a different one in each place), planted in eight places, found in no file.

The corpus (tests/secrets_corpus.py) is built at run time. Each place gets its own secrets, so a
leak says where it came from: the prompt, an answer streamed into the live view, an answer in
plain text (--plain), the model's reasoning in plain text, a tool's output, an attached file read
with read_file (line-numbered), the kernel's environment (printed by a tool), and session titles
(/title echoes the one it sets). A notebook runs them under nbclient against the scripted model,
recording (--record-to) and exporting (/export md, html); then every place the extension writes is
read back: the saved notebook (outputs and widget state), the history file, the recording and both
exports.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from hermes_jupyter.safety.redact import StreamRedactor, redact_obj, redact_text

from .secret_shapes import DEV, HELD_OUT
from .secret_shapes import build as build_structural
from .secrets_corpus import SHAPES, Planted, corpus, families

PLACES = ("prompt", "streamed", "plain", "reasoning", "tool", "attachment", "environment", "title")


def block(planted: list[Planted]) -> str:
    return "\n".join(p.line for p in planted)


def leaks(text: str, planted: list[Planted]) -> list[str]:
    return [p.shape for p in planted if p.leaked_in(text)]


def test_the_corpus_is_big_enough():
    assert len(SHAPES) >= 60 and len(families()) >= 13
    assert len({s.name for s in SHAPES}) == len(SHAPES)


@pytest.mark.parametrize("context", ["line", "read_file", "cat -n", "json", "markdown"])
def test_every_shape_is_redacted_in_every_context(context):
    planted = corpus(f"unit-{context}")
    text = block(planted)
    if context == "read_file":  # hermes' read_file numbers lines: "83|api_key: ..."
        text = "\n".join(f"{n}|{line}" for n, line in enumerate(text.splitlines(), 83))
        redacted = redact_text(json.dumps({"content": text, "total_lines": 80}))
    elif context == "json":  # a tool result as JSON text, redacted value by value
        redacted = json.dumps(redact_obj({"output": text, "exit_code": 0}))
    elif context == "markdown":
        redacted = redact_text(f"Here you go:\n\n```\n{text}\n```\n")
    elif context == "cat -n":
        redacted = redact_text("\n".join(f"{n:6}\t{line}" for n, line in enumerate(text.splitlines(), 1)))
    else:
        redacted = redact_text(text)
    assert leaks(redacted, planted) == []


@pytest.mark.parametrize("size", [1, 3, 4, 7, 13, 64])
def test_a_streamed_secret_is_never_split(size):
    """The text view releases what is safe to show; glued back together it holds no secret."""
    planted = corpus(f"stream-{size}")
    text = f"Here they are:\n{block(planted)}\nThat is all."
    stream = StreamRedactor(redact=redact_text)
    shown = "".join(stream.feed(text[i:i + size]) for i in range(0, len(text), size)) + stream.flush()
    assert leaks(shown, planted) == []


# ----- the notebook -----------------------------------------------------------------------------

def script(planted: dict[str, list[Planted]]) -> dict:
    env_names = " ".join(f"HJ_PLANT_{i}" for i in range(len(planted["environment"])))
    return {"model": "scripted-secrets", "chunk_size": 5, "rules": [
        {"match": "PLANT-PROMPT", "steps": [{"text": "Noted."}]},
        {"match": "PLANT-STREAMED", "steps": [{"text": f"Your keys:\n{block(planted['streamed'])}\nDone."}]},
        {"match": "PLANT-PLAIN", "steps": [{"text": f"Your keys:\n{block(planted['plain'])}\nDone."}]},
        {"match": "PLANT-REASONING", "steps": [
            {"reasoning": f"The keys are:\n{block(planted['reasoning'])}\n", "text": "I thought about them."}]},
        {"match": "PLANT-TOOL", "steps": [
            {"tool_calls": [{"name": "terminal", "arguments": {"command": "cat tool_secrets.txt"}}]},
            {"text": "I read the file."}]},
        {"match": "PLANT-ATTACH", "steps": [
            {"tool_calls": [{"name": "read_file", "arguments": {"path": "creds.txt"}}]},
            {"text": "I read the attachment."}]},
        {"match": "PLANT-ENV", "steps": [
            {"tool_calls": [{"name": "terminal", "arguments": {"command": f"printenv {env_names}"}}]},
            {"text": "I printed the environment."}]},
        {"default": True, "steps": [{"text": "ok"}]},
    ]}


def cells(planted: dict[str, list[Planted]], script_path: Path) -> list[str]:
    wait = "%hermes --wait --record-to planted.hermes-recording.yaml"
    return [
        ("%load_ext hermes_jupyter\n"
        "%config Hermes.notebook = 'planted.ipynb'\n"
        f"%config Hermes.model = 'scripted:{script_path}'\n"
        "%config Hermes.approvals = 'deny'"),
        f"%{wait}\nPLANT-PROMPT please keep these:\n{block(planted['prompt'])}",
        f"{wait} PLANT-STREAMED",
        f"{wait} --plain PLANT-PLAIN",
        f"{wait} --plain PLANT-REASONING",
        f"{wait} --plain PLANT-TOOL",
        f"{wait} --attach creds.txt PLANT-ATTACH",
        f"{wait} --plain PLANT-ENV",
        "\n".join(f"%hermes /title {p.line}" for p in planted["title"]),
        "%hermes /export md planted.md\n%hermes /export html planted.html",
    ]


def structural_sample(place: str) -> list[Planted]:
    """One shape of each structural family, rotating with the place, so the eight places cover most shapes."""
    k = PLACES.index(place)
    by_family: dict[str, list] = {}
    for shape in DEV + HELD_OUT:
        by_family.setdefault(shape.family, []).append(shape)
    return build_structural([shapes[k % len(shapes)] for shapes in by_family.values()], f"notebook-{place}")


def missed_by_the_functions(planted: list[Planted]) -> set[str]:
    """Shapes redact_text itself misses (held-out shapes only: the development half is at 100 %)."""
    return {p.shape for p in planted if p.leaked_in(redact_text(p.line))}


def run_notebook(folder: Path, monkeypatch) -> dict[str, list[Planted]]:
    planted = {place: corpus(place) + structural_sample(place) for place in PLACES}
    # A title is typed on one line magic, where IPython would expand {expression} and $name.
    planted["title"] = [p for p in planted["title"] if not any(c in p.line for c in "\n{$")]
    (folder / "tool_secrets.txt").write_text(block(planted["tool"]) + "\n")
    (folder / "creds.txt").write_text(block(planted["attachment"]) + "\n")
    for i, p in enumerate(planted["environment"]):
        monkeypatch.setenv(f"HJ_PLANT_{i}", p.line)  # the kernel inherits the environment
    script_path = folder / "secrets.json"
    script_path.write_text(json.dumps(script(planted)))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells(planted, script_path)]
    NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(folder)}}).execute()
    nbformat.write(nb, folder / "planted.ipynb")
    return planted


def sinks(folder: Path) -> dict[str, str]:
    """Every file the extension wrote (or left in the notebook), as searchable text."""
    nb = json.loads((folder / "planted.ipynb").read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    recording = yaml.safe_load((folder / "planted.hermes-recording.yaml").read_text())
    return {
        "notebook outputs": json.dumps(outputs, ensure_ascii=False),
        "widget state": json.dumps(nb["metadata"].get("widgets", {}), ensure_ascii=False),
        "history": json.dumps(json.loads((folder / "planted.hermes.json").read_text()), ensure_ascii=False),
        "recording": json.dumps(recording, ensure_ascii=False),
        "export md": (folder / "planted.md").read_text(),
        "export html": html.unescape((folder / "planted.html").read_text()),
    }


def leak_table(folder: Path, planted: dict[str, list[Planted]]) -> dict[str, dict[str, list[str]]]:
    return {sink: {place: leaks(text, planted[place]) for place in PLACES}
            for sink, text in sinks(folder).items()}


def test_no_secret_reaches_the_disk(tmp_path, monkeypatch):
    planted = run_notebook(tmp_path, monkeypatch)
    table = leak_table(tmp_path, planted)
    print("\nleaks (sink: place counts), of", len(SHAPES), "shapes per place")
    for sink, by_place in table.items():
        print(f"  {sink:17}", {place: len(found) for place, found in by_place.items()})
    # The turns really ran: each place's marker reached the history.
    history = (tmp_path / "planted.hermes.json").read_text()
    assert all(f"PLANT-{m}" in history for m in ("PROMPT", "STREAMED", "PLAIN", "REASONING", "TOOL", "ATTACH", "ENV"))
    assert len(planted["title"]) >= 60
    # Every place redacts as the functions do: a leak is only a shape they miss alone (a held-out miss,
    # reported by tests/test_redact_structure.py), never one a place lets through on its own.
    expected = {place: missed_by_the_functions(found) for place, found in planted.items()}
    assert {name for place in expected.values() for name in place} <= {s.name for s in HELD_OUT}
    assert {sink: {p: set(f) - expected[p] for p, f in by_place.items() if set(f) - expected[p]}
            for sink, by_place in table.items()} == {sink: {} for sink in table}
