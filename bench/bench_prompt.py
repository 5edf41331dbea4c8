"""1. Return to prompt: from sending ``%hermes ...`` (execute_request) to the cell's idle status.

Baseline: a trivial cell ``pass`` in the same kernel. Three cases:

* first call: the first ``%hermes`` after ``%load_ext`` (one per fresh kernel);
* warm: later calls, each after the previous turn has ended;
* warm, busy: later calls while another session streams an answer at the bench rate.
"""
from __future__ import annotations

from pathlib import Path

from common import answer_text, rule, spread, summary
from kernel import hermes_kernel

TITLE = "Return to prompt"
WAIT = "assert _hermes.wait(120) and _hermes.status == 'done', _hermes.status"  # not timed


def rules(cfg: dict) -> list[dict]:
    return [rule("bg", answer_text(cfg["busy_tokens"]), 4, 1 / cfg["rate"])]


def _timed(kernel, code: str) -> float:
    return kernel.run(code).return_time


def run(server, cfg: dict, folder: Path) -> dict:
    data: dict[str, list[float]] = {"pass": [], "first": [], "warm": [], "busy_pass": [], "busy": []}
    for k in range(cfg["kernels"]):
        kernel = hermes_kernel(server, folder / f"k{k}", warm=False)
        try:
            for _ in range(cfg["calls"]):
                data["pass"].append(_timed(kernel, "pass"))
            data["first"].append(_timed(kernel, "%hermes [ping] first"))
            kernel.run(WAIT)
            for i in range(cfg["calls"]):
                data["pass"].append(_timed(kernel, "pass"))
                data["warm"].append(_timed(kernel, f"%hermes [ping] warm {i}"))
                kernel.run(WAIT)
            # Another session streams while we ask in "main" (each ping waits for the previous one).
            kernel.run("%hermes -s bg -o bg [bg]\n%hermes /use main")
            for i in range(cfg["calls"]):
                data["busy_pass"].append(_timed(kernel, "pass"))
                data["busy"].append(_timed(kernel, f"%hermes [ping] busy {i}"))
                kernel.run(WAIT)
            kernel.run("assert bg.wait(600) and bg.status == 'done', bg.status")
        finally:
            kernel.close()
    return data


def report(data: dict) -> str:
    ms = dict(unit=" ms", scale=1000, digits=1)
    rows = [
        ("baseline: `pass`", data["pass"]),
        ("`%hermes` first call after `%load_ext`", data["first"]),
        ("`%hermes` warm", data["warm"]),
        ("baseline: `pass`, another turn streaming", data["busy_pass"]),
        ("`%hermes` warm, another turn streaming", data["busy"]),
    ]
    lines = ["| cell | n | return to prompt, median (min–max) |", "|---|---:|---:|"]
    lines += [f"| {name} | {len(v)} | {spread(v, **ms)} |" for name, v in rows]
    warm = summary(data["warm"])
    lines += ["", (f"{'**Met**' if warm['median'] < 0.1 else '**Missed**'}: warm median {warm['median'] * 1000:.0f} ms "
               f"(max {warm['max'] * 1000:.0f} ms), {(warm['median'] - summary(data['pass'])['median']) * 1000:.0f} ms "
               "over the `pass` baseline.")]
    return "\n".join(lines)
