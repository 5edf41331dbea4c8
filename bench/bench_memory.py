"""6. Memory: kernel RSS over many turns in one session, and the weight of a saved notebook.

* Kernel: a fresh warmed kernel runs a few turns first (what only a first turn
  costs: lazy imports, the session's agent, caches that fill once), then N turns
  in one session with the widget view,
  either ``%hermes --wait PROMPT`` (no view connected: nobody says hello, as under
  nbclient) or ``%hermes -o t PROMPT`` with a view connected as a browser connects
  it, followed by a ``t.wait()`` cell (the cell returns at once; the turn ends
  before the next one);
  baseline: the same with the text view (``--plain --wait``), no widgets.
  RSS of the kernel process before and after the N turns, and the widgets still
  alive in it. Each mode runs ``runs`` times in fresh kernels: one run's figure
  moves by ±20 KiB a turn with how the C heap happens to fragment.
* Notebook: nbclient executes a generated notebook of N ``%hermes`` cells (it
  stores widget state in the notebook metadata by default); the file is
  written with nbformat and weighed: whole file, outputs, widget state.
"""
from __future__ import annotations

import json
import os
import re
import statistics
from pathlib import Path

from bench_stream import connect_view
from common import answer_text, rule
from kernel import hermes_kernel

TITLE = "Memory and notebook size"
COUNT_CODE = ("import gc; gc.collect()\n"
              "from ipywidgets.widgets.widget import _instances\n"
              "from hermes_jupyter import get_engine\n"
              "_s = get_engine().session()\n"
              "print('LIVE', len(_instances), len(_s.turns), sum(len(t.events) for t in _s.turns))")
CELLS = {
    "plain (baseline)": ["%hermes --plain --wait [m] turn {i}"],
    "wait": ["%hermes --wait [m] turn {i}"],
    "no wait": ["%hermes -o t [m] turn {i}", "assert t.wait(120) and t.status == 'done', t.status"],
}


def rules(cfg: dict) -> list[dict]:
    return [rule("m", answer_text(cfg["answer_tokens"]), 4, 0.0)]


def _counts(kernel) -> dict:
    cell = kernel.run(COUNT_CODE)
    text = "".join(m.content.get("text", "") for m in kernel.messages
                   if m.parent == cell.msg_id and m.msg_type == "stream")
    live, turns, events = map(int, re.search(r"LIVE (\d+) (\d+) (\d+)", text).groups())
    return {"live_widgets": live, "turns_in_memory": turns, "events_in_memory": events}


