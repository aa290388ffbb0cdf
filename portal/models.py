"""Imports every model so that Base.metadata knows all tables (Alembic, tests)."""

from __future__ import annotations

import importlib
import importlib.util

from portal.accounts.models import LoginAttempt, Person, User, UserRole  # noqa: F401
from portal.audit import AuditEntry  # noqa: F401
from portal.db import Base
from portal.events.models import Event, EventPlugin, Series, Talk  # noqa: F401
from portal.mail.models import OutboxEmail  # noqa: F401

CORE_MODEL_MODULES: tuple[str, ...] = ()


def load_all_models():
    """Import core and built-in plugin models; returns Base.metadata."""
    from portal.plugins import BUILTIN_PLUGINS

    for dotted in (*CORE_MODEL_MODULES, *(f"{p}.models" for p in BUILTIN_PLUGINS)):
        if importlib.util.find_spec(dotted) is not None:
            importlib.import_module(dotted)
    return Base.metadata
