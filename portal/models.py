"""Imports every model so that Base.metadata knows all tables (Alembic, tests).

Models live in ``portal/<area>/models.py`` and ``plugins/<plugin>/models.py``; both are found
by looking, so a new area or plugin needs no entry here.
"""

from __future__ import annotations

import importlib
import pkgutil

from portal.db import Base


def load_all_models():
    """Import core and built-in plugin models; returns Base.metadata."""
    import portal.audit  # noqa: F401  (the audit log lives in one module)
    from portal.plugins import builtin_plugins

    areas = [f"portal.{m.name}" for m in pkgutil.iter_modules(portal.__path__) if m.ispkg]
    for package in (*areas, *builtin_plugins()):
        module = importlib.import_module(package)
        if any(m.name == "models" for m in pkgutil.iter_modules(module.__path__)):
            importlib.import_module(f"{package}.models")
    return Base.metadata
