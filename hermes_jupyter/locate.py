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
