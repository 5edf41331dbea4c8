"""The demo notebooks in notebooks/: each runs top to bottom on the scripted model.

Each notebook runs once per runner that adds something:

* nbval, strict (not --nbval-lax): every output compared with the one saved in the notebook.
  That is the `notebooks` testpath of pyproject.toml, so `python -m pytest` runs the command of
  notebooks/README.md itself; `test_nbval_compares_the_saved_outputs` keeps it configured.
* papermill (nbclient, as users and CI run notebooks headless), on a copy the demos command made:
  no errors, the point of each notebook in its outputs, the history beside the notebook.
* nbconvert --execute, the CLI of the README's first command, on the quickstart only: it is
  nbclient again, so running every notebook through it proved nothing papermill does not.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from hermes_jupyter.demos import copy_demos

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))

# What a notebook must show once run: its point, in a few strings. (Every notebook is also
# checked for errors, failed turns and widget reprs.)
KEY_OUTPUTS = {
    "01-quickstart": ["answering through a **scripted model**", "You're **Ada**",
                      "assistant: Nice to meet you, Ada!", "01-quickstart.hermes.json"],
    "02-approvals-and-clarify": ["denied because nobody can answer in this run",
                                 "allowed (once) by the approval policy 'allow'", "-> allowed (once) by you",
                                 "-> answered: Line chart", "scratch/notes.txt"],
    "03-data-science": ["> notebook_describe_variable name: df\n", "2.4 times as many",
                        "-> allowed (once) by the approval policy 'allow'", "correlation with temp_c: 0.96",
                        "[figure shown: image/png]", '<img src="data:image/png;base64,',
                        "Name: growth_pct, dtype: float64"],
    "04-sessions-and-history": ["* naming", "deleted session 'naming'", "key in the file: False",
                                "My API key is [REDACTED], keep it safe.",
                                "resuming session 'report' (3 earlier turns)"],
    "05-your-own-model": ["OpenAI-compatible endpoint (%config)", "Rayleigh scattering"],
    "06-record-and-replay": ["key in the file: False", "session 'replay' · model stand-in-model",
                             "Replay drift at the prompt 'Add up 2 7 1 8.' (step 0)"],
    "07-agent-code-to-cells": ["Python code above: %hermes /cells 1 puts it into new cells",
                               "2 cells from session 'main', turn 1 sent as new cells", "mean 10.00, stdev 0.27",
                               "(skipped: 1 bash block)", "{'north': 12, 'south': 21}",
                               "1 with a secret replaced by [REDACTED]: fill it in"],
}


def copy_notebook(name: str, folder: Path) -> Path:
    """The notebook and the scripts it loads, in a folder of its own (where its history goes), copied
    as a user gets them: by the demos command (tests/test_install.py does it from the wheel)."""
    copy_demos(folder)
    return folder / f"{name}.ipynb"


def texts(nb) -> str:
    """Everything the executed notebook shows as text: streams, text/plain and HTML."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                parts.append(out["text"])
            elif "data" in out:
                parts.extend(v for k, v in out["data"].items() if k in ("text/plain", "text/html"))
    return "\n".join(parts)


def check(name: str, nb) -> None:
    errors = [out for cell in nb.cells for out in cell.get("outputs", []) if out["output_type"] == "error"]
    assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    shown = texts(nb)
    for expected in KEY_OUTPUTS.get(name, []):
        assert expected in shown, f"{name}: {expected!r} is not in the outputs"
    assert "VBox(" not in shown and "HBox(" not in shown, f"{name}: a widget repr was recorded"
    assert "[error:" not in shown and "Error (" not in shown, f"{name}: a turn failed"
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("# NBVAL_SKIP"):
            assert "skip-execution" in cell.metadata.get("tags", []), f"{name}: tag the NBVAL_SKIP cell"
            assert not cell.get("outputs"), f"{name}: a cell that needs a real model was run"


@pytest.mark.parametrize("name", NAMES)
def test_runs_under_papermill(name, tmp_path):
    import papermill

    notebook = copy_notebook(name, tmp_path)
    out = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(str(notebook), str(out), cwd=str(tmp_path), progress_bar=False,
                               execution_timeout=120)
    check(name, nbformat.read(out, as_version=4))
    assert (tmp_path / f"{name}.hermes.json").exists()  # the history went beside the notebook


def test_the_readme_command_runs_the_quickstart_under_nbconvert(tmp_path):
    name = "01-quickstart"
    notebook = copy_notebook(name, tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--output", f"{name}.out",
         "--ExecutePreprocessor.timeout=120", str(notebook)],
        capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    check(name, nbformat.read(tmp_path / f"{name}.out.ipynb", as_version=4))


def test_saved_outputs_are_what_a_reader_should_see():
    """Outputs saved as recorded by nbconvert: no widget state, no timings, streams in one piece."""
    for name in NAMES:
        raw = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
        assert "widgets" not in raw["metadata"], f"{name}: saved with widget state"
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        check(name, nb)
        for cell in nb.cells:
            assert "execution" not in cell.metadata, f"{name}: saved with cell timings"
            streams = [o["name"] for o in cell.get("outputs", []) if o["output_type"] == "stream"]
            assert len(streams) == len(set(streams)), f"{name}: streams not coalesced"


def test_nbval_compares_the_saved_outputs():
    """`python -m pytest` runs the command of notebooks/README.md: strict nbval over notebooks/.

    (It used to run again here, in a subprocess on a copy: every notebook executed twice for the
    same comparison.)"""
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in pytest_ini["testpaths"]
    options = shlex.split(pytest_ini["addopts"])
    assert "--nbval" in options and "--nbval-lax" not in options
    assert options[options.index("--nbval-sanitize-with") + 1] == "notebooks/nbval-sanitize.cfg"
    readme = (NOTEBOOKS / "README.md").read_text()
    assert ("--nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval-sanitize.cfg notebooks/"
            in readme)
