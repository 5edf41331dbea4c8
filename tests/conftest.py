"""Test isolation: every test session gets its own HERMES_HOME.

hermes-agent reads HERMES_HOME when `run_agent` is first imported and writes
state under it, so it must be set before anything imports the agent.
"""
import os
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="hermes-home-"))
os.environ["HERMES_HOME"] = str(_HOME)
os.environ.setdefault("TIRITH_ENABLED", "0")  # offline: the scanner download fails anyway
# Keys from the developer's shell must never reach a test's agent.
for _name in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
    os.environ.pop(_name, None)


def hermes_home() -> Path:
    return _HOME

# The browser fixtures (jupyterlab, chromium_browser, page) are shared by every browser test module.
pytest_plugins = ["tests.browser"]
