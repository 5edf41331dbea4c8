"""3. Token-to-screen latency in a real browser (JupyterLab, headless Chromium via Playwright).

The scripted answer is a run of unique markers, one per SSE chunk
(``x00042`` padded to 8 characters = 2 tokens). The benchmark's scripted
server records the wall-clock time (``time.time()``) right after writing each
chunk to the socket; in the page, a MutationObserver on the cell's output
records ``performance.timeOrigin + performance.now()`` when each marker first
appears in the DOM. Latency = first seen - sent, for every chunk of every run.
Both clocks are this machine's; their offset is checked with round trips.
"""
from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from pathlib import Path

from common import MARKER_CHARS, TOKEN_CHARS, Skipped, kernel_env, marker_text, percentile, rule, spread

TITLE = "Token-to-screen latency in JupyterLab"
TOKENS_PER_CHUNK = MARKER_CHARS // TOKEN_CHARS
MARKER = re.compile(r"x(\d{5})")

OBSERVE_JS = r"""(idx) => {
  const cell = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[idx];
  const area = cell.querySelector('.jp-Cell-outputWrapper');
  const seen = new Map();
  const scan = () => {
    const now = performance.timeOrigin + performance.now();
    for (const m of area.textContent.matchAll(/x(\d{5})/g)) if (!seen.has(m[1])) seen.set(m[1], now);
  };
  if (window.__benchObserver) window.__benchObserver.disconnect();
  window.__benchObserver = new MutationObserver(scan);
  window.__benchObserver.observe(area, {childList: true, subtree: true, characterData: true});
  window.__benchSeen = seen;
  return true;
}"""


