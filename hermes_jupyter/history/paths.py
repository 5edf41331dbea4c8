"""Which notebook is this kernel running, and where do its history and recordings go?

The notebook decides the agent's working folder and the files kept beside it.
Most explicit first: ``%config Hermes.notebook`` (or ``HERMES_JUPYTER_NOTEBOOK``),
VS Code's ``__vsc_ipynb_file__``, Jupyter's ``JPY_SESSION_NAME`` / ``__session__``
(jupyter_server 1.19+, ipykernel 6.22+). nbclient, nbconvert and papermill tell
the kernel none of these, and neither does a kernel behind Kernel Gateway.

Where the notebook is unknown, a kernel never shares a history file with another
one: it starts a fresh conversation in a file of its own,
``.hermes-jupyter/unnamed-<time>-<kernel>.hermes.json`` in the working folder, and
says so once (a file that another notebook may have written is never resumed).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HISTORY_SUFFIX = ".hermes.json"
RECORDING_SUFFIX = ".hermes-recording.yaml"
UNNAMED_DIR = ".hermes-jupyter"
NOTEBOOK_ENV = "HERMES_JUPYTER_NOTEBOOK"


def find_notebook(shell: Any) -> Path | None:
    namespace = getattr(shell, "user_ns", {}) or {}
    settings = getattr(shell, "_hermes_settings", None)
    candidates = [
        getattr(settings, "notebook", None),
        os.environ.get(NOTEBOOK_ENV),
        namespace.get("__vsc_ipynb_file__"),
        os.environ.get("JPY_SESSION_NAME"),
        namespace.get("__session__"),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            return Path(candidate).expanduser().resolve()
    return None


def sidecar(notebook: Path | str, suffix: str, cwd: Path | str = ".") -> Path:
    """``dir/analysis.ipynb`` -> ``dir/analysis<suffix>``."""
    nb = Path(notebook)
    if not nb.is_absolute():
        nb = Path(cwd) / nb
    stem = nb.name[: -len(".ipynb")] if nb.name.lower().endswith(".ipynb") else nb.stem
    return nb.with_name(stem + suffix)


def history_path(notebook: Path | str, cwd: Path | str = ".") -> Path:
    return sidecar(notebook, HISTORY_SUFFIX, cwd)


def recording_path(notebook: Path | str, cwd: Path | str = ".") -> Path:
    return sidecar(notebook, RECORDING_SUFFIX, cwd)


@dataclass(frozen=True)
class Location:
    """Where one kernel keeps its history (and, by default, its recordings)."""

    history: Path
    recording: Path
    notebook: Path | None  # None: the kernel cannot tell which notebook it runs

    @property
    def known(self) -> bool:
        return self.notebook is not None

    def label(self, path: Path) -> str:
        """A path the user can find: relative to the notebook's folder when it is known, absolute otherwise."""
        if self.notebook is not None:
            try:
                return str(path.relative_to(self.notebook.parent))
            except ValueError:
                pass
        return str(path)

    @property
    def notice(self) -> str:
        """The one line a cell shows when the notebook is unknown."""
        return (f"[hermes] this kernel cannot tell which notebook it runs, so it starts a fresh conversation "
                f"kept in {self.history}; to keep it beside the notebook and resume it later, "
                f"run %config Hermes.notebook = 'NAME.ipynb'")


def locate(shell: Any, kernel_tag: str, cwd: Path | None = None) -> Location:
    """This kernel's history and recording files (see the module docstring)."""
    notebook = find_notebook(shell)
    if notebook is not None:
        return Location(history_path(notebook), recording_path(notebook), notebook)
    folder = (cwd or Path.cwd()).resolve() / UNNAMED_DIR
    stem = f"unnamed-{time.strftime('%Y%m%d-%H%M%S')}-{kernel_tag}"
    return Location(folder / (stem + HISTORY_SUFFIX), folder / (stem + RECORDING_SUFFIX), None)
