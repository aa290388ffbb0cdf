"""The payments area's part of the app-wide personal-data hooks (see ``portal.plugins.CORE_HOOKS``)."""

from __future__ import annotations

from portal.db import session_of
from portal.hookspecs import hookimpl
from portal.payments import services

name = "payments"  # the key of this area's part of the data download
core = True


@hookimpl
def personal_data(person):
    return services.personal_data(session_of(person), person)["payments"]


@hookimpl(tryfirst=True)
def forget_person(person):
    services.forget_person(session_of(person), person)
