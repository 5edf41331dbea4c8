"""What the notebook's tools need from the turn whose agent calls them.

The engine sets ``current_host`` on a turn's worker thread (hermes-agent
copies the context into its tool threads); the tools reach the turn only
through this small interface.
"""
from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, Protocol

from hermes_jupyter import events as ev


class ToolHost(Protocol):
    turn_id: str

    @property
    def shell(self) -> Any: ...
    @property
    def settings(self) -> Any: ...  # the Hermes configurable: Hermes.notebook names the notebook
    def ask_approval(self, command: str, description: str, *, pattern: str,
                     allow_permanent: bool = False) -> str: ...
    def publish(self, event: type[ev.Event], **fields: Any) -> None: ...
    def on_cancel(self, fn: Callable[[], None]) -> Callable[[], None]: ...
    def notify(self) -> None: ...


current_host: contextvars.ContextVar[ToolHost | None] = contextvars.ContextVar("hermes_jupyter_host", default=None)
