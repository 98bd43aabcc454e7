"""The package's structure holds: no import circle, no function-local import without a reason, the
doctests run, and the registries the rest derives from are whole. Pure Python, no Spark."""

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import spark_audit
from spark_audit import rubric
from spark_audit.findings import KINDS, SEVERITIES, Finding, kinds_failing

PACKAGE = Path(spark_audit.__file__).parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(spark_audit.__path__, "spark_audit."))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    """The spark_audit modules ``path`` imports when it is imported: module-level imports, without the ones
    under ``if TYPE_CHECKING:`` (those never run)."""
    tree = ast.parse(path.read_text())
    me = _module_name(path)
    out: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("spark_audit"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package of this module
                    pkg = me.split(".")[: len(me.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join([*pkg, *([node.module] if node.module else [])])
                if base.startswith("spark_audit"):
                    for a in node.names:  # `from spark_audit import store` imports a module
                        full = f"{base}.{a.name}"
                        out.add(full if full in MODULES else base)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for h in getattr(node, "handlers", []):
                    visit(h.body)
    visit(tree.body)
    out.discard(me)
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _runtime_imports(p) for p in PACKAGE.rglob("*.py")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a list of modules, the first repeated last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            # importing a.b.c runs a/__init__ and a/b/__init__ first: they are edges too
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if state.get(n) is None and n in graph:
                found = dfs(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if state.get(m) is None:
            found = dfs(m)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_circle_and_accepts_a_tree():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle_in_the_package():
    graph = _graph()
    assert len(graph) > 30 and "spark_audit.audit" in graph and "spark_audit.judge" in graph["spark_audit.audit"]
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"


def test_function_local_imports_only_defer_heavy_dependencies_and_say_why():
    """Outside cli.py, an import inside a function is allowed only to defer a heavy dependency, with a
    one-line reason (``# deferred: ...``) on it or on the deferred import it goes with."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cli.py":
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        line = lines[sub.lineno - 1]
                        names = [a.name for a in sub.names] if isinstance(sub, ast.Import) else [sub.module or ""]
                        if "# deferred" not in line or any(n.startswith("spark_audit") for n in names):
                            found.append(f"{path.relative_to(PACKAGE.parent)}:{sub.lineno}: {line.strip()}")
    assert not found, "function-local imports without a reason:\n" + "\n".join(found)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_the_package_has_doctests_that_run():
    attempted = sum(doctest.testmod(importlib.import_module(m), report=False).attempted for m in MODULES)
    assert attempted >= 10


def test_every_finding_kind_fails_a_rubric_test_or_says_why_not():
    tests = {t.id for t in rubric.TESTS}
    for kind in KINDS.values():
        assert set(kind.severities) <= set(SEVERITIES), kind
        assert (kind.rubric in tests) != bool(kind.why_no_test), kind  # exactly one of the two
    for t in rubric.TESTS:
        assert t.kinds == kinds_failing(t.id)
    assert "missing" in rubric.BY_ID["monitor_1"].kinds  # the critical NaN burst is a dependency change


def test_a_finding_of_an_unknown_kind_or_severity_is_refused():
    with pytest.raises(ValueError, match="unknown finding kind 'drfit'"):
        Finding("warning", "drfit", "typo")
    with pytest.raises(ValueError, match="schema finding is critical, not 'info'"):
        Finding("info", "schema", "a changed type is never only recorded")
    assert Finding("critical", "schema", "ok").kind == "schema"
