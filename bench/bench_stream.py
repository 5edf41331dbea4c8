"""2. Streaming cost: iopub messages and bytes of one streamed turn, ours vs a naive view, by answer shape.

Each turn runs in a fresh, warmed kernel. Four shapes of answer, each N tokens
of 4 characters: many short paragraphs; one paragraph without a blank line; one
fenced Python code block; a Markdown table (rows of about 40 characters, so
several hundred rows from 4,000 tokens). Counted: every iopub message from
sending the cell until the turn has reached all its views (the cell's own
status/execute_input, every comm_open/comm_msg/comm_close, display data),
bytes = the ZMQ frames as received. Not counted: the benchmark's own cells
(one that finds the widget's comm, ``t.wait()`` that tells it when the turn
ended) and their status messages.

* ours: ``%hermes -o t PROMPT``, with a view connected as a browser connects it:
  right after the cell, the benchmark sends the view's hello (a page without the
  view's code, so the reply carries the code and stylesheet too); then the live
  view's deltas, and the static rendering at the end;
* naive: ``naive_view.show(PROMPT)``: one ``ipywidgets.HTML`` whose value is the whole
  rendered Markdown, set on every Token event (bench/naive_view.py). Its bytes
  depend only on the text, so it runs once (the first run), not every run, and only
  up to NAIVE_MAX tokens.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from common import TOKEN_CHARS, answer_text, rule, spread, summary
from kernel import hermes_kernel, window

TITLE = "Streaming cost"
SHAPES = ["paragraphs", "one paragraph", "code block", "table"]
TAGS = {"paragraphs": "p", "one paragraph": "o", "code block": "c", "table": "t"}
VIEWS = {
    "ours": "%hermes -o t [{tag}{n}]",
    "naive": "import naive_view\nt = naive_view.show('[{tag}{n}]')",
}
FIND_COMM = "from comm import get_comm_manager\nprint(list(get_comm_manager().comms)[-1])"
# The naive view re-renders the whole answer per token: a 16,000-token table takes over ten minutes
# of kernel CPU (and a gigabyte of traffic). The targets compare with it at 4,000 tokens.
NAIVE_MAX = 4000


# ----- the answers ---------------------------------------------------------------------------

def _lines(tokens: int, head: str, line, tail: str) -> str:
    size = tokens * TOKEN_CHARS - len(tail)
    parts, used, i = [head], len(head), 0
    while used < size:
        text = line(i)
        parts.append(text)
        used += len(text)
        i += 1
    return "".join(parts) + tail


def shape_text(shape: str, tokens: int) -> str:
    """An answer of `tokens` tokens (to within a line) of the given shape."""
    if shape == "paragraphs":
        return answer_text(tokens)
    if shape == "one paragraph":
        return answer_text(tokens).replace("\n\n", "  ")
    if shape == "code block":
        return _lines(tokens, "```python\n", lambda i: (
            f"    total_{i} = compute(rows[{i}], scale={i % 7}) + {i * 3}  # step {i}\n" if i % 5
            else f"def stage_{i}(rows, scale):\n"), "```\n")
    return _lines(tokens, "| id | region | value | note |\n|---:|---|---:|---|\n",
                  lambda i: f"| {i} | region-{i % 13} | {i * 37 % 1000} | item *{i}* |\n", "")


def rules(cfg: dict) -> list[dict]:
    return [rule(f"{TAGS[shape]}{n}", shape_text(shape, n), TOKEN_CHARS, 1 / cfg["rate"])
            for shape in SHAPES for n in cfg["sizes"]]


# ----- measuring -----------------------------------------------------------------------------

def peak_rate(times: list[float], width: float = 1.0) -> int:
    """The most messages in any `width`-second window."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def connect_view(kernel) -> set[str]:
    """Say hello to the turn's widget as a browser's view does; the ids of the benchmark's own cells."""
    found = kernel.run(FIND_COMM)
    comm_id = "".join(m.content.get("text", "") for m in kernel.messages
                      if m.parent == found.msg_id and m.msg_type == "stream").strip()
    content = {"type": "hello", "page": "bench", "have": [], "mid": "bench-hello"}
    msg = kernel.client.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}})
    kernel.client.shell_channel.send(msg)
    return {found.msg_id}


def measure(server, folder: Path, view: str, shape: str, n: int) -> dict:
    kernel = hermes_kernel(server, folder)
    try:
        sent_before = len(server.sent)
        start = len(kernel.messages)
        cell = kernel.send(VIEWS[view].format(tag=TAGS[shape], n=n))
        own = connect_view(kernel) if view == "ours" else set()
        waiter = kernel.run("assert t.wait(900) and t.status == 'done', t.status")
        kernel.settle(0.5)
        msgs = window(kernel.messages, start, own | {waiter.msg_id})
        to_mono = time.time() - time.monotonic()  # the server logs time.time(), messages time.monotonic()
        chunks = [t - to_mono for t, _ in server.content_chunks(sent_before)]
        times = [m.at for m in msgs]
        streaming = [t for t in times if chunks[0] <= t <= chunks[-1]]
        return {
            "messages": len(msgs), "bytes": sum(m.size for m in msgs),
            "comm_msg": sum(m.msg_type == "comm_msg" for m in msgs),
            "types": dict(Counter(m.msg_type for m in msgs)),
            "duration": times[-1] - cell.sent,
            "stream_rate": len(streaming) / (chunks[-1] - chunks[0]), "peak_1s": peak_rate(streaming),
            "peak_turn": peak_rate(times),
            "tokens_per_s": (len(chunks) - 1) / (chunks[-1] - chunks[0]),
        }
    finally:
        kernel.close()


