"""Every hook in portal/hookspecs.py is documented in docs/plugins.md and has a test of its own
(a test function named ``test_hook_<hookname>...`` somewhere under tests/), like datasette."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from portal import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"
TESTS = ROOT / "tests"
HEADING = re.compile(r"^## `(?P<name>\w+)\((?P<args>[^)]*)\)`\s*$", re.MULTILINE)


def hook_specs() -> dict[str, inspect.Signature]:
    """The hookspecs, by name: functions carrying pluggy's ``portal_spec`` mark."""
    return {
        name: inspect.signature(fn)
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, "portal_spec")
    }


def documented() -> dict[str, str]:
    """Hook headings in docs/plugins.md: name -> the argument list as written."""
    found: dict[str, str] = {}
    for match in HEADING.finditer(DOCS.read_text(encoding="utf-8")):
        assert match["name"] not in found, f"{match['name']} is documented twice"
        found[match["name"]] = match["args"]
    return found


def hook_test_names() -> set[str]:
    """Names of every test function under tests/ that starts with ``test_hook_``."""
    names = set()
    for path in TESTS.rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_hook_"
            ):
                names.add(node.name)
    return names


def test_hookspecs_are_found():
    assert set(hook_specs()) == {
        "blueprints",
        "cli_commands",
        "scheduled_jobs",
        "demo_data",
        "member_status",
        "member_people",
        "series_people",
        "event_tabs",
        "event_sections",
        "dashboard_panels",
        "registration_fields",
        "price_lines",
        "payment_methods",
        "payment_providers",
        "registration_sections",
        "registration_changed",
        "talk_links",
        "reception_places",
        "personal_data",
        "forget_person",
        "affiliation_changed",
    }


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_hookspec_has_a_docstring(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc, f"hookspec {hook} has no docstring"


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_hookspec_is_documented_with_its_exact_signature(hook):
    docs = documented()
    assert hook in docs, f"docs/plugins.md has no heading ## `{hook}(...)`"
    spec_args = list(hook_specs()[hook].parameters)
    doc_args = [a.strip() for a in docs[hook].split(",") if a.strip()]
    assert doc_args == spec_args


def test_docs_document_no_hook_that_does_not_exist():
    assert set(documented()) == set(hook_specs())


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_hookspec_has_a_test_of_its_own(hook):
    names = hook_test_names()
    prefix = f"test_hook_{hook}"
    tests = sorted(n for n in names if n == prefix or n.startswith(prefix + "_"))
    assert tests, f"no test function named {prefix}... under tests/"
