"""The access matrix (issue #12): every route of ``app.url_map`` has a rule below, and every
object URL is requested as each role: a visitor, the owner, another participant, a reviewer,
the organiser of the other series, a member, a non-member, the organiser of the object's
series and an administrator. A new route without a rule fails ``test_every_route_has_a_rule``.

Rules:
- ``public``: everyone may (published events, the speaker directory, the archive's lists);
- ``login``: every logged-in person, visitors are sent to log in;
- ``owner``: the person it belongs to; other people are refused (403/404), visitors log in;
- ``organiser``: organisers of the object's series and administrators; everyone else refused;
- ``any organiser``: organisers of either series (the shared speaker directory, the organiser
  home page); ``admin``: administrators only (series, roles, the outbox);
- ``reviewer``: the reviewer it is assigned to (and the series' organisers);
- ``member``: the series' members, organisers, administrators (and speakers, for their own);
- ``token``: the link's token decides (emailed links); ``machine``: signed requests, health;
  ``form``: pages everyone may open (log-in, sign-up); for these only "never a 500" holds.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from reportlab.pdfgen.canvas import Canvas

from plugins.abstracts import review
from plugins.abstracts.models import Abstract, AbstractAuthor, AbstractState
from plugins.archive import services as archive
from plugins.membership import services as membership
from plugins.stripe_payments import services as stripe
from portal.accounts.models import Sector, UserRole
from portal.db import db, utcnow
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from portal.payments import services as payments
from portal.payments.models import Payment, PaymentState
from portal.registration.models import FeeCategory, Registration, RegistrationState
from portal.speakers import merge as speaker_merge
from portal.speakers.models import Institution
from tests import factories as f

ROLES = (
    "anonymous",
    "owner",
    "other_participant",
    "reviewer",
    "other_organiser",
    "member",
    "non_member",
    "organiser",
    "admin",
)

A, S, AO = "admin", "organiser or speaker", "any organiser"
P, L, OWN, G, R, M, T, X, F = (
    "public",
    "login",
    "owner",
    "organiser",
    "reviewer",
    "member",
    "token",
    "machine",
    "form",
)

RULES: dict[str, str] = {
    # accounts
    "accounts.change_email": L,
    "accounts.change_password": L,
    "accounts.confirm_email_change": T,
    "accounts.delete_account": L,
    "accounts.download_data": L,
    "accounts.forgot_password": F,
    "accounts.login": F,
    "accounts.logout": F,
    "accounts.profile": L,
    "accounts.resend_verification": L,
    "accounts.reset_password": T,
    "accounts.signup": F,
    "accounts.update_profile": L,
    "accounts.verify_email": T,
    # events and the home page
    "events.event_page": P,
    "events.home": P,
    "events.series_page": P,
    "root": P,
    "health.healthz": X,
    "static": P,
    "calendar.ics": P,
    # abstracts
    "abstracts.assign": G,
    "abstracts.auto_assign": G,
    "abstracts.book": F,
    "abstracts.book_pdf": F,
    "abstracts.call": P,
    "abstracts.decide": G,
    "abstracts.detail": G,
    "abstracts.edit": OWN,
    "abstracts.email_text": G,
    "abstracts.emails": G,
    "abstracts.export": G,
    "abstracts.manage": G,
    "abstracts.mine": L,
    "abstracts.new": L,
    "abstracts.pdf": OWN,
    "abstracts.reopen": G,
    "abstracts.review": R,
    "abstracts.reviews": R,
    "abstracts.settings": G,
    "abstracts.unassign": G,
    "abstracts.view": OWN,
    "abstracts.withdraw": OWN,
    # archive
    "archive.add_link": S,
    "archive.delete": G,
    "archive.event_archive": P,
    "archive.index": P,
    "archive.log": G,
    "archive.open_item": M,
    "archive.speakers": P,
    "archive.upload": S,
    # announcements: the list of a series and what is announced to it
    "announcements.confirm": T,
    "announcements.join": F,
    "announcements.leave": T,
    "announcements.set_language": T,
    "announcements.view": T,
    "announcement_hooks.bounces": X,
    "announcements_admin.detail": G,
    "announcements_admin.import_list": G,
    "announcements_admin.index": G,
    "announcements_admin.new": G,
    "announcements_admin.send": G,
    "announcements_admin.send_test": G,
    "announcements_admin.subscribers": G,
    "announcements_admin.unschedule": G,
    # attendance
    "attendance.chart_svg": F,
    "attendance.import_page": G,
    "attendance.record": G,
    "attendance.statistics": F,
    "attendance.statistics_csv": F,
    # payments
    "payments.export": G,
    "payments.organiser_list": G,
    "payments.receipt_name": OWN,
    "payments.receipt_pdf": OWN,
    "payments.refund": G,
    "payments.resend_refund": G,
    "payments.unmatched_list": AO,
    "pay_at_door.collect": G,
    "pay_at_door.reception": G,
    "bank_transfer.instructions": OWN,
    "bank_transfer.mark_received": G,
    "bank_transfer.organiser_list": G,
    "stripe_payments.card_cancelled": OWN,
    "stripe_payments.card_pay": OWN,
    "stripe_payments.card_return": OWN,
    "stripe_payments.webhook": X,
    # check-in, tickets
    "checkin.badges": G,
    "checkin.badges_pdf": G,
    "checkin.check_in_registration": G,
    "checkin.counts": G,
    "checkin.revoke": G,
    "checkin.scan": G,
    "checkin.scanner": G,
    "checkin.search": G,
    "tickets.ticket_pdf": OWN,
    # exchange meeting, webinar
    "exchange_meeting.change": OWN,
    "exchange_meeting.export": G,
    "exchange_meeting.organiser_list": G,
    "exchange_meeting.print_list": G,
    "exchange_meeting.promote": G,
    "webinar.attendance": G,
    # outbox (administrators: the undelivered mail of the portal)
    "mail_admin.resend": A,
    "mail_admin.resend_all": A,
    "mail_admin.undelivered": A,
    # membership
    "membership.accept_invitation": T,
    "membership.annual_invoices": G,
    "membership.companies_csv": G,
    "membership.company_edit": G,
    "membership.company_new": G,
    "membership.company_page": G,
    "membership.contact_invite": F,
    "membership.document_pdf": G,
    "membership.member_add": G,
    "membership.member_remove": G,
    "membership.members": G,
    "membership.members_csv": G,
    "membership.membership_cancel": G,
    "membership.membership_correct": G,
    "membership.membership_new": G,
    "membership.mine": L,
    "membership.organiser_index": AO,
    "membership.organiser_invite": G,
    "membership.payment": G,
    "membership.unpaid": G,
    "membership.year_page": G,
    # organiser pages
    "organiser.event_dashboard": G,
    "organiser.event_edit": G,
    "organiser.event_new": AO,
    "organiser.event_status": G,
    "organiser.index": AO,
    "organiser.plugin_settings": G,
    "organiser.plugin_toggle": G,
    "organiser.role_grant": A,
    "organiser.role_revoke": A,
    "organiser.roles": A,
    "organiser.series_reviewers": G,
    "organiser.reviewer_appoint": G,
    "organiser.reviewer_remove": G,
    "organiser.series_edit": A,
    "organiser.series_new": A,
    "organiser.series_plugin_settings": G,
    "organiser.series_plugin_toggle": G,
    "organiser.series_plugins": G,
    "organiser.talk_delete": G,
    "organiser.talk_edit": G,
    "organiser.talk_new": G,
    # programme
    "programme.schedule_ics": P,
    "programme.schedule_json": P,
    "programme.schedule_pdf": P,
    "programme.timetable": P,
    "programme_admin.builder": G,
    "programme_admin.delete_item": G,
    "programme_admin.place_talk": G,
    "programme_admin.save_item": G,
    "programme_admin.start": G,
    # registration
    "registration.cancel": OWN,
    "registration.my_registration": OWN,
    "registration.my_registrations": L,
    "registration.register": F,
    "registration.switch_mode": OWN,
    "registration_admin.add": G,
    "registration_admin.change_state": G,
    "registration_admin.check_in": G,
    "registration_admin.check_in_page": G,
    "registration_admin.detail": G,
    "registration_admin.export": G,
    "registration_admin.fee_active": G,
    "registration_admin.fee_form": G,
    "registration_admin.fees": G,
    "registration_admin.index": G,
    "registration_admin.mark_paid": G,
    "registration_admin.print_list": G,
    # speakers (one directory shared by both series: any organiser)
    "speaker_admin.institution_edit": AO,
    "speaker_admin.institution_list": AO,
    "speaker_admin.institution_merge": AO,
    "speaker_admin.institution_new": AO,
    "speaker_admin.merge_detail": AO,
    "speaker_admin.merge_list": AO,
    "speaker_admin.speaker_affiliation": AO,
    "speaker_admin.speaker_duplicates": AO,
    "speaker_admin.speaker_edit": AO,
    "speaker_admin.speaker_export": AO,
    "speaker_admin.speaker_invite": AO,
    "speaker_admin.speaker_list": AO,
    "speaker_admin.speaker_merge": AO,
    "speaker_admin.speaker_new": AO,
    "speaker_admin.speaker_photo_delete": AO,
    "speaker_admin.talk_speaker": G,
    "speakers.directory": P,
    "speakers.invitation": T,
    "speakers.invitation_affiliation": T,
    "speakers.invitation_link": T,
    "speakers.invitation_photo": T,
    "speakers.own_affiliation": OWN,
    "speakers.own_profile": OWN,
    "speakers.photo": F,
    "speakers.speaker_page": P,
}

# Who is refused, allowed, or not checked (None), per rule.
EXPECTED = {
    P: dict.fromkeys(ROLES, "allowed"),
    L: {**dict.fromkeys(ROLES, "allowed"), "anonymous": "login"},
    OWN: {
        **dict.fromkeys(ROLES, "refused"),
        "anonymous": "login",
        "owner": "allowed",
        "organiser": None,
        "admin": None,
    },
    G: {
        **dict.fromkeys(ROLES, "refused"),
        "anonymous": "login",
        "organiser": "allowed",
        "admin": "allowed",
    },
    R: {
        **dict.fromkeys(ROLES, "refused"),
        "anonymous": "login",
        "reviewer": "allowed",
        "organiser": None,
        "admin": None,
    },
    S: {
        **dict.fromkeys(ROLES, "refused"),
        "anonymous": "login",
        "owner": "allowed",  # the speaker of the talk
        "organiser": "allowed",
        "admin": "allowed",
    },
    A: {**dict.fromkeys(ROLES, "refused"), "anonymous": "login", "admin": "allowed"},
    AO: {
        **dict.fromkeys(ROLES, "refused"),
        "anonymous": "login",
        "other_organiser": "allowed",
        "organiser": "allowed",
        "admin": "allowed",
    },
    M: {
        **dict.fromkeys(ROLES, "refused"),
        "anonymous": "login",
        "owner": "allowed",  # the speaker of the talk
        "member": "allowed",
        "organiser": "allowed",
        "admin": "allowed",
    },
}


# Where the world has nothing to show (the registration is free: no card payment; no ticket
# issued; the abstract has no PDF), the owner's request is not checked.
NOT_CHECKED = {
    ("stripe_payments.card_pay", "owner"),
    ("tickets.ticket_pdf", "owner"),
    ("abstracts.pdf", "owner"),
    # the merge page needs two records (?a=&b=): without them it is 404 for everyone
    *(("speaker_admin.speaker_merge", role) for role in ("organiser", "other_organiser", "admin")),
    *(
        ("speaker_admin.institution_merge", role)
        for role in ("organiser", "other_organiser", "admin")
    ),
}


def test_every_route_has_a_rule(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(endpoints - set(RULES)) == [], "routes without an access rule"
    assert sorted(set(RULES) - endpoints) == [], "rules of routes that no longer exist"


def _pdf() -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    canvas.drawString(72, 800, "Slides")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


@pytest.fixture
def matrix_world(app):
    """Two series with an open event each; one object of every kind in the study group."""
    with app.app_context():
        s = db.session
        study = f.series(s, slug="study")
        workshop = f.series(s, "workshop", slug="workshop")
        event = f.event(s, study, slug="meeting")
        past = f.event(
            s,
            study,
            slug="past",
            starts_at=utcnow().replace(microsecond=0) - timedelta(days=30),
        )
        f.event(s, workshop, slug="boston")
        for plugin in (
            "abstracts",
            "archive",
            "exchange_meeting",
            "webinar",
            "bank_transfer",
            "stripe_payments",
            "pay_at_door",
            "calendar",
            "attendance",
            "membership",
        ):
            f.enable(s, event, plugin)
            f.enable(s, past, plugin)
        users = {
            "owner": f.user(s, email="owner@example.org"),
            "other_participant": f.user(s, email="other@example.org"),
            "reviewer": f.user(
                s,
                email="reviewer@example.org",
                roles=(("reviewer", study),),
                affiliation="東北大学",
                sector=Sector.university,
            ),
            "other_organiser": f.user(
                s, email="boston@example.org", roles=(("organiser", workshop),)
            ),
            "member": f.user(s, email="jiro@kakuu-metal.co.jp"),
            "non_member": f.user(s, email="someone@example.org"),
            "organiser": f.user(s, email="org@example.org", roles=(("organiser", study),)),
            "admin": f.user(s, email="admin@example.org", is_admin=True),
        }
        company = membership.create_company(
            s,
            study,
            None,
            domains=["kakuu-metal.co.jp"],
            name=BilingualText(ja="架空金属", en="Kakuu Metals"),
            contact_name="佐藤",
            contact_email="hanako@kakuu-metal.co.jp",
            billing_address="東京都",
            language="ja",
        )
        fee = membership.record_membership(
            s,
            company,
            membership.current_fiscal_year(study),
            tier=BilingualText(ja="一般", en="Regular"),
            amount_minor=100000,
            actor=None,
        )
        owner = users["owner"]
        registrations = {}
        for who in ("owner", "other_participant"):
            reg = Registration(
                event_id=event.id,
                person_id=users[who].person_id,
                user_id=users[who].id,
                state=RegistrationState.confirmed,
                attendance_mode=event.attendance_modes[0],
                currency=study.currency,
            )
            s.add(reg)
            registrations[who] = reg
        category = FeeCategory(
            event_id=event.id, code="general", name=BilingualText(ja="一般", en="General")
        )
        s.add(category)
        talk = f.talk(s, past, owner.person)
        s.flush()
        item = archive.add_file(s, talk, _pdf(), "slides.pdf", owner)
        abstract = Abstract(
            event_id=event.id,
            submitter_id=owner.person_id,
            state=AbstractState.submitted,
            submitted_at=utcnow(),
            title=BilingualText(ja="要旨", en="Abstract"),
        )
        s.add(abstract)
        s.flush()
        s.add(AbstractAuthor(abstract_id=abstract.id, person_id=owner.person_id, name="Owner"))
        email = OutboxEmail(
            to_address="x@example.org", language="en", subject="s", body_text="b", body_html="b"
        )
        s.add(email)
        s.flush()
        money = _money_world(s, event, registrations["owner"], users["organiser"])
        assignment = review.assign_reviewer(
            s, abstract, users["reviewer"].person, users["organiser"]
        )
        merge = speaker_merge.merge_speakers(
            s,
            f.person(s, family_name="Tanaka", given_name="Ken", email="ken1@example.org"),
            f.person(s, family_name="Tanaka", given_name="Ken", email="ken2@example.org"),
            users["admin"],
        )
        (invoice,) = membership.membership_documents(s, [fee.id])[fee.id]
        role_id = s.scalar(sa.select(UserRole.id).where(UserRole.user_id == users["organiser"].id))
        institution = Institution(name=BilingualText(ja="架空大学", en="Kakuu University"))
        s.add(institution)
        from portal.announcements.models import Announcement

        announcement = Announcement(
            series_id=study.id,
            subject=BilingualText(ja="ご案内", en="Notice"),
            body=BilingualText(ja="本文", en="Text"),
        )
        s.add(announcement)
        s.commit()
        ids = {
            "announcement_id": announcement.id,
            "reg_id": registrations["owner"].id,
            "talk_id": talk.id,
            "person_id": owner.person_id,
            "abstract_id": abstract.id,
            "company_id": company.id,
            "membership_id": fee.id,
            "item_id": item.id,
            "cat_id": category.id,
            "email_id": email.id,
            "institution_id": institution.id,
            "user_id": users["non_member"].id,
            "name": "archive",  # a plugin
            "kind": "accepted_oral",  # an email text of the abstracts
            **money,
            "assignment_id": assignment.id,
            "merge_id": merge.id,
            "role_id": role_id,
            # the same URL part names another object on the membership pages
            "membership.document_pdf:document_id": invoice.id,
        }
        stamps = {role: user.get_id() for role, user in users.items()}
        slugs = {"event": "meeting", "past": "past", "series": "study"}
    return ids, stamps, slugs


def _money_world(s, event, registration, organiser) -> dict:
    """The owner's registration paid by bank transfer (a receipt), then partly refunded."""
    registration.state = RegistrationState.pending_payment
    registration.total_minor = 5000
    registration.price_lines = [
        {
            "code": "fee",
            "label": {"ja": "参加費", "en": "Fee"},
            "amount_minor": 5000,
            "currency": registration.currency.upper(),
        }
    ]
    s.flush()
    payment = payments.record_payment(
        s, registration, method="bank_transfer", actor=organiser, amount_minor=5000
    )
    refund = payments.begin_refund(s, payment.id, 1000, actor=organiser, reason="test")
    card = Payment(
        registration_id=registration.id,
        event_id=event.id,
        person_id=registration.person_id,
        method=stripe.METHOD,
        state=PaymentState.failed,
        amount_minor=5000,
        currency=registration.currency.upper(),
    )
    s.add(card)
    s.flush()
    return {
        "payment_id": payment.id,
        "refund_id": refund.id,
        "document_id": payment.receipt_id,
        # the card pages show the owner's card attempts
        "stripe_payments.card_return:payment_id": card.id,
        "stripe_payments.card_cancelled:payment_id": card.id,
    }


