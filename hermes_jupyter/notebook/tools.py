"""The ``notebook`` toolset: the agent sees the user's variables and, with approval, runs code in the kernel.

    notebook_list_variables      the user's variables: name, type, shape         (read-only)
    notebook_describe_variable   one variable in detail, bounded                 (read-only)
    notebook_run_python          code in the kernel's namespace, after approval  (kernel_runner)
    notebook_read_cells          the notebook's cells as saved on disk           (read-only)

The tools are registered with hermes-agent's process-wide registry once, from
``hosting.ensure_installed`` on a turn's worker thread, and are on by default
(``settings.DEFAULT_TOOLSETS``). A handler finds its turn through
``notebook.host.current_host`` and the shell through it (the magic
sets ``engine.shell``), else ``IPython.get_ipython()``.

The read-only tools run on the agent's thread and only read the namespace;
a run of code goes through ``kernel_runner`` (main thread, between cells).

Safety: a variable whose name looks secret (key, token, secret, password,
credential, api...) or whose string value looks like a key is never listed,
described or attached; the values of such variables and the user's configured
keys are redacted from everything the model gets; and everything the model
gets is bounded.
"""
from __future__ import annotations

import collections
import functools
import json
import logging
import re
import reprlib
import sys
import threading
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hermes_jupyter import events as ev
from hermes_jupyter.notebook.host import ToolHost, current_host
from hermes_jupyter.notebook.outputs import CodeOutput
from hermes_jupyter.notebook.runner import Job, runner_for
from hermes_jupyter.safety.redact import configured_secret_values, is_secret_name, redact_text
from hermes_jupyter.util.text import cut

log = logging.getLogger("hermes_jupyter")

TOOLSET = "notebook"
APPROVAL_PATTERN = "notebook_run_python"
RUN_DESCRIPTION = "Run Python in your kernel"
LIST_LIMIT = 200  # variables listed at most
OUTPUT_CHARS = 8_000  # what one read-only tool returns, at most
BRIEF_CHARS = 1_500  # one --vars summary, at most
VARS_CHARS = 6_000  # all --vars summaries, at most
CELL_CHARS, CELLS_CHARS = 2_000, 12_000
EXACT_ROWS = 1_000_000  # describe() beyond this many rows works on a sample
EXACT_ELEMENTS = 10_000_000  # array statistics beyond this many elements work on a sample
WAIT_NOTICE = 0.5  # seconds before "waiting for the running cell" is shown

_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
_SECRET_PARTS = frozenset({"key", "token", "secret", "secrets", "password", "passwords", "passwd", "pwd",
                           "passphrase", "credential", "credentials", "creds", "api", "apikey", "auth"})
_SECRET_INFIXES = ("password", "passwd", "secret", "credential", "apikey", "api_key", "privatekey",
                   "accesskey", "accesstoken", "authtoken")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# ----- what is secret ------------------------------------------------------------------------------


def secret_name(name: str) -> bool:
    """True for names such as api_key, OPENAI_API_KEY, githubToken, db_password, credentials."""
    lowered = name.lower()
    if any(infix in lowered for infix in _SECRET_INFIXES) or is_secret_name(name):
        return True
    return any(part.lower() in _SECRET_PARTS for part in _WORD.findall(name))


def looks_secret(name: str, value: Any) -> bool:
    if secret_name(name):
        return True
    return _key_shaped(value)


def _key_shaped(value: Any) -> bool:
    """A string that is itself a key ("sk-…", a JWT, a PEM block), not text that contains one."""
    if not isinstance(value, str) or not 8 <= len(value) <= 20_000:
        return False
    value = value.strip()
    if "PRIVATE KEY-----" not in value and any(c.isspace() for c in value):
        return False
    return bool(redact_text(value) != value)


def secret_values(shell: Any) -> set[str]:
    """Values to remove from what the model gets: secret variables' strings, configured keys."""
    found = set(configured_secret_values())
    for name, value in list(_namespace(shell).items()):
        if (isinstance(name, str) and not name.startswith("_") and isinstance(value, str)
                and 8 <= len(value) <= 20_000 and looks_secret(name, value)):
            found.add(value)
    return found


def _redactor(shell: Any) -> Callable[[str], str]:
    secrets = secret_values(shell)
    return lambda text: redact_text(text, secrets) if isinstance(text, str) else text


# ----- the namespace ---------------------------------------------------------------------------------


