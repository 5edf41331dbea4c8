"""2. Streaming cost: iopub messages and bytes of one streamed turn, ours vs a naive view.

Each turn runs in a fresh, warmed kernel. Counted: every iopub message from
sending the cell until the turn has reached all its views (the cell's own
status/execute_input, every comm_open/comm_msg/comm_close, display data),
bytes = the ZMQ frames as received. Not counted: a second cell,
``t.wait()``, that tells the benchmark when the turn has ended (its own
status and execute_input messages).

* ours: ``%hermes -o t PROMPT`` (the live widget view, then the static rendering);
* naive: ``naive_view.show(PROMPT)``: one ``ipywidgets.HTML`` whose value is the whole
  rendered Markdown, set on every Token event (bench/naive_view.py).
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from common import answer_text, rule, spread, summary
from kernel import hermes_kernel, window

TITLE = "Streaming cost"
VIEWS = {
    "ours": "%hermes -o t [s{n}]",
    "naive": "import naive_view\nt = naive_view.show('[s{n}]')",
}


def rules(cfg: dict) -> list[dict]:
    return [rule(f"s{n}", answer_text(n), 4, 1 / cfg["rate"]) for n in cfg["sizes"]]


def peak_rate(times: list[float], width: float = 1.0) -> int:
    """The most messages in any `width`-second window."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def measure(server, folder: Path, view: str, n: int) -> dict:
    kernel = hermes_kernel(server, folder)
    try:
        sent_before = len(server.sent)
        start = len(kernel.messages)
        cell = kernel.send(VIEWS[view].format(n=n))
        waiter = kernel.run("assert t.wait(600) and t.status == 'done', t.status")
        kernel.settle(0.5)
        msgs = window(kernel.messages, start, {waiter.msg_id})
        to_mono = time.time() - time.monotonic()  # the server logs time.time(), messages time.monotonic()
        chunks = [t - to_mono for t, _ in server.content_chunks(sent_before)]
        times = [m.at for m in msgs]
        streaming = [t for t in times if chunks[0] <= t <= chunks[-1]]
        duration = times[-1] - cell.sent
        return {
            "messages": len(msgs), "bytes": sum(m.size for m in msgs),
            "comm_msg": sum(m.msg_type == "comm_msg" for m in msgs),
            "types": dict(Counter(m.msg_type for m in msgs)),
            "duration": duration,
            "stream_rate": len(streaming) / (chunks[-1] - chunks[0]), "peak_1s": peak_rate(streaming),
            "tokens_per_s": (len(chunks) - 1) / (chunks[-1] - chunks[0]),
        }
    finally:
        kernel.close()


def run(server, cfg: dict, folder: Path) -> dict:
    data: dict = {view: {str(n): [] for n in cfg["sizes"]} for view in VIEWS}
    for r in range(cfg["runs"]):
        for n in cfg["sizes"]:
            for view in VIEWS:
                data[view][str(n)].append(measure(server, folder / f"{view}-{n}-{r}", view, n))
    return data


def _med(runs: list[dict], key: str) -> float:
    return summary(r[key] for r in runs)["median"]


def report(data: dict, cfg: dict) -> str:
    sizes = [str(n) for n in cfg["sizes"]]
    lines = [
        (f"Token = 4 characters, one SSE chunk each; nominal rate {cfg['rate']} tokens/s "
         f"(script `chunk_size: 4`, one chunk every {1000 / cfg['rate']:g} ms); {cfg['runs']} run(s) per cell of the table, "
         "each in a fresh warmed kernel; median (min–max). Messages and bytes: the whole turn, from the "
         "execute_request to the last message; \"while streaming\": between the first and the last token "
         "sent by the server (leaves out the opening display and the final static rendering and comm_close burst)."),
        "",
        ("| tokens | view | achieved tokens/s | turn (s) | iopub messages | of which comm_msg "
         "| messages/s while streaming | peak messages in 1 s while streaming | bytes on the wire | bytes/token |"),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for view in VIEWS:
            runs = data[view][n]
            lines.append(
                f"| {int(n):,} | {view} | {spread([r['tokens_per_s'] for r in runs])} "
                f"| {spread([r['duration'] for r in runs], digits=1)} "
                f"| {spread([r['messages'] for r in runs])} | {spread([r['comm_msg'] for r in runs])} "
                f"| {spread([r['stream_rate'] for r in runs], digits=1)} | {spread([r['peak_1s'] for r in runs])} "
                f"| {spread([r['bytes'] for r in runs])} | {_med(runs, 'bytes') / int(n):,.0f} |")
    lines.append("")
    for n in sizes:
        ours, naive = _med(data["ours"][n], "bytes"), _med(data["naive"][n], "bytes")
        om, nm = _med(data["ours"][n], "messages"), _med(data["naive"][n], "messages")
        lines.append(f"* {int(n):,} tokens: ours {ours / 1e3:,.0f} kB in {om:,.0f} messages, naive "
                     f"{naive / 1e6:,.2f} MB in {nm:,.0f} messages: **{naive / ours:,.0f}x fewer bytes**, "
                     f"{nm / om:,.0f}x fewer messages.")
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        ratio = _med(data["ours"][b], "bytes") / _med(data["ours"][a], "bytes")
        lines.append(f"* Linearity (ours): {int(b):,} tokens cost {ratio:.2f}x the bytes of {int(a):,} "
                     f"({int(b) / int(a):.0f}x the tokens).")
    lines += ["", "Against the targets:"]
    rate = max(_med(data["ours"][n], "stream_rate") for n in sizes)
    peak = max(_med(data["ours"][n], "peak_1s") for n in sizes)
    lines.append(f"* ≤ ~20 messages/s per turn: **{'met' if rate <= 20 else 'missed'}**, {rate:.1f} messages/s "
                 f"while streaming (worst size, median), peak {peak:.0f} in one second.")
    if len(sizes) >= 2:
        lines.append(f"* Bytes linear, {int(b):,} ≤ ~4.5x {int(a):,}: **{'met' if ratio <= 4.5 else 'missed'}**, "
                     f"{ratio:.2f}x.")
    key = "4000" if "4000" in sizes else sizes[-1]
    factor = _med(data["naive"][key], "bytes") / _med(data["ours"][key], "bytes")
    lines.append(f"* ≥ 50x fewer bytes than naive at {int(key):,} tokens: **{'met' if factor >= 50 else 'missed'}**, "
                 f"{factor:.0f}x.")
    return "\n".join(lines)
