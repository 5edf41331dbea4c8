"""Notebook usage in Hermes' own records, for users who opt in (``%config Hermes.sync_insights = True``).

After each turn the notebook session's usage goes into Hermes' state
database (HERMES_HOME/state.db) the way the CLI and gateway record theirs:
one ``sessions`` row per notebook session (source ``jupyter``), token counts
added per turn through ``SessionDB.update_token_counts`` (which also keeps
the per-model breakdown, so a fallback model's tokens count for it), message
and tool-call counts. That is what ``hermes insights`` reads. Like the Hermes
Web UI's sync, it stores counts only, never the conversation, and a failure
is logged, never raised into the turn.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("hermes_jupyter")

SOURCE = "jupyter"  # the platform name build_agent gives AIAgent

_lock = threading.Lock()
_dbs: dict[Path, Any] = {}
_COUNTERS = ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def state_db() -> Any:
    """Hermes' SessionDB under the current HERMES_HOME (opened once per path)."""
    from hermes_constants import get_hermes_home
    from hermes_state import SessionDB

    path = get_hermes_home() / "state.db"
    with _lock:
        if path not in _dbs:
            _dbs[path] = SessionDB(db_path=path)
        return _dbs[path]


def record_turn(usage: Any, agent: Any, result: dict[str, Any], *, session_key: str, model: str, cwd: str,
                title: str | None = None) -> bool:
    """Add one finished turn's usage to its session's row. True if recorded."""
    if usage is None:
        return False
    try:
        # The agent's counters are totals over its life (a warm agent serves several turns).
        totals = {k: int(result.get(k) or 0) for k in _COUNTERS}
        before = getattr(agent, "_hermes_jupyter_insights", {})
        agent._hermes_jupyter_insights = totals
        deltas = {k: max(0, v - int(before.get(k, 0))) for k, v in totals.items()}

        db = state_db()
        session_id = session_key
        db.ensure_session(session_id, source=SOURCE, model=model, cwd=cwd)
        db.update_token_counts(
            session_id, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            model=usage.model, estimated_cost_usd=usage.cost_usd,
            billing_provider=str(result.get("provider") or getattr(agent, "provider", "") or "") or None,
            billing_base_url=str(result.get("base_url") or getattr(agent, "base_url", "") or "") or None,
            api_call_count=int(result.get("api_calls") or 0), **deltas)
        messages = [m for m in (result.get("messages") or []) if isinstance(m, dict)]
        tool_calls = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
        db._execute_write(lambda conn: conn.execute(
            "UPDATE sessions SET message_count = ?, tool_call_count = ? WHERE id = ?",
            (len(messages), tool_calls, session_id)))
        if title:
            try:
                db.set_session_title(session_id, title)
            except ValueError:  # Hermes keeps titles unique; the counts matter, not the title
                pass
        return True
    except Exception as exc:
        log.warning("usage not recorded in Hermes' state database: %s", exc)
        return False
