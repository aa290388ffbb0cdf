"""Views do not build or run queries (docs/architecture.md, "Views are thin"): a page reads
through named functions of its area's services or queries modules. Checked on the source with a
small AST walk over every ``views.py``.

What a view may still do: ``db.session.get(Model, id)`` for one row by its id, and
``paginate(...)`` a statement that a service returns (the view reads the page number).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Views whose queries are still being moved out by another branch (issue 10): this list only
# shrinks.
NOT_YET: set[str] = set()

RUNNERS = {"scalar", "scalars", "execute", "query"}


def _queries(source: str) -> list[tuple[int, str]]:
    """(line, what) for every query built (``select(...)``, ``sa.select(...)``, ``.query``)
    or run on the session (``db.session.scalar/scalars/execute``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "select":
                found.append((node.lineno, "builds a select"))
            elif (
                isinstance(func, ast.Attribute)
                and name in RUNNERS
                and ast.unparse(func.value).endswith("session")
            ):
                found.append((node.lineno, f"runs session.{name}"))
        elif isinstance(node, ast.Attribute) and node.attr == "query":
            if isinstance(node.value, ast.Name) and node.value.id[:1].isupper():
                found.append((node.lineno, "uses Model.query"))
    return sorted(found)


def _views() -> list[Path]:
    return sorted([*ROOT.glob("portal/*/views.py"), *ROOT.glob("plugins/*/views.py")])


def test_views_build_and_run_no_queries():
    problems = []
    for path in _views():
        name = path.relative_to(ROOT).as_posix()
        if name in NOT_YET:
            continue
        for line, what in _queries(path.read_text(encoding="utf-8")):
            problems.append(f"{name}:{line} {what} (move it to the area's services/queries)")
    assert problems == []


def test_the_walk_finds_what_it_forbids():
    source = (
        "import sqlalchemy as sa\n"
        "from sqlalchemy import select\n"
        "def page(slug):\n"
        "    a = db.session.scalar(sa.select(Series).where(Series.slug == slug))\n"
        "    b = list(db.session.scalars(services.series_events(a)))\n"
        "    c = select(Event)\n"
        "    d = db.session.get(Event, 1)\n"
        "    e = Event.query.all()\n"
        "    return paginate(db.session, services.things(a), 1, 20)\n"
    )
    assert _queries(source) == [
        (4, "builds a select"),
        (4, "runs session.scalar"),
        (5, "runs session.scalars"),
        (6, "builds a select"),
        (8, "uses Model.query"),
    ]


def test_the_list_of_views_not_yet_thin_only_names_files_that_exist():
    assert all((ROOT / name).is_file() for name in NOT_YET)
    assert len(_views()) > len(NOT_YET)
