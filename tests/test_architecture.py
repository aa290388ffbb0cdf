"""The import rules of docs/architecture.md, checked on the source (a small AST walk).

- The core (``portal/``) never imports a plugin: it reaches plugins only through hooks
  (``portal/plugins.py``, the plugin host, finds the built-in ones by looking).
- A plugin never imports another plugin, ``portal.app`` (use ``portal.extensions``) or a
  private name of the core (``from portal.demo import _at``).
- No import cycles between the core's modules at import time; and none of the cycles the
  architecture forbids even inside functions (accounts ↔ speakers/registration, app ↔ cli,
  speakers.models ↔ speakers.search).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (file, module it imports): the plugin host, and known debts still to be paid by the area
# that owns the file (listed in docs/architecture.md); nothing else may be added here.
ALLOWED: set[tuple[str, str]] = {
    ("portal/plugins.py", "plugins"),  # the host finds the built-in plugins
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[str, str | None, int]]:
    """(module imported, name imported from it or None, line) for every import in the file
    (``top_level_only``: only the ones run when the module is imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found += [(module, alias.name, node.lineno) for alias in node.names]
    return found


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _top(module: str) -> str:
    return module.split(".")[0]


def _plugin_of(path: Path) -> str:
    return path.relative_to(ROOT / "plugins").parts[0]


def _violations(check) -> list[str]:
    out = []
    for folder in ("portal", "plugins"):
        for path in _files(folder):
            where = str(path.relative_to(ROOT))
            for module, name, line in _imports(path):
                problem = check(path, module, name)
                if problem and (where, module) not in ALLOWED:
                    out.append(f"{where}:{line}: {problem}")
    return out


def test_core_never_imports_a_plugin():
    def check(path, module, name):
        if path.is_relative_to(ROOT / "portal") and _top(module) == "plugins":
            return f"imports {module} (reach plugins through hooks)"
        return None

    assert _violations(check) == []


def test_plugins_never_import_each_other():
    def check(path, module, name):
        if not path.is_relative_to(ROOT / "plugins") or _top(module) != "plugins":
            return None
        full = f"{module}.{name}" if name and module == "plugins" else module
        parts = full.split(".")
        if len(parts) > 1 and parts[1] != _plugin_of(path):
            return f"imports another plugin ({full})"
        return None

    assert _violations(check) == []


def test_plugins_never_import_the_app_or_private_core_names():
    def check(path, module, name):
        if not path.is_relative_to(ROOT / "plugins") or _top(module) != "portal":
            return None
        if module == "portal.app" or (module == "portal" and name == "app"):
            return "imports portal.app (use portal.extensions)"
        if any(part.startswith("_") for part in module.split(".")):
            return f"imports a private module {module}"
        if name and name.startswith("_"):
            return f"imports the private name {module}.{name}"
        return None

    assert _violations(check) == []


def _core_graph(top_level_only: bool = False) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _files("portal")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, name, _line in _imports(path, top_level_only):
            if name and f"{target}.{name}" in modules:
                target = f"{target}.{name}"
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # importing a package runs its __init__; "portal" itself only re-exports create_app
            if target and target != module and target != "portal":
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_core_modules_import_each_other_without_cycles():
    assert _cycles(_core_graph(top_level_only=True)) == []


def test_the_cycles_the_architecture_names_are_gone():
    graph = _core_graph()
    accounts = [m for m in graph if m.startswith("portal.accounts")]
    reached = {t for m in accounts for t in graph[m]}
    assert (
        sorted(t for t in reached if t.startswith(("portal.speakers", "portal.registration"))) == []
    )
    assert "portal.app" not in graph["portal.cli"]
    assert "portal.speakers.search" not in graph["portal.speakers.models"]


def test_the_rules_catch_what_they_forbid(tmp_path):
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    found = _imports(ROOT / "plugins" / "attendance" / "importer.py")
    assert any(m == "portal.localtime" and n == "at" for m, n, _line in found)
    assert "portal.registration.transitions" in _core_graph()["portal.registration.changes"]


def test_plugins_read_enablement_and_settings_only_through_the_host():
    def check(path, module, name):
        if path.is_relative_to(ROOT / "plugins") and name == "EventPlugin":
            return (
                "imports EventPlugin (use portal.plugins: settings, enabled_events, save_settings)"
            )
        return None

    assert _violations(check) == []


def test_no_date_in_the_servers_zone():
    """``date.today()`` and a naive ``datetime.now()`` give the server's date, not the event's:
    use ``portal.localtime`` (``today(zone)``, ``office_today()``)."""
    found = []
    for folder in ("portal", "plugins"):
        for path in _files(folder):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and (node.func.value.id, node.func.attr)
                    in {("date", "today"), ("datetime", "today"), ("datetime", "now")}
                    and not node.args
                    and not node.keywords
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
