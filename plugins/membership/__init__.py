"""membership: corporate members (法人会員) of a series per fiscal year, their fees, invoices
and receipts, and who counts as a member.

See ``plugins/membership/services.py`` for the rules. In short:

- Organisers of a series (and administrators) keep the member companies at
  ``/<lang>/organiser/membership/<series>/``: companies per fiscal year (年度, April–March),
  members, unpaid invoices, CSV exports (UTF-8 with BOM), invoices (請求書) and receipts (領収書)
  as PDF through ``portal.documents``. Everyone else gets 404 there (visitors log in first).
- A company's contact invites colleagues from ``/<lang>/membership/<series>/``, where every
  logged-in person also sees whether and through which company they are a member.
- ``member_status(user, series)`` (app-wide, first answer wins) tells the rest of the portal
  (member prices, the lecture archive) whether the user is a member in the current fiscal year.
  The plugin is switched on per event, but membership belongs to the series, so this hook
  answers for every series that has member companies, whether or not the plugin is on for
  any event; for a series without any it answers None.
- ``portal membership remind`` queues renewal reminders (更新のご案内) to the contacts of this
  year's member companies without a membership for the next fiscal year, once per company and
  year. Run it from cron, e.g. daily from February.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from portal.hookspecs import hookimpl

name = "membership"
scope = "series"  # switched on for a whole series, on its organiser page (portal.plugins)
label = _l("Corporate membership")
description = _l(
    "Member companies per fiscal year, their fees, invoices and receipts, and who counts as "
    "a member (member prices, the lecture archive)."
)
default_settings: dict = {}


@hookimpl
def blueprints():
    from plugins.membership.views import bp

    return [bp]


@hookimpl
def cli_commands():
    from plugins.membership.cli import membership_group

    return [membership_group]


def _reminders_job(session) -> str:
    from plugins.membership.services import queue_renewal_reminders

    companies = queue_renewal_reminders(session)
    session.commit()
    return f"{len(companies)} reminder(s) queued"


@hookimpl
def scheduled_jobs():
    from portal.tasks.jobs import MINUTE, Job

    return [
        Job(
            "membership-reminders",
            _reminders_job,
            24 * 60 * MINUTE,
            30 * MINUTE,
            "queue membership renewal reminders",
        )
    ]


@hookimpl
def member_status(user, series):
    from plugins.membership import services
    from portal import plugins
    from portal.db import db

    if not plugins.series_enabled(series, name):
        return None  # membership is not kept for this series
    return services.member_status(db.session, user, series)


@hookimpl
def dashboard_panels(event, user):
    from plugins.membership import services
    from plugins.membership.models import Membership, MembershipState
    from portal.db import db

    if user is None or not getattr(user, "is_authenticated", False):
        return []
    if not user.is_organiser_of(event.series):
        return []
    year = services.current_fiscal_year(event.series)
    counts = dict(
        db.session.execute(
            sa.select(Membership.state, sa.func.count())
            .where(Membership.company_id.in_(services.active_company_ids(event.series_id, year)))
            .where(Membership.fiscal_year == year)
            .group_by(Membership.state)
        ).all()
    )
    html = render_template(
        "membership/_panel.html",
        series=event.series,
        year=year,
        paid=counts.get(MembershipState.paid, 0),
        unpaid=counts.get(MembershipState.unpaid, 0),
    )
    return [Markup(html)]


@hookimpl
def demo_data(session, study_group, workshop):
    """A fictional member company whose people (by email domain) are members this year."""
    import sqlalchemy as sa

    from plugins.membership import services
    from plugins.membership.models import MemberCompany
    from portal.i18n import BilingualText

    if session.scalar(sa.select(MemberCompany).where(MemberCompany.series_id == study_group.id)):
        return
    company = services.create_company(
        session,
        study_group,
        None,
        domains=["fictional-metals.example"],
        name=BilingualText(ja="架空金属株式会社", en="Fictional Metals Co., Ltd."),
        contact_name="会員 次郎",
        contact_email="member@fictional-metals.example",
        billing_address="東京都千代田区見本町1-1",
        language="ja",
    )
    year = services.current_fiscal_year(study_group)
    fee = services.record_membership(
        session,
        company,
        year,
        tier=BilingualText(ja="一般会員", en="Regular member"),
        amount_minor=300000,
        actor=None,
    )
    services.record_payment(session, fee, services.local_today(study_group), None)


@hookimpl
def personal_data(person):
    from plugins.membership import services
    from portal.db import db

    return services.personal_data(db.session, person)


@hookimpl
def forget_person(person):
    from plugins.membership import services
    from portal.db import db

    services.forget_person(db.session, person)


@hookimpl
def member_people(series):
    """People of the series' member companies of the current fiscal year."""
    from plugins.membership import services
    from plugins.membership.models import CompanyDomain, CompanyMember
    from portal.accounts.models import User

    year = services.current_fiscal_year(series)
    active = services.active_company_ids(series.id, year)
    named = sa.select(CompanyMember.person_id).where(
        CompanyMember.company_id.in_(active), CompanyMember.removed_at.is_(None)
    )
    # Verified addresses of a company's domain, unless the office removed the person.
    by_domain = (
        sa.select(User.person_id)
        .join(CompanyDomain, CompanyDomain.domain == User.email_domain)
        .where(
            User.email_verified_at.is_not(None),
            CompanyDomain.series_id == series.id,
            CompanyDomain.company_id.in_(active),
            ~sa.exists().where(
                CompanyMember.company_id == CompanyDomain.company_id,
                CompanyMember.person_id == User.person_id,
            ),
        )
    )
    return sa.union(named, by_domain)


@hookimpl
def series_people(series_ids):
    """People of the series' member companies."""
    from plugins.membership.models import CompanyMember, MemberCompany

    return (
        sa.select(CompanyMember.person_id)
        .join(MemberCompany, MemberCompany.id == CompanyMember.company_id)
        .where(MemberCompany.series_id.in_(series_ids))
    )
