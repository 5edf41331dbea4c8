"""Record the demo notebooks' saved outputs again, after a change of what a turn shows.

    PYTHONPATH=$PWD python -m tests.rerecord_notebooks [NAME ...]

Strict nbval compares every saved output (the turn's HTML with its stylesheet included), so a change
of the rendering means new outputs. Each notebook runs in a copy of its folder, as the tests run it
(nbclient, as nbconvert --execute does: no widget state, no timings, streams in one piece), and only
the outputs and execution counts of the cells that ran are written back. Check with strict nbval
(notebooks/README.md) and read the diff before committing.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .test_notebooks import NAMES, NOTEBOOKS, check, copy_notebook


def rerecord(name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        copy = copy_notebook(name, Path(folder))
        nb = nbformat.read(copy, as_version=4)
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": folder}},
                       store_widget_state=False, record_timing=False, coalesce_streams=True).execute()
    check(name, nb)
    path = NOTEBOOKS / f"{name}.ipynb"
    saved = nbformat.read(path, as_version=4)
    for old, new in zip(saved.cells, nb.cells, strict=True):
        if old.cell_type == "code" and new.get("execution_count") is not None:
            old.outputs, old.execution_count = new.outputs, new.execution_count
    nbformat.write(saved, path)


if __name__ == "__main__":
    for name in sys.argv[1:] or NAMES:
        print(f"recording {name}", flush=True)
        rerecord(name)
