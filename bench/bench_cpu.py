"""4. Kernel CPU spent on the UI, for one long streamed answer.

CPU time (user + system, psutil) of the kernel process from sending the cell
until the turn has reached its views, for the same answer with:

* none: ``get_engine().submit(PROMPT)`` and no subscriber but the history writer (baseline);
* text: ``%hermes --plain`` (the text view writing to the cell's stdout);
* widgets: ``%hermes`` (the live widget view), with a view connected as a browser's
  connects (its hello, answered with the view's code), so every delta is sent.

The scripted model server runs in the benchmark process, so none of its work
is counted. Each turn runs in a fresh warmed kernel; the order of the modes
rotates between runs.
"""
from __future__ import annotations

from pathlib import Path

from bench_stream import connect_view
from common import answer_text, rule, spread, summary
from kernel import hermes_kernel, window

TITLE = "Kernel CPU spent on the UI"
MODES = {
    "none": "from hermes_jupyter import get_engine\nt = get_engine().submit('[c]')",
    "text": "%hermes --plain -o t [c]",
    "widgets": "%hermes -o t [c]",
}


def rules(cfg: dict) -> list[dict]:
    return [rule("c", answer_text(cfg["tokens"]), 4, 1 / cfg["rate"])]


def measure(server, folder: Path, mode: str) -> dict:
    kernel = hermes_kernel(server, folder)
    try:
        kernel.settle(0.5)
        cpu0 = kernel.cpu()
        start = len(kernel.messages)
        cell = kernel.send(MODES[mode])
        own = connect_view(kernel) if mode == "widgets" else set()
        waiter = kernel.run("assert t.wait(600) and t.status == 'done', t.status")
        kernel.settle(0.3)
        cpu = kernel.cpu() - cpu0
        msgs = window(kernel.messages, start, own | {waiter.msg_id})
        return {"cpu": cpu, "wall": waiter.idle - cell.sent, "messages": len(msgs),
                "bytes": sum(m.size for m in msgs)}
    finally:
        kernel.close()


def run(server, cfg: dict, folder: Path) -> dict:
    data: dict[str, list[dict]] = {mode: [] for mode in MODES}
    order = list(MODES)
    for r in range(cfg["runs"]):
        for mode in order:
            data[mode].append(measure(server, folder / f"{mode}-{r}", mode))
        order = order[1:] + order[:1]
    return data


def report(data: dict, cfg: dict) -> str:
    base = summary(r["cpu"] for r in data["none"])["median"]
    lines = [
        (f"{cfg['tokens']:,}-token answer at a nominal {cfg['rate']} tokens/s; {cfg['runs']} run(s); "
         "median (min–max)."),
        "",
        "| renderer | kernel CPU (s) | wall (s) | CPU over no renderer | iopub messages | bytes on the wire |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, runs in data.items():
        cpu = summary(r["cpu"] for r in runs)["median"]
        extra = "–" if mode == "none" else f"+{cpu - base:.2f} s (+{(cpu - base) / base:.0%})"
        lines.append(f"| {mode} | {spread([r['cpu'] for r in runs], digits=2)} "
                     f"| {spread([r['wall'] for r in runs], digits=1)} | {extra} "
                     f"| {spread([r['messages'] for r in runs])} | {spread([r['bytes'] for r in runs])} |")
    widgets = summary(r["cpu"] for r in data["widgets"])["median"]
    wall = summary(r["wall"] for r in data["widgets"])["median"]
    lines += ["", (f"Widget view < 10% over no renderer: **{'met' if widgets < base * 1.1 else 'missed'}**, "
               f"+{(widgets - base) / base:.0%} (+{widgets - base:.2f} s of CPU over a {wall:.0f} s turn, "
               f"{(widgets - base) / wall:.1%} of one core).")]
    return "\n".join(lines)
