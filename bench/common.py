"""Shared pieces of the benchmarks: statistics, the scripted answers, a timed scripted server.

A *token* here is 4 characters of answer text (the usual rule of thumb for
English), and the scripted server sends one token per SSE chunk, so a turn of
N tokens is N chunks, N ``Token`` events, N deltas. The token rate is set with
the script's ``delay`` between chunks.

The scripted model server runs in the benchmark process, not in the kernel
(the kernel reaches it with ``Hermes.base_url``), like a real provider: the
kernel's CPU time is then only the agent, the engine and the views.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hermes_jupyter.models.scripted.script import lorem
from hermes_jupyter.models.scripted.server import LoopbackHTTPServer, ScriptedServer, _Handler

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TOKEN_CHARS = 4


class Skipped(Exception):
    """A measurement that cannot run on this machine (the reason is the message)."""


# ----- statistics -------------------------------------------------------------------------

def summary(values: Iterable[float]) -> dict[str, float]:
    vals = sorted(values)
    if not vals:
        return {}
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) > 1 else [vals[0]] * 3
    return {"n": len(vals), "median": statistics.median(vals), "min": vals[0], "max": vals[-1],
            "q1": q[0], "q3": q[2]}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    vals = sorted(values)
    if not vals:
        return float("nan")
    return vals[max(0, math.ceil(p / 100 * len(vals)) - 1)]


def spread(values: Iterable[float], unit: str = "", scale: float = 1.0, digits: int = 0) -> str:
    """'median (min–max)' of the values, scaled."""
    s = summary(values)
    if not s:
        return "–"
    f = f"{{:,.{digits}f}}"
    med, lo, hi = (f.format(s[k] * scale) for k in ("median", "min", "max"))
    return f"{med}{unit} ({lo}–{hi})" if s["n"] > 1 else f"{med}{unit}"


# ----- scripted answers -------------------------------------------------------------------

def answer_text(tokens: int) -> str:
    """Deterministic Markdown prose (sentences, paragraphs) of exactly `tokens` tokens."""
    words = math.ceil(tokens * TOKEN_CHARS / 6) + 20
    text = lorem(words)
    while len(text) < tokens * TOKEN_CHARS:
        words *= 2
        text = lorem(words)
    return text[: tokens * TOKEN_CHARS]


MARKER_CHARS = 8  # one marker word per chunk: "x00042  " or "x00042\n\n" at paragraph ends
MARKERS_PER_PARAGRAPH = 60


def marker_text(count: int) -> str:
    """`count` words of 8 characters, each a unique marker x<5 digits>, in paragraphs."""
    parts = []
    for i in range(count):
        end = "\n\n" if i % MARKERS_PER_PARAGRAPH == MARKERS_PER_PARAGRAPH - 1 else "  "
        parts.append(f"x{i:05d}{end}")
    return "".join(parts).rstrip()


SEND_OVERHEAD = 0.0003  # seconds the scripted server spends per chunk besides its delay (0.2–0.5 ms here)


def rule(tag: str, text: str, chunk_size: int, period: float) -> dict[str, Any]:
    """A script rule: prompts containing [tag] get `text` in chunks of `chunk_size`, one every `period` s.

    The script's ``delay`` is the wait between chunks; the server's own time per
    chunk is taken off it so that the achieved rate is close to the nominal one
    (the reports give the achieved rate, from the server's send times).
    """
    delay = max(0.0, period - SEND_OVERHEAD) if period else 0.0
    return {"match": f"[{tag}]", "steps": [{"text": text, "chunk_size": chunk_size, "delay": round(delay, 6)}]}


def write_script(folder: Path, rules: list[dict[str, Any]]) -> Path:
    script = {
        "model": "bench-model",
        "context_length": 1_000_000,  # never compress: every turn must see the same conditions
        "chunk_size": TOKEN_CHARS,
        "rules": [*rules, {"match": "[ping]", "steps": [{"text": "pong"}]},
                  {"default": True, "steps": [{"text": "ok"}]}],
    }
    path = folder / "bench-script.json"
    path.write_text(json.dumps(script))
    return path


# ----- the scripted server, with the wall-clock send time of every chunk ------------------

class _TimedHandler(_Handler):
    def _send_chunk(self, data: bytes) -> None:
        super()._send_chunk(data)
        self.server.owner.sent.append((time.time(), data))


class TimedServer(ScriptedServer):
    """The product's scripted server, recording (time.time(), SSE bytes) after each chunk is written."""

    def __init__(self, script: Any) -> None:
        super().__init__(script)
        self.sent: list[tuple[float, bytes]] = []

    def start(self) -> TimedServer:
        if self._httpd is None:
            self._closing.clear()
            self._httpd = LoopbackHTTPServer(("127.0.0.1", self._port), _TimedHandler, self)
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="bench-scripted-model", daemon=True)
            self._thread.start()
        return self

    def content_chunks(self, start: int = 0) -> list[tuple[float, str]]:
        """(send time, delta.content) of every content chunk sent since ``self.sent[start]``."""
        out = []
        for t, data in self.sent[start:]:
            if not data.startswith(b"data: {"):
                continue
            for choice in json.loads(data[6:]).get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    out.append((t, piece))
        return out

    def setup_code(self) -> str:
        """Kernel code that loads the extension and points it at this server."""
        return ("%load_ext hermes_jupyter\n"
                f"%config Hermes.base_url = {self.base_url!r}\n"
                f"%config Hermes.model = {self.model!r}\n"
                "%config Hermes.approvals = 'deny'\n")


# ----- environment ------------------------------------------------------------------------

def kernel_env(home: Path) -> dict[str, str]:
    """Environment of benchmark kernels and servers: own HERMES_HOME, no keys, bench/ importable."""
    env = dict(os.environ, HERMES_HOME=str(home), TIRITH_ENABLED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])))
    for name in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
        env.pop(name, None)
    return env


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"hermes-bench-{prefix}-"))
