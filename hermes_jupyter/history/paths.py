"""Which notebook is this kernel running, and where do its history, recordings and agent work?

Most explicit first: ``%config Hermes.notebook`` (or ``HERMES_JUPYTER_NOTEBOOK``),
VS Code's ``__vsc_ipynb_file__``, Jupyter's ``JPY_SESSION_NAME`` / ``__session__``
(jupyter_server 1.19+, ipykernel 6.22+). nbclient, nbconvert and papermill tell
the kernel none of these, and neither does a kernel behind a gateway unless the
gateway passes ``JPY_SESSION_NAME`` on. A kernel that such a runner starts from
inside another notebook's kernel (``!papermill``, nbclient in a cell) inherits that
notebook's ``JPY_SESSION_NAME``; it is ignored then (``_inherited``), or the run
would continue the other notebook's conversation.

One rule: the history goes beside the notebook, and the agent works in the
notebook's folder, when this kernel can see that folder. Otherwise both stay
with the kernel: the agent works in the kernel's working folder, and the history
goes to the kernel's own folder for it (``Hermes.history_dir``, by default
``.hermes-jupyter/`` in the working folder), in a file no other notebook writes:

- a notebook the kernel cannot tell: ``unnamed-<time>-<kernel>.hermes.json``, a
  fresh conversation that is never resumed;
- a notebook it can name but not see (its folder is on the server, not on the
  kernel's machine): ``<name>-<hash of its path>.hermes.json``, resumed after a
  restart because the same notebook gives the same name.

Either way the cell that attaches the history says so, once.

"Can see" means: the folder exists here, and for a path that Jupyter reported
(which a server on another machine fills in) it also holds the notebook or is
the kernel's own working folder: a kernel image that happens to have an empty
``/home/jovyan/work`` is not the server's folder. A path the user named is
trusted once its folder exists (papermill's output notebook does not exist yet).
"""
from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HISTORY_SUFFIX = ".hermes.json"
RECORDING_SUFFIX = ".hermes-recording.yaml"
UNNAMED_DIR = ".hermes-jupyter"
NOTEBOOK_ENV = "HERMES_JUPYTER_NOTEBOOK"
HISTORY_DIR_ENV = "HERMES_JUPYTER_HISTORY_DIR"


@dataclass(frozen=True)
class Found:
    """A notebook path and who gave it."""

    path: Path  # absolute, as given (not resolved: a remote path must name the same file on every start)
    named: bool  # by the user (%config Hermes.notebook, HERMES_JUPYTER_NOTEBOOK), not reported by Jupyter


def _candidates(shell: Any, settings: Any) -> Iterator[tuple[Any, bool]]:
    namespace = getattr(shell, "user_ns", {}) or {}
    yield getattr(settings, "notebook", None), True
    yield os.environ.get(NOTEBOOK_ENV), True
    yield namespace.get("__vsc_ipynb_file__"), False
    session = os.environ.get("JPY_SESSION_NAME")
    if session and _inherited("JPY_SESSION_NAME", session, os.environ.get("JPY_PARENT_PID", "")):
        return  # ipykernel's __session__ is the same value
    yield session, False
    yield namespace.get("__session__"), False


@functools.lru_cache(maxsize=8)
def _inherited(name: str, value: str, launcher: str) -> bool:
    """Did this kernel inherit the variable rather than being given it?

    jupyter_server gives a kernel JPY_SESSION_NAME; its own environment does not hold it. A kernel
    that papermill or nbclient starts from inside a notebook's kernel gets a copy of that kernel's
    environment, variable included, and so does its launcher: the process jupyter_client names in
    JPY_PARENT_PID (a process id on POSIX; a handle on Windows, not checked there). A launcher this
    kernel cannot see (another container, another user) says nothing: the variable is trusted.
    """
    if os.name != "posix" or not launcher.isdigit():
        return False
    import psutil
    try:
        return bool(psutil.Process(int(launcher)).environ().get(name) == value)
    except (psutil.Error, OSError):
        return False


def found_notebook(shell: Any, settings: Any = None) -> Found | None:
    """The notebook `shell` runs; `settings` (the Hermes configurable, or None) may name it."""
    for candidate, named in _candidates(shell, settings):
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            return Found(Path(os.path.abspath(os.path.expanduser(candidate))), named)
    return None


def find_notebook(shell: Any, settings: Any = None) -> Path | None:
    found = found_notebook(shell, settings)
    return found.path.resolve() if found is not None else None


