"""MCP servers of the user's Hermes configuration, in a real kernel: a stdio server of our own
(tests/mcp_server.py) and one whose command does not exist."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hermes_jupyter.agent.mcp_servers import Server, with_mcp_toolsets

from .kernel import Kernel

HERE = Path(__file__).parent
SCRIPT = HERE / "scripts" / "parity-mcp.yaml"
BROKEN = "no-such-mcp-server-command"


@pytest.fixture
def kernel(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(
        "mcp_servers:\n"
        f"  calc:\n    command: {sys.executable}\n    args: [{HERE / 'mcp_server.py'}]\n"
        f"  broken:\n    command: {BROKEN}\n")
    k = Kernel(tmp_path, env={"HERMES_HOME": str(home)})
    setup = k.run(f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n"
                  "%config Hermes.plain = True")
    assert setup.reply["status"] == "ok", setup.error
    yield k
    k.close()


def config_line(stdout: str, key: str) -> str:
    return next((line for line in stdout.splitlines() if line.strip().startswith(key)), "")


def test_mcp_tools_reach_turns_and_a_broken_server_is_reported_once(kernel):
    before = kernel.run("%hermes /config")
    assert "connects on the first turn" in config_line(before.stdout, "mcp calc")

    first = kernel.run("%hermes -o first mcp add")
    # Discovery (slow: the broken server is retried) runs on the turn's thread, not in the cell.
    assert first.idle_after < 1.0, f"the magic blocked the cell for {first.idle_after:.2f}s"
    kernel.pump(lambda: "-- done" in first.stdout, timeout=120)
    assert "sum=42" in first.stdout  # the model called mcp__calc__add and got its result
    second = kernel.run("%hermes --wait mcp shout")
    assert "HELLO NOTEBOOK!" in second.stdout

    transcript = first.stdout + second.stdout
    warnings = [line for line in transcript.splitlines() if "MCP server" in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("[warn]") and "'broken'" in warnings[0]
    assert f"command not found: {BROKEN}" in warnings[0]
    # The MCP client's own retry chatter goes to Hermes' log files, not into the cell.
    assert "initial connection failed" not in transcript + first.stderr + second.stderr
    state = kernel.run("print(first.status, [e.name for e in first.events if e.kind == 'tool'])")
    assert state.stdout == "done ['mcp__calc__add']\n"

    after = kernel.run("%hermes /config")
    assert "connected" in config_line(after.stdout, "mcp calc")
    assert f"failed: command not found: {BROKEN}" in config_line(after.stdout, "mcp broken")


@pytest.mark.parametrize("toolsets,expected", [
    (("terminal",), ("terminal", "mcp-calc")),
    (("terminal", "no_mcp"), ("terminal",)),  # Hermes' sentinel: no MCP servers
    (("terminal", "calc"), ("terminal", "calc")),  # naming a server enables only the named ones
    (("terminal", "mcp-calc"), ("terminal", "mcp-calc")),
])
def test_toolsets_follow_hermes_rules(toolsets, expected):
    found = [Server("calc", "connected", 2), Server("other", "connected", 0), Server("broken", "failed")]
    assert with_mcp_toolsets(toolsets, found) == expected
