"""Which notebook is this kernel running? Decides the agent's working folder and where history goes.

Most explicit first: ``%config Hermes.notebook``, VS Code's ``__vsc_ipynb_file__``,
Jupyter's ``JPY_SESSION_NAME`` / ``__session__`` (ipykernel 6.22+, jupyter_server
1.19+). nbclient and papermill set none of these: then there is no notebook
path, and callers fall back to the working directory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def find_notebook(shell: Any) -> Path | None:
    namespace = getattr(shell, "user_ns", {}) or {}
    settings = getattr(shell, "_hermes_settings", None)
    candidates = [
        getattr(settings, "notebook", None),
        namespace.get("__vsc_ipynb_file__"),
        os.environ.get("JPY_SESSION_NAME"),
        namespace.get("__session__"),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            return Path(candidate).expanduser().resolve()
    return None


HISTORY_SUFFIX = ".hermes.json"
RECORDING_SUFFIX = ".hermes-recording.yaml"
FALLBACK_STEM = "hermes-history"  # no notebook path (nbclient, papermill)
RECORDING_FALLBACK = "hermes-recording.yaml"


def sidecar(notebook: Path | str | None, cwd: Path | str, suffix: str, fallback: str) -> Path:
    """``dir/analysis.ipynb`` -> ``dir/analysis<suffix>``; no notebook -> ``cwd/<fallback>``."""
    if notebook is None:
        return Path(cwd) / fallback
    nb = Path(notebook)
    if not nb.is_absolute():
        nb = Path(cwd) / nb
    stem = nb.name[: -len(".ipynb")] if nb.name.lower().endswith(".ipynb") else nb.stem
    return nb.with_name(stem + suffix)


def history_path(notebook: Path | str | None, cwd: Path | str) -> Path:
    return sidecar(notebook, cwd, HISTORY_SUFFIX, FALLBACK_STEM + HISTORY_SUFFIX)


def recording_path(notebook: Path | str | None, cwd: Path | str) -> Path:
    return sidecar(notebook, cwd, RECORDING_SUFFIX, RECORDING_FALLBACK)
