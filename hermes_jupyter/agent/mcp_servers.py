"""The MCP servers of the user's Hermes configuration (``mcp_servers`` in config.yaml), for notebook turns.

As in the Hermes Web UI, servers are discovered lazily and idempotently:
once per kernel, on the first turn's worker thread (``ensure_discovered``),
never on a cell's critical path, and a failure never breaks a turn. Their
tools are registered by hermes-agent under the toolsets ``mcp-<server>``,
which ``for_turn`` adds to the turn's enabled toolsets. A server that
failed to start is reported once per kernel (``for_turn`` returns it to
one turn only) and listed by ``%hermes /config`` (``describe``).
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from typing import Any

from hermes_jupyter.agent.settings import NO_MCP, mcp_servers_configured

log = logging.getLogger("hermes_jupyter")


_lock = threading.Lock()  # held through discovery: a second first turn waits for the first one's
_discovered = False
_error: str | None = None  # discovery itself failed (e.g. the mcp package is missing)
_reported: set[str] = set()  # servers whose failure the user has been told about


@dataclass(frozen=True)
class Server:
    name: str
    status: str  # connected | failed | connecting | disabled | configured | skipped
    tools: int = 0
    reason: str = ""



def ensure_discovered() -> None:
    """Connect the configured servers and register their tools, once per kernel (slow: worker thread only)."""
    global _discovered, _error
    with _lock:
        if _discovered:
            return
        try:
            # Nothing configured: skip importing the mcp package (~0.4 s).
            if mcp_servers_configured():
                _hermes_logging()  # else the MCP client's retry warnings land in the cell
                import tools.mcp_tool as mcp_tool
                from tools.mcp_tool import discover_mcp_tools, shutdown_mcp_servers
                if not getattr(mcp_tool, "_MCP_AVAILABLE", True):  # Hermes would skip them silently
                    raise RuntimeError("the mcp package is not installed (pip install 'hermes-agent[mcp]')")
                discover_mcp_tools()
                # The kernel exits: close the servers' sessions (their watchdog kills orphans anyway).
                atexit.register(shutdown_mcp_servers)
        except Exception as exc:  # MCP is optional: turns go on without it
            log.info("MCP discovery failed: %s", exc)  # the user hears it from take_failures
            _error = str(exc) or type(exc).__name__
        finally:
            _discovered = True


def _hermes_logging() -> None:
    """Hermes' log files, set up as AIAgent() would (idempotent), kept off the root logger."""
    from hermes_jupyter.agent.hosting import confined_logging

    try:
        with confined_logging():
            from hermes_logging import setup_logging
            setup_logging()
    except Exception:
        log.debug("Hermes logging not set up", exc_info=True)


def servers() -> list[Server]:
    """Every configured server and its state (before discovery: 'configured')."""
    names = mcp_servers_configured()
    if not names:
        return []
    if not _discovered or _error:
        status = "failed" if _error else "configured"
        return [Server(str(n), "disabled" if _disabled(cfg) else status, reason=_error or "")
                for n, cfg in names.items()]
    try:
        from tools.mcp_tool import get_mcp_status
        found = {str(s.get("name")): s for s in get_mcp_status()}
    except Exception as exc:
        return [Server(str(n), "failed", reason=f"{type(exc).__name__}: {exc}") for n in names]
    result = []
    for name, cfg in names.items():
        entry = found.get(str(name))
        if entry is None and os.environ.get("HERMES_SAFE_MODE", "").lower() in ("1", "true", "yes", "on"):
            result.append(Server(str(name), "disabled", reason="HERMES_SAFE_MODE is on"))
            continue
        if entry is None:  # _load_mcp_config drops entries its security check rejects
            result.append(Server(str(name), "skipped", reason="rejected by Hermes' MCP security check"))
            continue
        status = str(entry.get("status") or "")
        reason = _explain(str(name), cfg, str(entry.get("error") or "")) if status == "failed" else ""
        result.append(Server(str(name), status, int(entry.get("tools") or 0), reason))
    return result


def for_turn(toolsets: tuple[str, ...]) -> tuple[tuple[str, ...], list[Server]]:
    """On a turn's worker thread: discover (once), then the turn's toolsets and the failures to report."""
    ensure_discovered()
    found = servers()
    return with_mcp_toolsets(toolsets, found), take_failures(found)


def with_mcp_toolsets(toolsets: tuple[str, ...], found: list[Server]) -> tuple[str, ...]:
    """The turn's toolsets plus those of the connected MCP servers, as Hermes' platforms get them.

    Hermes' rules: ``no_mcp`` turns MCP off; naming servers (or ``mcp-<server>``)
    enables only those; otherwise every connected server is added.
    """
    if NO_MCP in toolsets:
        return tuple(t for t in toolsets if t != NO_MCP)
    connected = [s.name for s in found if s.status == "connected" and s.tools]
    if any(n in toolsets or f"mcp-{n}" in toolsets for n in connected):
        return toolsets
    return toolsets + tuple(f"mcp-{n}" for n in connected)


def take_failures(found: list[Server]) -> list[Server]:
    """The failed servers not reported yet; each is returned once per kernel."""
    with _lock:
        new = [s for s in found if s.status in ("failed", "skipped") and s.name not in _reported]
        _reported.update(s.name for s in new)
    return new


def failure_text(server: Server) -> str:
    return (f"MCP server {server.name!r} is not available in this kernel: {server.reason or server.status}. "
            f"Fix mcp_servers.{server.name} in the Hermes config and restart the kernel.")


def describe() -> list[tuple[str, str]]:
    """Lines for ``%hermes /config``: one per configured server."""
    lines = []
    for s in servers():
        if s.status == "connected":
            value = f"connected, {s.tools} tools (toolset mcp-{s.name})"
        elif s.status == "configured":
            value = "configured; connects on the first turn"
        else:
            value = f"{s.status}: {s.reason}" if s.reason else s.status
        lines.append((f"mcp {s.name}", value))
    return lines


def _disabled(cfg: Any) -> bool:
    return isinstance(cfg, dict) and str(cfg.get("enabled", True)).strip().lower() in ("false", "0", "no", "off")


def _explain(name: str, cfg: Any, error: str) -> str:
    """A clearer reason than the MCP client's (a missing command shows as 'Connection closed')."""
    from hermes_jupyter.safety.redact import redact_text

    command = str(cfg.get("command") or "") if isinstance(cfg, dict) else ""
    if command and "url" not in cfg:
        path = (cfg.get("env") or {}).get("PATH") if isinstance(cfg.get("env"), dict) else None
        if not shutil.which(os.path.expanduser(command), path=path):
            return f"command not found: {command}"
    detail = _stderr_tail(name)
    reason = error or "did not start"
    if detail and detail not in reason:
        reason = f"{reason} ({detail})"
    return redact_text(reason)[:300]


def _stderr_tail(name: str) -> str:
    """The last line a stdio server wrote to Hermes' logs/mcp-stderr.log in its latest start."""
    try:
        from hermes_constants import get_hermes_home
        text = (get_hermes_home() / "logs" / "mcp-stderr.log").read_text(errors="replace")[-20_000:]
    except Exception:
        return ""
    marker = f"starting MCP server '{name}' ====="
    if marker not in text:
        return ""
    block = text.rsplit(marker, 1)[1].split("\n=====", 1)[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    return lines[-1] if lines else ""
