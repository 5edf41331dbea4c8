"""hermes-jupyter: the Hermes agent in Jupyter. ``%load_ext hermes_jupyter``, then ``%hermes PROMPT``.

The public API is what this module exports: the ``Engine`` and the ``Turn``
handle, the event types, the request snapshots and ``NothingPending``.
Everything else is internal and may change.
"""
from __future__ import annotations

from typing import Any

from hermes_jupyter.engine import ApprovalRequest, ClarifyRequest, Engine, NothingPending, Turn
from hermes_jupyter.events import (
    ApprovalRequested,
    ApprovalResolved,
    Cancelled,
    ClarifyRequested,
    ClarifyResolved,
    Compressed,
    Done,
    Error,
    Event,
    Reasoning,
    SegmentEnd,
    Status,
    Token,
    ToolCompleted,
    ToolStarted,
    TurnQueued,
    TurnStarted,
    Usage,
)

__version__ = "0.1.0"
__all__ = [
    "ApprovalRequest", "ApprovalRequested", "ApprovalResolved", "Cancelled", "ClarifyRequest", "ClarifyRequested",
    "ClarifyResolved", "Compressed", "Done", "Engine", "Error", "Event", "NothingPending", "Reasoning", "SegmentEnd",
    "Status", "Token", "ToolCompleted", "ToolStarted", "Turn", "TurnQueued", "TurnStarted", "Usage", "__version__",
    "get_engine", "load_ipython_extension", "unload_ipython_extension",
]

_loaded: dict[int, Any] = {}  # id(shell) -> Extension


def get_engine() -> Engine | None:
    """The Engine of the extension loaded in the current IPython shell (None if it is not loaded)."""
    from IPython import get_ipython

    shell = get_ipython()
    extension = _loaded.get(id(shell)) if shell is not None else None
    if extension is None and len(_loaded) == 1:
        extension = next(iter(_loaded.values()))
    return extension.engine if extension is not None else None


def load_ipython_extension(ip: Any) -> None:
    from hermes_jupyter.extension import Extension

    if id(ip) in _loaded:  # %reload_ext unloads first; a second %load_ext is a no-op
        return
    extension = Extension(ip)
    _loaded[id(ip)] = extension
    extension.load()


def unload_ipython_extension(ip: Any) -> None:
    extension = _loaded.pop(id(ip), None)
    if extension is not None:
        extension.unload()
