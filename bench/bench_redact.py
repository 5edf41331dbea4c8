"""Redaction's CPU for one 10,000-token streamed answer, outside a kernel.

The answer arrives in deltas of 4 tokens; the live view flushes every 7 deltas (0.14 s at 200 tokens/s,
as in bench_cpu.py) and redacts its open tail on each flush (views/stream.py); the text view redacts
each released line (StreamRedactor); the history redacts the finished answer once. Measured for two
answers: the Markdown prose of bench_cpu.py, and a data-science answer (prose, Python code with
`api_key=os.environ[...]`, `max_tokens=`, tokenizers, SQL, URLs, ids), which wakes far more rules.

Run the same file against two checkouts to compare: ``PYTHONPATH=/path/to/checkout python bench_redact.py``.
"""
from __future__ import annotations

import json
import sys
import time

from common import answer_text

import hermes_jupyter
from hermes_jupyter.safety import redact
from hermes_jupyter.views import stream as stream_view

TOKENS, TOKEN_CHARS, DELTA_TOKENS, DELTAS_PER_FLUSH, RUNS = 10_000, 4, 4, 7, 9

DATA_SCIENCE_BLOCK = """The churn model needs the events table first. Load it with the client below; the key
comes from the environment, never from the notebook.

```python
import os
from openai import OpenAI
client = OpenAI(api_key=os.environ["OPENAI_API_KEY"])
tokens = tokenizer(text, max_length=512, truncation=True)["input_ids"]
resp = client.chat.completions.create(model="gpt-4o-mini-2024-07-18", max_tokens=256, messages=msgs)
df = pd.read_csv("data/events_2024.csv").groupby("region")["revenue"].agg(["mean", "std"])
run = mlflow.start_run(run_id="4f5a1c2b3d4e5f60718293a4b5c6d7e8")
```

Then query the warehouse: `SELECT region, SUM(amount) FROM orders GROUP BY 1` and compare with
https://example.com/report?page=2&sort=desc. The token count per document is long-tailed; keep the
password policy in mind when you share the notebook (commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b).

"""


def answers() -> dict[str, str]:
    chars = TOKENS * TOKEN_CHARS
    science = (DATA_SCIENCE_BLOCK * (chars // len(DATA_SCIENCE_BLOCK) + 1))[:chars]
    return {"prose": answer_text(TOKENS), "data science": science}


class Timed:
    def __init__(self, fn):
        self.fn, self.cpu, self.calls = fn, 0.0, 0

    def __call__(self, text: str) -> str:
        start = time.thread_time()
        try:
            return self.fn(text)
        finally:
            self.cpu += time.thread_time() - start
            self.calls += 1


def run_once(text: str) -> dict[str, float]:
    delta = DELTA_TOKENS * TOKEN_CHARS
    deltas = [text[i:i + delta] for i in range(0, len(text), delta)]
    timed = Timed(redact.redact_for_display)
    stream_view.redact_for_display = timed  # the view's own reference
    try:
        view = stream_view.AnswerStream("answer")
        start = time.thread_time()
        for i, piece in enumerate(deltas, 1):
            view.feed(piece)
            if i % DELTAS_PER_FLUSH == 0:
                view.flush()
        view.close()
        live_total = time.thread_time() - start
    finally:
        stream_view.redact_for_display = timed.fn
    start = time.thread_time()
    lines = redact.StreamRedactor(redact=redact.redact_for_display)
    for piece in deltas:
        lines.feed(piece)
    lines.flush()
    text_view = time.thread_time() - start
    start = time.thread_time()
    redact.redact_obj({"role": "assistant", "content": text})
    history = time.thread_time() - start
    return {"live view, redaction": timed.cpu, "live view, all": live_total, "text view": text_view,
            "history (once)": history, "flushes redacted": timed.calls}


def main() -> None:
    redact.redact_for_display("warm up: password=x")  # reads the configured keys once
    results = {}
    for name, text in answers().items():
        runs = [run_once(text) for _ in range(RUNS)]
        # The least of the runs: on a shared machine other work only ever adds to a run's CPU time.
        results[name] = {key: min(r[key] for r in runs) for key in runs[0]}
    where = hermes_jupyter.__file__
    print(f"# {where}  (least of {RUNS} runs, CPU seconds of this thread)")
    for name, row in results.items():
        print(f"{name:13}", "  ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()))
    if "--json" in sys.argv:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