def kernel_rss(server, folder: Path, mode: str, turns: int, warm: int = 0) -> dict:
    kernel = hermes_kernel(server, folder)
    try:
        def turn(i: int) -> None:
            for j, code in enumerate(CELLS[mode]):
                kernel.run(code.format(i=i))
                if mode == "no wait" and j == 0:
                    connect_view(kernel)  # as a browser's view does: the live view sends its deltas

        for i in range(warm):
            turn(-1 - i)
        kernel.settle(0.5)
        before = _counts(kernel) | {"rss": kernel.rss()}
        samples = []
        for i in range(turns):
            turn(i)
            if (i + 1) % max(1, turns // 4) == 0:
                samples.append((i + 1, kernel.rss()))
        kernel.settle(0.5)
        after = _counts(kernel) | {"rss": kernel.rss()}
        return {"before": before, "after": after, "samples": samples, "warm": warm}
    finally:
        kernel.close()


def growth(d: dict, turns: int) -> float:
    """KiB a turn over the measured turns."""
    return (d["after"]["rss"] - d["before"]["rss"]) / turns / 1024


def notebook_size(server, folder: Path, mode: str, turns: int) -> dict:
    import nbformat
    from nbclient import NotebookClient

    folder.mkdir(parents=True, exist_ok=True)
    cells = [nbformat.v4.new_code_cell(server.setup_code())]
    cells += [nbformat.v4.new_code_cell("\n".join(CELLS[mode]).format(i=i)) for i in range(turns)]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    env_home = os.environ.get("HERMES_HOME")
    os.environ["HERMES_HOME"] = str(folder / ".hermes-home")  # the kernel inherits this process' environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        if env_home is not None:
            os.environ["HERMES_HOME"] = env_home
    path = folder / f"{mode.replace(' ', '-')}.ipynb"
    nbformat.write(nb, path)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    outputs = sum(len(json.dumps(c.get("outputs", []))) for c in nb.cells)
    return {"file": path.stat().st_size, "outputs": outputs, "widget_state": len(json.dumps(state)),
            "widget_models": len(state),
            "widget_models_by_name": _by_name(state)}


def _by_name(state: dict) -> dict:
    out: dict[str, int] = {}
    for model in state.values():
        out[model.get("model_name") or "?"] = out.get(model.get("model_name") or "?", 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def run(server, cfg: dict, folder: Path) -> dict:
    data: dict = {"kernel": {}, "notebook": {}}
    for r in range(cfg.get("runs", 1)):
        for i, mode in enumerate(CELLS):
            run_ = _guarded(kernel_rss, server, folder / f"rss-{i}-{r}", mode, cfg["turns"], cfg.get("warm", 0))
            data["kernel"].setdefault(mode, run_ | {"runs": []})["runs"].append(run_)
    for i, mode in enumerate(CELLS):
        data["notebook"][mode] = _guarded(notebook_size, server, folder / f"nb-{i}", mode, cfg["cells"])
    return data


def _guarded(fn, *args) -> dict:
    """One part's figures, or its error: the other parts still run."""
    try:
        return fn(*args)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def report(data: dict, cfg: dict) -> str:
    n, cells = cfg["turns"], cfg["cells"]
    runs = cfg.get("runs", 1)
    lines = [
        (f"Each turn streams a {cfg['answer_tokens']:,}-token answer as fast as the server sends it; "
        f"{cfg.get('warm', 0)} turns before the first reading; {runs} run{'s' if runs > 1 else ''} per mode, each "
        "in a fresh kernel (the first run's figures in the table, every run's growth in the last column)."),
        "",
        (f"| {n} turns in one session | RSS before | RSS after | growth per turn "
         "| RSS along the way | widgets alive before → after | turns / events kept in memory "
         "| growth per turn, each run (median) |"),
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for mode, d in data["kernel"].items():
        if "error" in d:
            lines.append(f"| {mode} | failed: {d['error']} | | | | | | |")
            continue
        b, a = d["before"], d["after"]
        each = [growth(r, n) for r in d.get("runs", [d]) if "error" not in r]
        lines.append(
            f"| `{CELLS[mode][0].format(i='N')}`{' + `t.wait()`' if mode == 'no wait' else ''} "
            f"| {b['rss'] / 2**20:.0f} MiB | {a['rss'] / 2**20:.0f} MiB | {(a['rss'] - b['rss']) / n / 1024:.0f} KiB "
            f"| {', '.join(f'{i}: {r / 2**20:.0f}' for i, r in d['samples'])} MiB "
            f"| {b['live_widgets']} → {a['live_widgets']} | {a['turns_in_memory']} / {a['events_in_memory']:,} "
            f"| {', '.join(f'{g:.0f}' for g in each)} (**{statistics.median(each):.0f} KiB**) |")
    lines += [
        "",
        (f"| notebook of {cells} `%hermes` cells run by nbclient | file | outputs | widget state (metadata) "
         "| widget models saved |"),
        "|---|---:|---:|---:|---:|",
    ]
    for mode, d in data["notebook"].items():
        if "error" in d:
            lines.append(f"| {mode} | failed: {d['error']} | | | |")
            continue
        top = ", ".join(f"{k} {v}" for k, v in list(d["widget_models_by_name"].items())[:4])
        lines.append(f"| {mode} | {d['file'] / 1e6:.2f} MB | {d['outputs'] / 1e6:.2f} MB "
                     f"| {d['widget_state'] / 1e6:.2f} MB | {d['widget_models']:,} ({top}) |")
    medians = {m: statistics.median(growth(r, n) for r in d.get("runs", [d]) if "error" not in r)
               for m, d in data["kernel"].items() if "error" not in d}
    if medians:
        worst = max(medians.values())
        lines += ["", (f"Kernel RSS per finished turn (median of the runs), target < 50 KiB: "
                      f"{', '.join(f'{m} {g:.0f}' for m, g in medians.items())} KiB "
                      f"(**{'met' if worst < 50 else 'missed'}**).")]
    lines += ["", "Finished turns close their live widgets:"]
    for mode, d in data["kernel"].items():
        if "error" not in d and mode in ("wait", "no wait"):
            left = d["after"]["live_widgets"] - d["before"]["live_widgets"]
            lines.append(f"* {mode}: **{'yes' if left == 0 else 'no'}**, {left} widgets still open in the kernel "
                         f"after {n} turns ({left / n:.0f} per turn).")
    for mode, d in data["notebook"].items():
        if "error" not in d and mode in ("wait", "no wait"):
            lines.append(f"* saved notebook, {mode}: widget state {d['widget_state'] / cells / 1e3:.1f} kB and "
                         f"{d['widget_models'] / cells:.0f} widget models per turn (nbclient keeps the last state of "
                         "every widget ever opened, closed or not).")
    return "\n".join(lines)
