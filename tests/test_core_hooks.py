"""The core reaches plugins, and its own areas, only through hooks: the demo's member company
comes from the membership plugin's ``demo_data``; the data download and erasure of
registrations and speaker records go through ``personal_data`` / ``forget_person``."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from plugins.membership.models import MemberCompany, Membership, MembershipState
from portal import plugins
from portal.accounts import services as accounts
from portal.db import utcnow
from portal.demo import load_demo
from portal.events.models import Series
from portal.registration.models import Registration, RegistrationState
from tests import factories as f


def test_hook_demo_data_membership_adds_one_paid_member_company(app, session):
    load_demo(session)
    load_demo(session)  # twice: nothing more
    study = session.scalar(sa.select(Series).where(Series.kind == "study_group"))
    companies = session.scalars(
        sa.select(MemberCompany).where(MemberCompany.series_id == study.id)
    ).all()
    assert [c.name.en for c in companies] == ["Fictional Metals Co., Ltd."]
    [fee] = session.scalars(
        sa.select(Membership).where(Membership.company_id == companies[0].id)
    ).all()
    assert fee.state == MembershipState.paid


def test_core_areas_answer_the_personal_data_hooks_but_are_not_plugins(app, session):
    names = [plugins.manager().get_name(p) for p in plugins.manager().get_plugins()]
    assert {"core.registrations", "core.speaker"} <= set(names)
    assert "core.registrations" not in plugins.installed()
    assert "registrations" not in plugins.installed()


def test_download_and_erasure_include_registrations_and_speaker_records(app, session):
    event = f.event(session, starts_at=utcnow() + timedelta(days=10))
    user = f.user(session)
    registration = Registration(
        event_id=event.id,
        person_id=user.person_id,
        state=RegistrationState.confirmed,
        attendance_mode=event.attendance_modes[0],
        currency="JPY",
    )
    session.add(registration)
    session.flush()

    data = accounts.personal_data(session, user)
    assert [r["event"] for r in data["registrations"]] == [event.slug]
    assert data["speaker"] == {"affiliations": [], "talks": []}
    assert "registrations" not in data["plugins"]

    accounts.delete_account(session, user)
    assert registration.state == RegistrationState.cancelled