def can_see(found: Found, cwd: Path) -> bool:
    """Is the notebook's folder on this kernel's machine (see the module docstring)?"""
    folder = found.path.parent
    if not folder.is_dir():
        return False
    return found.named or found.path.exists() or folder.resolve() == cwd.resolve()


def working_folder(shell: Any, cwd: Path | None = None, settings: Any = None) -> Path:
    """Where the agent's tools work: the notebook's folder if this kernel sees it, else its own working folder."""
    cwd = cwd or Path.cwd()
    found = found_notebook(shell, settings)
    return found.path.parent.resolve() if found is not None and can_see(found, cwd) else cwd.resolve()


def history_dir(settings: Any, cwd: Path) -> tuple[Path, bool]:
    """The kernel's own folder for histories, and whether it was configured (Hermes.history_dir)."""
    value = getattr(settings, "history_dir", None) or os.environ.get(HISTORY_DIR_ENV)
    if not value:
        return cwd / UNNAMED_DIR, False
    # "~/history" or "/shared/$KERNEL_USERNAME": expanded on the kernel's machine, per user.
    return cwd / os.path.expanduser(os.path.expandvars(value)), True


def sidecar(notebook: Path | str, suffix: str, cwd: Path | str = ".") -> Path:
    """``dir/analysis.ipynb`` -> ``dir/analysis<suffix>``."""
    nb = Path(notebook)
    if not nb.is_absolute():
        nb = Path(cwd) / nb
    return nb.with_name(_stem(nb) + suffix)


def history_path(notebook: Path | str, cwd: Path | str = ".") -> Path:
    return sidecar(notebook, HISTORY_SUFFIX, cwd)


def recording_path(notebook: Path | str, cwd: Path | str = ".") -> Path:
    return sidecar(notebook, RECORDING_SUFFIX, cwd)


def _stem(notebook: Path) -> str:
    return notebook.name[: -len(".ipynb")] if notebook.name.lower().endswith(".ipynb") else notebook.stem


def remote_stem(notebook: Path) -> str:
    """``/srv/a/analysis.ipynb`` -> ``analysis-1f0c9b2e``: two notebooks of one name never share a file."""
    return f"{_stem(notebook)}-{hashlib.sha256(str(notebook).encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Location:
    """Where one kernel keeps its history (and, by default, its recordings), and where its agent works."""

    history: Path
    recording: Path
    notebook: Path | None  # None: the kernel cannot tell which notebook it runs
    workdir: Path  # the agent's working folder
    beside: bool = False  # the history is beside the notebook (the kernel sees its folder)
    configured: bool = False  # the folder is Hermes.history_dir

    @property
    def known(self) -> bool:
        return self.notebook is not None

    def label(self, path: Path) -> str:
        """A path the user can find: relative to the notebook's folder when it is here, absolute otherwise."""
        if self.beside and self.notebook is not None:
            try:
                return str(path.relative_to(self.notebook.parent))
            except ValueError:
                pass
        return str(path)

    @property
    def notice(self) -> str | None:
        """The one line a cell shows when the history is not beside the notebook."""
        if self.beside:
            return None
        where = f"{self.history}" + (" (Hermes.history_dir)" if self.configured else "")
        if self.notebook is None:
            return (f"[hermes] this kernel cannot tell which notebook it runs, so it starts a fresh conversation "
                    f"kept in {where}, and the agent works in {self.workdir}; to keep it beside the notebook and "
                    f"resume it later, run %config Hermes.notebook = 'NAME.ipynb'")
        return (f"[hermes] this kernel cannot see the folder of its notebook {self.notebook} (the notebook is on "
                f"another machine, e.g. behind a gateway), so its conversation is kept in {where}, resumed from "
                f"there after a restart, and the agent works in {self.workdir}")


def locate(shell: Any, kernel_tag: str, cwd: Path | None = None, settings: Any = None) -> Location:
    """This kernel's history and recording files and the agent's working folder (see the module docstring).

    `settings`, the Hermes configurable (or None), may name the notebook and the history folder."""
    cwd = (cwd or Path.cwd()).resolve()
    found = found_notebook(shell, settings)
    if found is not None and can_see(found, cwd):
        notebook = found.path.resolve()
        return Location(history_path(notebook), recording_path(notebook), notebook, notebook.parent, beside=True)
    folder, configured = history_dir(settings, cwd)
    if found is not None:
        stem = remote_stem(found.path)
    else:
        stem = f"unnamed-{time.strftime('%Y%m%d-%H%M%S')}-{kernel_tag}"
    return Location(folder / (stem + HISTORY_SUFFIX), folder / (stem + RECORDING_SUFFIX),
                    found.path if found is not None else None, cwd, configured=configured)
