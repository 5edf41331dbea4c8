"""The package's shape: no import cycle (lazy imports included), no reaching into private names.

Milliseconds: the source is parsed, nothing is imported. The layers themselves (which subpackage
may import which) are import-linter contracts in pyproject.toml, checked here too.
"""
from __future__ import annotations

import ast
import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hermes_jupyter"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run: ``if TYPE_CHECKING:`` blocks are left out (type hints only, never imported)."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def imports_of(name: str, path: Path, known: set[str]) -> set[tuple[str, int, tuple[str, ...]]]:
    """(imported module, line, names taken from it) for every import statement, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found |= {(a.name, node.lineno, ()) for a in node.names if a.name.split(".")[0] == "hermes_jupyter"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "hermes_jupyter":
                continue
            for alias in node.names:  # "from pkg import module" imports the module
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.add((sub, node.lineno, ()))
                else:
                    found.add((target, node.lineno, (alias.name,)))
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        # The package's __init__ re-exports the public API: it is the facade, not a layer.
        if name == "hermes_jupyter":
            edges[name] = set()
            continue
        edges[name] = {t for t, _, _ in imports_of(name, path, known) if t in known and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_imports() -> None:
    # The check must be able to fail: a function-level import is an edge like any other.
    mods = modules()
    edges = graph()
    assert "hermes_jupyter.engine.engine" in mods
    assert any(edges.values()), "no edges found: the parser is broken"
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "import cycles (lazy imports count):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_module_uses_another_modules_private_names() -> None:
    mods = modules()
    known = set(mods)
    offences = []
    for name, path in mods.items():
        for target, line, names in imports_of(name, path, known):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != name:
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} takes {', '.join(private)} from {target}")
    assert not offences, "\n".join(offences)


def test_modules_and_classes_stay_small() -> None:
    too_long = []
    for name, path in modules().items():
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        if lines > 600:
            too_long.append(f"module {name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > 300:
                too_long.append(f"class {name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, "\n".join(too_long)


@pytest.mark.skipif(shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
                    reason="import-linter is not installed (pip install -e '.[test]')")
def test_layers_hold() -> None:
    tool = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run([str(tool), "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# ----- the repository speaks for itself ----------------------------------------------------------

README = PACKAGE.parent / "README.md"
MAP_ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[\w.]+/?)(?: {2,}(?P<job>\S.*))?$")


def readme_map() -> dict[str, str]:
    """The module map of README.md's "How it is built": path under hermes_jupyter/ -> its one-line job.

    One entry a line, nested by two spaces: ``views/`` then ``  widget.py  TurnView: ...``.
    """
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## How it is built"):]
    block = section.split("```\n", 2)[1]
    lines = block.splitlines()
    assert lines[0] == "hermes_jupyter/", "the map starts with the package folder"
    entries: dict[str, str] = {}
    folders: list[str] = []
    for line in lines[1:]:
        found = MAP_ENTRY.match(line)
        assert found, f"not a map entry (NAME, two spaces, its job): {line!r}"
        depth = len(found["indent"]) // 2 - 1
        assert len(found["indent"]) % 2 == 0 and 0 <= depth <= len(folders), f"misindented: {line!r}"
        del folders[depth:]
        path = "/".join([*folders, found["name"].rstrip("/")])
        entries[path + ("/" if found["name"].endswith("/") else "")] = found["job"] or ""
        if found["name"].endswith("/"):
            folders.append(found["name"].rstrip("/"))
    return entries


def test_the_readme_maps_every_module_with_its_job_and_nothing_else() -> None:
    mapped = readme_map()
    assert "engine/" in mapped and "engine/turn.py" in mapped  # the parser can fail: these must be read
    tree = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    # A subpackage's line stands for its __init__.py; every other module has a line of its own.
    wanted = {p for p in tree if not (p.endswith("/__init__.py"))}
    wanted |= {p.removesuffix("__init__.py") for p in tree if p.endswith("/__init__.py")}
    missing = sorted(wanted - set(mapped))
    assert not missing, f"modules missing from README.md's map: {missing}"
    gone = sorted(p for p in mapped if not (PACKAGE / p).exists())
    assert not gone, f"README.md's map names what the package does not have: {gone}"
    jobless = sorted(p for p, job in mapped.items() if len(job.split()) < 2)
    assert not jobless, f"entries of README.md's map without their job: {jobless}"


# Comments and docstrings say why in their own words: no number of a tracker the repository does
# not have, no file it does not hold.
CITATION = re.compile(r"(?i)\bissues?\s*#?\d+|(?<![\w&])#\d+\b|\breports?\s+\d+[a-z]?\b|newcomer'?s\s+report"
                      r"|\bpoints?\s+\d+(?:\s*(?:-|and)\s*\d+)?\b|\blessons?\s+\d+|webui-lessons|\.\./shared|shared/notes")
FILE_NAME = re.compile(r"[\w./-]+\.md\b")  # notes are Markdown; example paths (data/x.txt) are not citations


def comments_and_docstrings(path: Path) -> list[tuple[int, str]]:
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        found = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
                 if t.type == tokenize.COMMENT]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[0] if node.body else None
                if isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) \
                        and isinstance(body.value.value, str):
                    found.append((body.lineno, body.value.value))
        return found
    return [(source.count("\n", 0, m.start()) + 1, m.group())  # .js and .css
            for m in re.finditer(r"/\*.*?\*/|//[^\n]*", source, re.DOTALL)]


def citations(text: str) -> list[str]:
    found = [m.group() for m in CITATION.finditer(text)]
    for name in FILE_NAME.findall(text):  # a file named must be one the repository holds
        if not (PACKAGE.parent / name).exists() and not any(PACKAGE.parent.glob(f"**/{Path(name).name}")):
            found.append(name)
    return found


def test_the_citation_check_can_fail() -> None:
    for cited in ("(issue #13)", "issue 15's corpus", "see #17.", "report 5a", "the newcomer's report",
                  "webui-lessons.md, point 17", "points 9-12", "../shared/notes", "(lessons 5 and 13)", "measured-facts.md"):
        assert citations(cited), cited
    for fine in ("bench/RESULTS.md, section 4", "color:#0969da", "README.md", "a 500-token answer (~1 KB)",
                 "../outside.txt is refused"):
        assert not citations(fine), fine


def test_no_comment_cites_an_issue_number_or_a_file_outside_the_repository() -> None:
    offences = []
    for path in sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".js", ".css")):
        for line, text in comments_and_docstrings(path):
            offences += [f"{path.relative_to(PACKAGE.parent)}:{line}: {c}" for c in citations(text)]
    assert not offences, "say why in the comment's own words:\n" + "\n".join(offences)
