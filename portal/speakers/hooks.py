"""The speaker area's part of the app-wide personal-data hooks (see ``portal.plugins.CORE_HOOKS``)."""

from __future__ import annotations

from portal.db import session_of
from portal.hookspecs import hookimpl
from portal.speakers.personal_data import forget_speaker, speaker_personal_data

name = "speaker"  # the key of this area's part of the data download
core = True


@hookimpl
def personal_data(person):
    return speaker_personal_data(session_of(person), person)


@hookimpl(tryfirst=True)
def forget_person(person):
    forget_speaker(session_of(person), person)