def rules(cfg: dict) -> list[dict]:
    return [rule(f"l{rate}", marker_text(cfg["tokens"][str(rate)] // TOKENS_PER_CHUNK), MARKER_CHARS,
                 TOKENS_PER_CHUNK / rate) for rate in cfg["rates"]]


def clock_offset(page) -> dict:
    """Browser clock minus Python's time.time(), from round trips (ms)."""
    samples = []
    for _ in range(9):
        t0 = time.time()
        browser = page.evaluate("() => performance.timeOrigin + performance.now()")
        t1 = time.time()
        samples.append((t1 - t0, browser - (t0 + t1) / 2 * 1000))
    samples.sort()
    best = samples[:5]  # the fastest round trips
    return {"offset_ms": statistics.median(o for _, o in best),
            "round_trip_ms": statistics.median(rt for rt, _ in best) * 1000}


def histogram(latencies: list[float]) -> dict[str, int]:
    """Latencies counted in 1-ms bins ({"42": 17}: 17 chunks took 41.5–42.5 ms), small enough to keep."""
    return {str(k): v for k, v in sorted(Counter(round(x) for x in latencies).items())}


def samples(run: dict) -> list[float]:
    if "latencies_ms" in run:  # raw samples (older result files)
        return [float(round(x)) for x in run["latencies_ms"]]
    return [float(k) for k, v in run["histogram_ms"].items() for _ in range(v)]


def compact(data: dict) -> dict:
    for run in data.get("runs", []):
        if "latencies_ms" in run:
            run["histogram_ms"] = histogram(run.pop("latencies_ms"))
    return data


VIEWS = {
    "ours": "%hermes [l{rate}] run {r}",
    "naive": "import naive_view\nt = naive_view.show('[l{rate}] naive run {r}')",
}


def run(server, cfg: dict, folder: Path) -> dict:
    from tests.browser import _missing

    if _missing():
        raise Skipped(_missing())
    from lab import lab_page
    from playwright.sync_api import expect

    from tests.browser import cell_output, open_notebook, run_cell, write_notebook

    plan = [(view, rate, r) for rate in cfg["rates"] for r in range(cfg["runs"]) for view in VIEWS]
    cells = [server.setup_code(), "%hermes --wait [ping]"]
    cells += [VIEWS[view].format(rate=rate, r=r) for view, rate, r in plan]
    data: dict = {"runs": [], "clock": []}
    with lab_page(folder, kernel_env(folder / "hermes-home")) as (lab, page):
        data["lab_startup_s"] = lab.startup_seconds
        write_notebook(lab.root, "latency.ipynb", cells)
        open_notebook(page, lab, "latency.ipynb")
        run_cell(page, 0)
        run_cell(page, 1, timeout=120_000)
        expect(cell_output(page, 1).locator(".hermes-turn")).to_be_visible(timeout=120_000)
        data["clock"].append(clock_offset(page))
        for index, (view, rate, r) in enumerate(plan, start=2):
            page.evaluate(OBSERVE_JS, index)
            start = len(server.sent)
            run_cell(page, index)
            chunks = cfg["tokens"][str(rate)] // TOKENS_PER_CHUNK
            timeout = (chunks * TOKENS_PER_CHUNK / rate * 3 + 60) * 1000
            if view == "ours":  # the static rendering replaces the live view (also a .hermes-turn) at the end
                expect(cell_output(page, index).locator(".hermes-turn:not(.hermes-live)")).to_be_visible(timeout=timeout)
            else:
                page.wait_for_function("n => window.__benchSeen.size >= n", arg=chunks, timeout=timeout)
            page.wait_for_timeout(200)  # let the last mutations land
            seen = dict(page.evaluate("() => Array.from(window.__benchSeen.entries())"))
            sent = [(t, MARKER.search(piece).group(1)) for t, piece in server.content_chunks(start)]
            latencies = [seen[m] - t * 1000 for t, m in sent if m in seen]
            data["runs"].append({
                "view": view, "rate": rate, "run": r, "chunks": len(sent),
                "missing": sum(m not in seen for _, m in sent),
                "tokens_per_s": TOKENS_PER_CHUNK * (len(sent) - 1) / (sent[-1][0] - sent[0][0]),
                "histogram_ms": histogram(latencies),
            })
        data["clock"].append(clock_offset(page))
    return data


def report(data: dict, cfg: dict) -> str:
    offsets = [c["offset_ms"] for c in data["clock"]]
    lines = [
        (f"{cfg['runs']} run(s) per rate and view in one JupyterLab page; every chunk of every run is a sample "
         "(counted in 1-ms bins). Baseline: the naive view (bench/naive_view.py: the whole answer re-sent on every "
         "token, no coalescing). "
         f"Clock check (browser − Python, best round trips): {', '.join(f'{o:+.1f} ms' for o in offsets)} "
         "(not subtracted)."),
        "",
        ("| nominal tokens/s | view | achieved tokens/s | tokens per run | samples | p50 (ms) | p95 (ms) | max (ms) "
         "| per-run p95 (ms), median (min–max) | missing |"),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    views = [v for v in VIEWS if any(r.get("view", "ours") == v for r in data["runs"])]
    for rate in cfg["rates"]:
        for view in views:
            runs = [r for r in data["runs"] if r["rate"] == rate and r.get("view", "ours") == view]
            pooled = [x for r in runs for x in samples(r)]
            lines.append(
                f"| {rate:,} | {view} | {spread([r['tokens_per_s'] for r in runs])} | {cfg['tokens'][str(rate)]:,} "
                f"| {len(pooled):,} | {percentile(pooled, 50):.0f} | {percentile(pooled, 95):.0f} "
                f"| {max(pooled):.0f} | {spread([percentile(samples(r), 95) for r in runs])} "
                f"| {sum(r['missing'] for r in runs)} |")
    lines += [""]
    for rate in cfg["rates"]:
        pooled = [x for r in data["runs"] if r["rate"] == rate and r.get("view", "ours") == "ours" for x in samples(r)]
        p95 = percentile(pooled, 95)
        lines.append(f"* p95 < 150 ms at {rate:,} tokens/s: **{'met' if p95 < 150 else 'missed'}**, {p95:.0f} ms.")
    return "\n".join(lines)
