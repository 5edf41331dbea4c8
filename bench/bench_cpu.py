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

The CPU is also split by thread (/proc/<pid>/task, named after the turn by the
kernel's own ``threading.enumerate()``, so naming costs the turn nothing): the
threads that ended with the turn are hermes-agent's per-request stream thread.
"""
from __future__ import annotations

import json
import os
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


THREAD_NAMES = ("import threading, json\n"
                "print(json.dumps({t.native_id: t.name for t in threading.enumerate()}))")
GROUPS = {  # a thread's name prefix -> its row in the split
    "hermes-scheduler": "hermes-scheduler (view flushes)", "hermes-idle": "hermes workers (dispatcher, turn)",
    "IOPub": "ipykernel IOPub", "MainThread": "kernel main thread",
}
ENDED = "ended with the turn (hermes-agent's stream)"


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of a process."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rpartition(")")[2].split()
        except OSError:
            continue  # ended while listed
        found[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def split(kernel, before: dict[int, float], after: dict[int, float], total: float) -> dict[str, float]:
    cell = kernel.run(THREAD_NAMES)
    text = "".join(m.content.get("text", "") for m in kernel.messages
                   if m.parent == cell.msg_id and m.msg_type == "stream")
    names = {int(k): v for k, v in json.loads(text.strip().splitlines()[-1]).items()}
    groups: dict[str, float] = {}
    for tid, cpu in after.items():
        name = names.get(tid, "")
        group = next((g for prefix, g in GROUPS.items() if name.startswith(prefix)), "other kernel threads")
        groups[group] = groups.get(group, 0.0) + cpu - before.get(tid, 0.0)
    groups[ENDED] = total - sum(groups.values())
    return groups


def rules(cfg: dict) -> list[dict]:
    return [rule("c", answer_text(cfg["tokens"]), 4, 1 / cfg["rate"])]


def measure(server, folder: Path, mode: str) -> dict:
    kernel = hermes_kernel(server, folder)
    try:
        kernel.settle(0.5)
        threads0, cpu0 = thread_cpu(kernel.process.pid), kernel.cpu()
        start = len(kernel.messages)
        cell = kernel.send(MODES[mode])
        own = connect_view(kernel) if mode == "widgets" else set()
        waiter = kernel.run("assert t.wait(600) and t.status == 'done', t.status")
        kernel.settle(0.3)
        threads1, cpu = thread_cpu(kernel.process.pid), kernel.cpu() - cpu0
        msgs = window(kernel.messages, start, own | {waiter.msg_id})
        return {"cpu": cpu, "wall": waiter.idle - cell.sent, "messages": len(msgs),
                "bytes": sum(m.size for m in msgs), "threads": split(kernel, threads0, threads1, cpu)}
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
    groups = sorted({g for runs in data.values() for r in runs for g in r.get("threads", {})},
                    key=lambda g: (g == "other kernel threads", g))
    if groups:
        lines += ["", "Where the CPU goes, by kernel thread (seconds, median over the runs):", "",
                  "| thread | " + " | ".join(data) + " | widgets over none |", "|---|" + "---:|" * (len(data) + 1)]
        for g in groups:
            med = {mode: summary(r["threads"].get(g, 0.0) for r in runs if "threads" in r)["median"]
                   for mode, runs in data.items()}
            lines.append(f"| {g} | " + " | ".join(f"{v:.2f}" for v in med.values())
                         + f" | {med['widgets'] - med['none']:+.2f} |")
        if all("threads" in r for runs in data.values() for r in runs):
            # The threads only the view keeps busy, apart from hermes-agent's stream thread: that one does the
            # same work in every mode, but its CPU moves by ~10% between identical turns and decides the total.
            own = [g for g in groups if g != ENDED and g != "other kernel threads"]
            extra = (summary(sum(r["threads"].get(g, 0.0) for g in own) for r in data["widgets"])["median"]
                     - summary(sum(r["threads"].get(g, 0.0) for g in own) for r in data["none"])["median"])
            lines += ["", (f"The view's own threads (all rows but hermes-agent's stream and the other threads): "
                           f"+{extra:.2f} s, +{extra / base:.0%} of the no-renderer turn.")]
    widgets = summary(r["cpu"] for r in data["widgets"])["median"]
    wall = summary(r["wall"] for r in data["widgets"])["median"]
    lines += ["", (f"Widget view < 10% over no renderer: **{'met' if widgets < base * 1.1 else 'missed'}**, "
               f"+{(widgets - base) / base:.0%} (+{widgets - base:.2f} s of CPU over a {wall:.0f} s turn, "
               f"{(widgets - base) / wall:.1%} of one core).")]
    return "\n".join(lines)