def _namespace(shell: Any) -> dict[str, Any]:
    return getattr(shell, "user_ns", None) or {}


def _is_code(value: Any) -> bool:
    if isinstance(value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
                          types.MethodType, types.BuiltinMethodType, functools.partial)):
        return True
    module = getattr(type(value), "__module__", "") or ""
    return module.startswith(("hermes_jupyter", "IPython."))  # turn handles, exit/quit


def user_variables(shell: Any) -> tuple[list[tuple[str, Any]], int]:
    """(name, value) of the user's variables, sorted, and how many were hidden as secrets."""
    initial = getattr(shell, "user_ns_hidden", {}) or {}
    missing = object()
    found, hidden = [], 0
    for name, value in list(_namespace(shell).items()):
        if not isinstance(name, str) or name.startswith("_") or name in _IPYTHON_NAMES:
            continue
        if initial.get(name, missing) is value or _is_code(value):
            continue
        if looks_secret(name, value):
            hidden += 1
            continue
        found.append((name, value))
    found.sort(key=lambda item: item[0])
    return found, hidden


def _module_class(module: str, name: str) -> type | None:
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def _is(value: Any, module: str, name: str) -> bool:
    cls = _module_class(module, name)
    return cls is not None and isinstance(value, cls)


def type_name(value: Any) -> str:
    cls = type(value)
    package = (cls.__module__ or "").split(".")[0]
    return cls.__qualname__ if package == "builtins" else f"{package}.{cls.__qualname__}"


_ARRAY_PACKAGES = ("torch", "polars", "xarray", "tensorflow", "jax", "jaxlib", "cupy", "dask", "pyarrow")
_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlong = 60, 60, 40


def shape_of(value: Any) -> str:
    """A short shape: rows x columns, length, dtype; the value itself for small scalars."""
    try:
        if _is(value, "pandas", "DataFrame"):
            rows, cols = value.shape
            return f"{rows} rows x {cols} columns"
        if _is(value, "pandas", "Series"):
            return f"length {len(value)}, dtype {value.dtype}"
        if _is(value, "numpy", "ndarray"):
            return f"shape {tuple(value.shape)}, dtype {value.dtype}"
        if isinstance(value, (bool, int, float, complex)) or value is None:
            return f"value {_short.repr(value)}"
        if isinstance(value, str):
            return f"length {len(value)}, value {_short.repr(value)}" if len(value) <= 60 else f"length {len(value)}"
        if isinstance(value, (bytes, bytearray, list, tuple, dict, set, frozenset, collections.deque, range)):
            return f"length {len(value)}"
        if (type(value).__module__ or "").split(".")[0] in _ARRAY_PACKAGES:
            shape = getattr(value, "shape", None)
            dtype = getattr(value, "dtype", None)
            return ", ".join(p for p in (f"shape {tuple(shape)}" if shape is not None else "",
                                         f"dtype {dtype}" if dtype is not None else "") if p)
    except Exception:
        pass
    return ""


# ----- describing a value ------------------------------------------------------------------------------

def _repr(value: Any, limit: int) -> str:
    """A repr that never walks a whole big container (reprlib), cut to `limit`."""
    r = reprlib.Repr()
    r.maxlevel = 3
    r.maxdict = r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 25
    r.maxstring = min(limit, 1_000)
    r.maxlong = 200
    r.maxother = limit
    try:
        return cut(r.repr(value), limit)
    except Exception as exc:
        return f"<{type_name(value)}: repr failed: {type(exc).__name__}: {exc}>"


def _frame(df: Any, brief: bool) -> list[str]:
    rows, cols = df.shape
    lines = [f"pandas.DataFrame: {rows} rows x {cols} columns"]
    limit = 15 if brief else 40
    shown = df.iloc[:, :limit] if cols > limit else df
    nulls = None if brief else shown.isna().sum()
    lines.append("Columns (dtype" + ("" if brief else ", nulls") + "):")
    for i, (column, dtype) in enumerate(zip(shown.columns, shown.dtypes, strict=True)):
        extra = "" if nulls is None else f", {int(nulls.iloc[i])} nulls"
        lines.append(f"  {cut(str(column), 60)}: {dtype}{extra}")
    if cols > limit:
        lines.append(f"  … {cols - limit} more columns")
    lines.append("Head:")
    lines.append(shown.head(3 if brief else 5).to_string(max_cols=10 if brief else 20, max_colwidth=40))
    if not brief and rows:
        sample = shown if rows <= EXACT_ROWS else shown.sample(100_000, random_state=0)
        try:
            described = sample.describe().to_string(max_cols=20, max_colwidth=30)
            note = "" if sample is shown else " (on a sample of 100,000 rows)"
            lines += [f"describe(){note}:", described]
        except Exception as exc:
            lines.append(f"describe() failed: {type(exc).__name__}: {exc}")
    return lines


