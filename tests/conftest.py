"""Test isolation: every test session gets its own HERMES_HOME.

hermes-agent reads HERMES_HOME when `run_agent` is first imported and writes
state under it, so it must be set before anything imports the agent.
"""
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="hermes-home-"))
os.environ["HERMES_HOME"] = str(_HOME)
os.environ.setdefault("TIRITH_ENABLED", "0")  # offline: the scanner download fails anyway
# Keys from the developer's shell must never reach a test's agent.
for _name in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
    os.environ.pop(_name, None)


try:  # Hypothesis profiles: a small fixed budget by default, HYPOTHESIS_PROFILE=long for thousands of examples
    from hypothesis import settings as _settings

    _settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None)
    _settings.register_profile("long", max_examples=5000, deadline=None)
    _settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:
    pass


def hermes_home() -> Path:
    return _HOME


@contextlib.contextmanager
def hermes_config(text: str) -> Iterator[Path]:
    """The test HERMES_HOME's config.yaml holds `text` for the block (hermes re-reads it when it
    changes; kernels started meanwhile inherit HERMES_HOME and read it too)."""
    path = _HOME / "config.yaml"
    path.write_text(text)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


# Hermes retries a failed request (agent.api_max_retries, default 3) after a back-off of 2-3 s, then
# 4-6 s: nine seconds a provider-error test. Tests about what the user is told make one attempt;
# test_engine's "fail server" keeps the default, so the retry path stays covered.
ONE_ATTEMPT = "agent:\n  api_max_retries: 1\n"

# Shared fixtures: the browser ones (jupyterlab, chromium_browser, page) and the in-process `engine`.
pytest_plugins = ["tests.browser", "tests.engines"]


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true (for states nothing signals, such as a thread's name); fail after ``timeout``."""
    import threading
    import time

    deadline, nap = time.monotonic() + timeout, threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        nap.wait(0.005)


def turn_jobs_done(turn_id: str, timeout: float = 60.0) -> None:
    """Wait until no thread runs a job of this turn (its worker, its dispatcher): the threads stay
    for the next job (util/workers.py) under another name."""
    import threading

    wait_until(lambda: not any(t.name.endswith(turn_id) for t in threading.enumerate()
                               if t is not threading.current_thread()), timeout, f"the end of {turn_id}'s jobs")