def run(server, cfg: dict, folder: Path) -> dict:
    data: dict = {shape: {view: {str(n): [] for n in cfg["sizes"]} for view in VIEWS} for shape in SHAPES}
    for r in range(cfg["runs"]):
        for shape in SHAPES:
            for n in cfg["sizes"]:
                for view in VIEWS:
                    if view == "naive" and (r > 0 or n > NAIVE_MAX):
                        continue  # its bytes are a function of the text: once is enough
                    data[shape][view][str(n)].append(
                        measure(server, folder / f"{view}-{TAGS[shape]}{n}-{r}", view, shape, n))
    return data


# ----- the report ----------------------------------------------------------------------------

def _med(runs: list[dict], key: str) -> float:
    return summary(r[key] for r in runs)["median"]


def report(data: dict, cfg: dict) -> str:
    sizes = [str(n) for n in cfg["sizes"]]
    key = "4000" if "4000" in sizes else sizes[-1]
    lines = [
        (f"Token = 4 characters, one SSE chunk each; nominal rate {cfg['rate']} tokens/s "
         f"(one chunk every {1000 / cfg['rate']:g} ms); ours: {cfg['runs']} run(s) per cell of the table, naive: one "
         f"(deterministic) up to {NAIVE_MAX:,} tokens, each in a fresh warmed kernel; median (min–max). Messages and bytes: the whole turn, "
         "from the execute_request to the last message, with a view connected as a browser connects it (its "
         "hello answered with the view's code and stylesheet, as for the first turn on a page). \"Peak\": the most "
         "iopub messages in any one second, of the whole turn and while streaming (between the first and the "
         "last token the server sent)."),
        "",
    ]
    verdicts = {"rate": [], "linear": [], "naive": []}
    for shape in SHAPES:
        lines += [f"**{shape}**", "",
                  ("| tokens | view | achieved tokens/s | turn (s) | iopub messages | of which comm_msg "
                   "| peak messages in 1 s (turn / streaming) | bytes on the wire | bytes/token |"),
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for n in sizes:
            for view in VIEWS:
                runs = data[shape][view][n]
                if not runs:
                    continue
                lines.append(
                    f"| {int(n):,} | {view} | {spread([r['tokens_per_s'] for r in runs])} "
                    f"| {spread([r['duration'] for r in runs], digits=1)} | {spread([r['messages'] for r in runs])} "
                    f"| {spread([r['comm_msg'] for r in runs])} | {spread([r['peak_turn'] for r in runs])} / "
                    f"{spread([r['peak_1s'] for r in runs])} | {spread([r['bytes'] for r in runs])} "
                    f"| {_med(runs, 'bytes') / int(n):,.0f} |")
        ours = data[shape]["ours"]
        ratio = _med(ours[sizes[-1]], "bytes") / _med(ours[sizes[-2]], "bytes") if len(sizes) >= 2 else 0
        factor = _med(data[shape]["naive"][key], "bytes") / _med(ours[key], "bytes")
        peak = max(max(r["peak_turn"] for r in ours[n]) for n in sizes)
        verdicts["rate"].append((shape, peak))
        verdicts["linear"].append((shape, ratio))
        verdicts["naive"].append((shape, factor))
        lines += ["", (f"{shape}: {int(sizes[-1]):,} tokens cost {ratio:.2f}x the bytes of {int(sizes[-2]):,}; "
                       f"{factor:,.0f}x fewer bytes than naive at {int(key):,} tokens; at most {peak} messages in "
                       "any second of a turn."), ""]
    lines += ["Against the targets (every shape):"]
    worst = max(p for _, p in verdicts["rate"])
    lines.append(f"* ≤ 20 iopub messages in any second of a turn: **{'met' if worst <= 20 else 'missed'}**, at most "
                 f"{worst} ({', '.join(f'{s} {p}' for s, p in verdicts['rate'])}).")
    if len(sizes) >= 2:
        worst_ratio = max(r for _, r in verdicts["linear"])
        lines.append(f"* Bytes linear, {int(sizes[-1]):,} tokens ≤ 4.5x {int(sizes[-2]):,}: "
                     f"**{'met' if worst_ratio <= 4.5 else 'missed'}** "
                     f"({', '.join(f'{s} {r:.2f}x' for s, r in verdicts['linear'])}).")
    least = min(f for _, f in verdicts["naive"])
    lines.append(f"* ≥ 50x fewer bytes than the naive view at {int(key):,} tokens: **{'met' if least >= 50 else 'missed'}** "
                 f"({', '.join(f'{s} {f:,.0f}x' for s, f in verdicts['naive'])}).")
    return "\n".join(lines)