def _series(s: Any, brief: bool) -> list[str]:
    lines = [f"pandas.Series {cut(str(s.name), 60)!r}: length {len(s)}, dtype {s.dtype}"]
    if not brief:
        lines.append(f"nulls: {int(s.isna().sum())}")
    lines += ["Head:", s.head(3 if brief else 5).to_string(max_rows=5)]
    if not brief and len(s):
        sample = s if len(s) <= EXACT_ROWS else s.sample(100_000, random_state=0)
        try:
            note = "" if sample is s else " (on a sample of 100,000 values)"
            lines += [f"describe(){note}:", sample.describe().to_string()]
        except Exception as exc:
            lines.append(f"describe() failed: {type(exc).__name__}: {exc}")
    return lines


def _array(a: Any, brief: bool) -> list[str]:
    np = sys.modules["numpy"]
    lines = [f"numpy.ndarray: shape {tuple(a.shape)}, dtype {a.dtype}, {a.size} elements"]
    if a.size and (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        sampled = a.size > EXACT_ELEMENTS
        values = a.flat[np.linspace(0, a.size - 1, 1_000_000).astype(np.int64)] if sampled else a
        try:
            with np.errstate(all="ignore"):
                stats = f"min {np.nanmin(values)}, max {np.nanmax(values)}, mean {np.nanmean(values)}"
            lines.append(stats + (" (on a sample of 1,000,000 elements)" if sampled else ""))
        except Exception as exc:
            lines.append(f"statistics failed: {type(exc).__name__}: {exc}")
    lines.append(np.array2string(a, threshold=20 if brief else 60, edgeitems=3, max_line_width=100))
    return lines


def describe(value: Any, *, limit: int = OUTPUT_CHARS, brief: bool = False) -> str:
    """A bounded description: pandas and numpy in detail, anything else as a shortened repr."""
    try:
        if _is(value, "pandas", "DataFrame"):
            lines = _frame(value, brief)
        elif _is(value, "pandas", "Series"):
            lines = _series(value, brief)
        elif _is(value, "numpy", "ndarray"):
            lines = _array(value, brief)
        elif isinstance(value, str):
            lines = [f"str: length {len(value)}", _repr(value, limit)]
        else:
            shape = shape_of(value)
            lines = [type_name(value) + (f": {shape}" if shape else ""), _repr(value, limit)]
    except Exception as exc:
        lines = [f"{type_name(value)} (could not describe it: {type(exc).__name__}: {exc})", _repr(value, limit)]
    return cut("\n".join(lines), limit)


def attached_variables(shell: Any, names: Iterable[str]) -> str:
    """The text that ``%hermes --vars a,b`` appends to the prompt. Raises UsageError for bad names."""
    from IPython.core.error import UsageError

    names = [n.strip() for n in names if n.strip()]
    ns = _namespace(shell)
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise UsageError(f"--vars takes variable names separated by commas, not {', '.join(map(repr, bad))}")
    missing = [n for n in names if n not in ns]
    if missing:
        raise UsageError(f"--vars: no variable named {', '.join(missing)} in this notebook")
    secret = [n for n in names if looks_secret(n, ns[n])]
    if secret:
        raise UsageError(f"--vars: {', '.join(secret)} looks like a secret; it is never sent to the model")
    if not names:
        return ""
    clean = _redactor(shell)
    each = max(500, min(BRIEF_CHARS, VARS_CHARS // len(names)))
    parts = [f"### {n}\n{describe(ns[n], limit=each, brief=True)}" for n in names]
    return ("\n\n---\nVariables the user attached from the notebook's kernel (summaries; "
            "notebook_describe_variable and notebook_run_python can tell more):\n\n"
            + cut(clean("\n\n".join(parts)), VARS_CHARS))


# ----- the tools -----------------------------------------------------------------------------------------

def _shell(host: ToolHost | None) -> Any:
    shell = host.shell if host is not None else None
    if shell is None:
        try:
            from IPython import get_ipython
            shell = get_ipython()
        except Exception:
            shell = None
    return shell


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


def _error(message: str) -> str:
    return _json({"error": message})


def _current() -> tuple[ToolHost | None, Any]:
    host = current_host.get()
    return host, _shell(host)


def list_variables(args: dict[str, Any], **_: Any) -> str:
    _host, shell = _current()
    if shell is None:
        return _error("There is no notebook kernel here.")
    variables, hidden = user_variables(shell)
    entries: list[dict[str, Any]] = []
    size, more = 0, 0
    for name, value in variables:
        entry: dict[str, Any] = {"name": name, "type": type_name(value)}
        shape = shape_of(value)
        if shape:
            entry["shape"] = shape
        line = len(_json(entry))
        if len(entries) >= LIST_LIMIT or size + line > OUTPUT_CHARS - 500:
            more += 1
            continue
        size += line
        entries.append(entry)
    result: dict[str, Any] = {"variables": entries}
    if more:
        result["more"] = f"{more} more variables not listed"
    if hidden:
        result["hidden"] = (f"{hidden} variable(s) whose names or values look secret (key, token, password, "
                            "credential, api...) are hidden; they cannot be inspected.")
    if not entries:
        result["note"] = "The user has not defined any variables yet."
    return _redactor(shell)(_json(result))


def describe_variable(args: dict[str, Any], **_: Any) -> str:
    _host, shell = _current()
    name = str((args or {}).get("name") or "").strip()
    if shell is None:
        return _error("There is no notebook kernel here.")
    ns = _namespace(shell)
    if not name:
        return _error("Give the name of a variable (see notebook_list_variables).")
    if name not in ns:
        return _error(f"No variable named {name!r} in the notebook. notebook_list_variables lists them.")
    value = ns[name]
    if looks_secret(name, value):
        return _error(f"{name!r} is hidden: its name or value looks like a secret, so it is never shown.")
    text = describe(value)
    return _redactor(shell)(_json({"name": name, "type": type_name(value), "description": text}))


def read_cells(args: dict[str, Any], **_: Any) -> str:
    host, shell = _current()
    if shell is None:
        return _error("There is no notebook kernel here.")
    args = args or {}
    try:
        start = max(0, int(args.get("start") or 0))
        count = max(1, min(200, int(args.get("count") or 30)))
    except (TypeError, ValueError):
        return _error("start and count must be integers")
    from hermes_jupyter.history.paths import find_notebook

    path = find_notebook(shell, host.settings if host is not None else None)
    cells, origin = None, ""
    if path is not None:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            cells = [(c.get("cell_type", "code"), c.get("source", "")) for c in document.get("cells", [])]
            origin = f"{path.name}, as last saved (unsaved edits are not included)"
        except (OSError, ValueError, AttributeError) as exc:
            log.info("could not read %s: %s", path, exc)
    if cells is None:
        history = list((_namespace(shell).get("In") or [])[1:])
        cells = [("code", source) for source in history]
        origin = "the notebook's file is unknown: these are the cells run in this kernel, in order"
    clean = _redactor(shell)
    shown: list[dict[str, Any]] = []
    size = 0
    for index in range(start, min(len(cells), start + count)):
        kind, source = cells[index]
        source = "".join(source) if isinstance(source, list) else str(source)
        entry = {"index": index, "type": kind, "source": cut(clean(source), CELL_CHARS)}
        size += len(entry["source"]) + 40
        if size > CELLS_CHARS and shown:
            break
        shown.append(entry)
    result = {"source": origin, "total": len(cells), "cells": shown}
    last = shown[-1]["index"] if shown else start - 1
    if last + 1 < len(cells):
        result["more"] = f"cells {last + 1}..{len(cells) - 1} not shown; call again with start={last + 1}"
    return _json(result)


def run_python(args: dict[str, Any], **_: Any) -> str:
    turn, shell = _current()
    code = (args or {}).get("code")
    if turn is None or shell is None:
        return _error("notebook_run_python works only in a notebook turn started by %hermes.")
    if not isinstance(code, str) or not code.strip():
        return _error("Give the Python code to run in 'code'.")
    runner = runner_for(shell)
    if not runner.can_run(turn.turn_id):
        return _error("This shell cannot run code for the agent: it needs a Jupyter kernel "
                      "(or %hermes --wait in terminal IPython).")
    choice = turn.ask_approval(code, RUN_DESCRIPTION, pattern=APPROVAL_PATTERN)
    if choice == "deny":
        return _json({"status": "denied", "message": (
            "The user did not approve this code (denied, or nobody answered in time). It did not run and "
            "nothing in the kernel changed. Do not run it again unless the user asks for it.")})
    clean = _redactor(shell)
    job = Job(code, emit=lambda output: turn.publish(CodeOutput, run_id=job.id, output=output),
              clean=clean, turn=turn.turn_id, wake=turn.notify)
    unsubscribe = turn.on_cancel(lambda: runner.cancel(job))
    try:
        runner.submit(job)
        if not job.started.wait(WAIT_NOTICE) and not job.finished.is_set():
            turn.publish(ev.Status, level="info",
                       text="Waiting for the running cell to finish: the agent's code runs right after it.")
        job.finished.wait()
    finally:
        unsubscribe()
    return _run_result(job.result or {"status": "cancelled"}, clean)


_MESSAGES = {
    "cancelled": "The turn was stopped before the code ran; it did not run.",
    "interrupted": ("The run was interrupted by the user before it finished (a KeyboardInterrupt). Whatever it "
                    "changed before that stays in the kernel. Do not run it again unless the user asks."),
}


def _run_result(result: dict[str, Any], clean: Callable[[str], str]) -> str:
    status = result.get("status", "ok")
    out: dict[str, Any] = {"status": status}
    for key in ("output", "result", "error", "traceback"):
        value = result.get(key)
        if value:
            out[key] = clean(str(value))
    if status in _MESSAGES:
        out["message"] = _MESSAGES[status]
    if status == "ok" and not out.get("output") and "result" not in out:
        out["output"] = "(the code ran and printed nothing)"
    return _json(out)


# ----- registration -----------------------------------------------------------------------------------------

def _schema(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


TOOLS = (
    ("notebook_list_variables", list_variables, _schema(
        "notebook_list_variables",
        "List the variables the user has defined in their Jupyter notebook's live Python kernel: name, "
        "type and a short shape (rows x columns, length, dtype). Modules, functions, classes and private "
        "names are left out; variables that look like secrets are hidden. Read-only.",
        {}, [])),
    ("notebook_describe_variable", describe_variable, _schema(
        "notebook_describe_variable",
        "Describe one variable of the user's notebook kernel: for a pandas DataFrame or Series its shape, "
        "dtypes, null counts, first rows and describe(); for a numpy array its shape, dtype and "
        "min/max/mean; for anything else a shortened repr. Read-only.",
        {"name": {"type": "string", "description": "The variable's name, as listed by notebook_list_variables."}},
        ["name"])),
    ("notebook_run_python", run_python, _schema(
        "notebook_run_python",
        "Run Python code in the user's notebook kernel, in the namespace of their cells: it can read and "
        "change their variables, and what it defines stays for their next cells. The user approves each "
        "run after seeing the code. It runs between their cells, never at the same time as one. Printed "
        "output, plots and tables are shown in the notebook; you get back the printed output (shortened if "
        "long), the repr of the last expression, or the exception with a short traceback. Keep snippets "
        "small and focused; no top-level await.",
        {"code": {"type": "string", "description": "Python code; IPython syntax (%magics) allowed."}},
        ["code"])),
    ("notebook_read_cells", read_cells, _schema(
        "notebook_read_cells",
        "Read the source of the notebook's cells as last saved to disk (when the notebook file is unknown: "
        "the cells run in this kernel). Read-only.",
        {"start": {"type": "integer", "description": "Index of the first cell (default 0)."},
         "count": {"type": "integer", "description": "How many cells (default 30)."}},
        [])),
)

_register_lock = threading.Lock()
_registered = False


def register_tools() -> None:
    """Register the notebook toolset with hermes-agent's registry (once per process)."""
    global _registered
    with _register_lock:
        if _registered:
            return
        from tools.registry import registry

        for name, handler, schema in TOOLS:
            # No check_fn: hermes-agent caches its verdict for 30 s and the tool list it leads to for
            # the process (model_tools._tool_defs_cache), so a check that can change (get_ipython()
            # while no shell exists) left later agents without these tools. Outside a kernel each
            # handler says "There is no notebook kernel here." instead.
            registry.register(name=name, toolset=TOOLSET, schema=schema, handler=handler,
                              description=schema["description"], emoji="📓")
        _registered = True