def _url(rule, ids, slugs) -> str | None:
    """The rule's URL for objects of the study group, or None when an id is not at hand."""
    values = {"lang_code": "en"}
    for name in rule.arguments - {"lang_code"}:
        if name == "slug":
            if "/series/" in rule.rule or "/membership/" in rule.rule:
                values["slug"] = slugs["series"]
            elif "talk_id" in rule.arguments or rule.rule.endswith("/archive/"):
                values["slug"] = slugs["past"]
            else:
                values["slug"] = slugs["event"]
        elif f"{rule.endpoint}:{name}" in ids:
            values[name] = str(ids[f"{rule.endpoint}:{name}"])
        elif name in ids:
            values[name] = str(ids[name])
        else:
            return None
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values[m.group(1)], rule.rule)


def _outcome(response, method: str) -> str:
    code = response.status_code
    if code >= 500:
        return "error"
    location = response.headers.get("Location", "")
    if code in (301, 302, 303) and "/account/login" in location:
        return "login"
    if code in (401, 403, 404, 410):
        return "refused"
    if code < 400 or (method == "POST" and code in (400, 409, 429)):
        return "allowed"
    return f"status {code}"


def test_access_matrix(app, matrix_world):
    ids, stamps, slugs = matrix_world
    clients = {}
    for role in ROLES:
        client = app.test_client()
        if role in stamps:
            with client.session_transaction() as flask_session:
                flask_session["_user_id"] = stamps[role]
                flask_session["_fresh"] = True
        clients[role] = client
    wrong: list[str] = []
    checked = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        policy = RULES[rule.endpoint]
        url = _url(rule, ids, slugs)
        if url is None or rule.endpoint == "static":
            continue
        method = "GET" if "GET" in rule.methods else "POST"
        for role in ROLES:
            expected = EXPECTED.get(policy, {}).get(role)
            if (rule.endpoint, role) in NOT_CHECKED:
                expected = None
            if method == "POST" and expected in (None, "allowed"):
                continue  # changes are only sent where they must be refused
            response = clients[role].open(url, method=method, data={} if method == "POST" else None)
            response.get_data()
            response.close()
            outcome = _outcome(response, method)
            if expected == "login" and outcome == "refused":
                outcome = "login"  # a visitor refused outright is as good as sent to log in
            if outcome == "error" or (expected is not None and outcome != expected):
                wrong.append(f"{rule.endpoint} {method} {url} as {role}: {outcome}, not {expected}")
            checked += 1
    assert not wrong, "\n".join(wrong)
    assert checked > 600
