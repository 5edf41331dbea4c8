"""The lint and type gates: ruff and mypy, with their settings in pyproject.toml, find nothing.

Both run as the tools installed next to this Python (pip install -e '.[test]'); a missing
tool skips its test. mypy takes up to a minute cold; its cache (.mypy_cache) makes reruns fast.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_tool(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # shutil.which, not a bare path: it also finds ruff.exe in a Windows venv's Scripts folder
    tool = shutil.which(name, path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip(f"{name} is not installed next to {sys.executable} (pip install -e '.[test]')")
    return subprocess.run([tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing() -> None:
    run = run_tool("ruff", "check", "--output-format", "concise", "hermes_jupyter", "tests", "bench", timeout=120)
    assert run.returncode == 0, f"ruff check found problems:\n{run.stdout}{run.stderr}"


def test_mypy_finds_nothing() -> None:
    run = run_tool("mypy", "--config-file", "pyproject.toml", "--cache-dir", str(ROOT / ".mypy_cache"),
                   timeout=280)  # under pytest's own 300 s timeout, so a hang reports mypy, not the test run
    assert run.returncode == 0, f"mypy found problems:\n{run.stdout}{run.stderr}"
