"""Tickets (参加証), check-in (scanner, typed search, list) and the exchange meeting's own scan."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import sqlalchemy as sa

from plugins.exchange_meeting.models import ExchangeMeetingSignup, SignupState
from portal.audit import AuditEntry
from portal.db import db
from portal.events.models import Event
from portal.mail.models import OutboxEmail
from portal.registration import services as registrations
from portal.registration.models import Registration, RegistrationState
from portal.tickets import services as tickets
from portal.tickets.models import CheckIn, Ticket
from tests import factories as f
from tests import pdfcheck

S = RegistrationState


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


def register(session, event, person=None, mode="onsite", **kw) -> Registration:
    person = person or f.person(session)
    return registrations.register(session, event, person, mode=mode, privacy_accepted=True, **kw)


@pytest.fixture
def day(app):
    """An open hybrid event, an organiser, and a participant with a login and a free place."""
    with app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series)
        organiser = f.user(s, roles=(("organiser", series),), family_name="受付", given_name="係")
        user = f.user(
            s,
            email="hanako@example.org",
            family_name="佐藤",
            given_name="花子",
            family_name_kana="さとう",
            given_name_kana="はなこ",
            romanized_name="Hanako Sato",
        )
        registration = register(s, event, user.person, user=user)
        s.commit()
        ticket = tickets.current_ticket(s, registration)
        return dict(
            slug=event.slug,
            event_id=event.id,
            series_id=series.id,
            organiser=organiser,
            organiser_name=organiser.person.romanized_name,
            user=user,
            reg_id=registration.id,
            token=ticket.token,
        )


def scan(client, day, token, point="event"):
    r = client.post(
        f"/en/organiser/events/{day['slug']}/check-in/scan", data={"token": token, "point": point}
    )
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    return r.get_json()


def pdftotext(content: bytes, tmp_path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    )
    return out.stdout


needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")


# -- tickets ---------------------------------------------------------------------------------


def test_confirmed_registration_has_an_unguessable_ticket(app, day):
    with app.app_context():
        s = db.session
        ticket = s.scalar(sa.select(Ticket).where(Ticket.registration_id == day["reg_id"]))
        assert ticket.token == day["token"]
        assert len(ticket.token) == 32
        assert str(day["reg_id"]) != ticket.token
        # Waitlisted and pending registrations have none.
        event = s.get(Event, day["event_id"])
        event.capacity_onsite = 1
        waiting = register(s, event)
        assert waiting.state == S.waitlisted
        assert tickets.current_ticket(s, waiting) is None
        # Promoted from the waiting list → confirmed → a ticket.
        registrations.cancel(s, s.get(Registration, day["reg_id"]), actor=None)
        assert waiting.state == S.confirmed
        assert tickets.current_ticket(s, waiting) is not None


def test_confirmation_email_carries_the_ticket(app, day, tmp_path, smtp_server):
    from portal.mail.services import send_due

    with app.app_context():
        email = db.session.scalar(
            sa.select(OutboxEmail).where(OutboxEmail.to_address == "hanako@example.org")
        )
        assert email.template == "registration/confirmed"
        names = sorted(a.filename for a in email.attachments)
        assert names == [f"ticket-{day['slug']}.pdf", "ticket-qr.png"]
        # The outbox keeps references, rendered by the sender (not under the event lock).
        assert sorted(a.generator for a in email.attachments) == ["ticket_pdf", "ticket_qr_png"]
        assert all(a.content is None for a in email.attachments)
        assert '<img src="cid:ticket-qr.png" width="180" height="180"' in email.body_html
        assert "<svg" not in email.body_html  # no QR code encoded in the request
        assert "受付で" in email.body_text
        app.config["MAIL_PORT"] = smtp_server.port
        assert send_due(db.session)[1] == 0
    [message] = [m for m in smtp_server.messages if m["To"] == "hanako@example.org"]
    parts = {p.get_filename(): p for p in message.iter_attachments()}
    assert sorted(parts) == [f"ticket-{day['slug']}.pdf"]
    # The QR code is the image the HTML shows: a related part with the Content-ID it names.
    [related] = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    html, qr_image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert 'src="cid:ticket-qr.png"' in html.get_content()
    assert qr_image["Content-ID"] == "<ticket-qr.png>"
    assert qr_image.get_filename() == "ticket-qr.png"
    assert qr_image.get_content_type() == "image/png"
    assert qr_image.get_content().startswith(b"\x89PNG")
    from portal.tickets.pdf import qr_png

    assert qr_image.get_content() == qr_png(day["token"])  # the ticket's own code
    pdf = parts[f"ticket-{day['slug']}.pdf"]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = pdftotext(pdf.get_content(), tmp_path)
        assert "参加証" in text
        assert "佐藤 花子" in text
        assert "会場" in text
        assert "参加方法    会場参加" in text


def test_a_mail_whose_attachment_cannot_be_rendered_is_retried(app, day, smtp_server):
    from portal.mail.services import send_due

    with app.app_context():
        email = db.session.scalar(
            sa.select(OutboxEmail).where(OutboxEmail.to_address == "hanako@example.org")
        )
        pdf = next(a for a in email.attachments if a.generator == "ticket_pdf")
        pdf.generator_args = dict(pdf.generator_args, registration_id=999999)
        db.session.commit()
        app.config["MAIL_PORT"] = smtp_server.port
        send_due(db.session)
        db.session.refresh(email)
        assert email.sent_at is None
        assert email.attempts == 1
        assert "registration 999999 is gone" in email.last_error
    assert not [m for m in smtp_server.messages if m["To"] == "hanako@example.org"]


def test_my_registration_shows_the_qr_code_and_pdf(client, app, day, tmp_path):
    login(client, day["user"])
    page = client.get(f"/ja/my/registrations/{day['reg_id']}/")
    assert page.status_code == 200
    assert 'class="ticket-qr"' in page.text and "<svg" in page.text
    assert f"/ja/my/registrations/{day['reg_id']}/ticket.pdf" in page.text
    listing = client.get("/ja/my/registrations/")
    assert f'data-ticket="{day["reg_id"]}"' in listing.text
    r = client.get(f"/en/my/registrations/{day['reg_id']}/ticket.pdf")
    assert r.status_code == 200
    assert r.mimetype == "application/pdf"
    if shutil.which("pdftotext"):
        text = pdftotext(r.data, tmp_path)
        assert "Ticket" in text and "Hanako Sato" in text and "Attending on site" in text
        assert pdfcheck.pages(r.data, tmp_path) == 1
        assert "IPAexGothic" in pdfcheck.fonts(r.data, tmp_path)
        # The QR code is drawn: dark pixels in the lower half of the page.
        image = pdfcheck.render(r.data, tmp_path)
        lower = image.crop((0, image.height // 2, image.width, image.height))
        assert pdfcheck.ink(lower) > 0.02
    # Somebody else's ticket is not found.
    with app.app_context():
        other = f.user(db.session)
        db.session.commit()
    login(client, other)
    assert client.get(f"/en/my/registrations/{day['reg_id']}/ticket.pdf").status_code == 404


# -- scanning --------------------------------------------------------------------------------


def test_scan_green_then_amber_with_time_and_who(client, app, day):
    login(client, day["organiser"])
    first = scan(client, day, day["token"])
    assert first["colour"] == "green"
    assert first["message"] == "Checked in"
    assert first["name"] == "Hanako Sato"
    assert first["counts"]["checked_in"]["onsite"] == 1
    again = scan(client, day, day["token"])
    assert again["colour"] == "amber"
    assert again["code"] == "already"
    assert again["by"] == day["organiser_name"]
    assert again["at"] and again["at"] in again["detail"]
    assert again["counts"]["checked_in"]["onsite"] == 1
    with app.app_context():
        s = db.session
        assert s.get(Registration, day["reg_id"]).state == S.attended
        rows = s.scalars(sa.select(CheckIn)).all()
        assert [(r.point, r.checked_in_by_id) for r in rows] == [("event", day["organiser"].id)]
        actions = s.scalars(
            sa.select(AuditEntry.action).where(AuditEntry.subject_id == day["reg_id"])
        ).all()
        assert actions.count("checked_in") == 1
    # A link to the token (a QR code with a URL) works too.
    assert scan(client, day, f"https://x.example/t/{day['token']}")["colour"] == "amber"


def test_scan_in_japanese(client, day):
    login(client, day["organiser"])
    client.post(f"/ja/organiser/events/{day['slug']}/check-in/scan", data={"token": day["token"]})
    r = client.post(
        f"/ja/organiser/events/{day['slug']}/check-in/scan", data={"token": day["token"]}
    ).get_json()
    assert r["message"] == "出席済み"
    assert "受付 係" in r["detail"]


def test_scan_red_answers(client, app, day):
    with app.app_context():
        s = db.session
        event = s.get(Event, day["event_id"])
        online = register(s, event, mode="online")
        cancelled = register(s, event)
        cancelled_token = tickets.current_ticket(s, cancelled).token
        registrations.cancel(s, cancelled, actor=None)
        other_event = f.event(s, event.series)
        elsewhere = register(s, other_event)
        s.commit()
        tokens = {
            "online_only": tickets.current_ticket(s, online).token,
            "cancelled": cancelled_token,
            "wrong_event": tickets.current_ticket(s, elsewhere).token,
        }
    login(client, day["organiser"])
    for code, token in tokens.items():
        result = scan(client, day, token)
        assert (result["colour"], result["code"]) == ("red", code)
    assert scan(client, day, "not-a-ticket")["code"] == "unknown"
    assert scan(client, day, "")["code"] == "unknown"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckIn)) == 0


def test_waitlisted_and_unpaid_are_red(app, day):
    with app.app_context():
        s = db.session
        event = s.get(Event, day["event_id"])
        waiting = register(s, event)
        unpaid = register(s, event)
        waiting.state = S.waitlisted
        unpaid.state = S.pending_payment
        s.flush()
        assert tickets.check_in(s, event, waiting, actor=None).code == "waitlisted"
        assert tickets.check_in(s, event, unpaid, actor=None).code == "unpaid"


def test_revoked_ticket_is_red_and_the_new_one_works(client, app, day):
    login(client, day["organiser"])
    r = client.post(
        f"/en/organiser/events/{day['slug']}/registrations/{day['reg_id']}/ticket/revoke"
    )
    assert r.status_code == 302
    with app.app_context():
        new = tickets.current_ticket(db.session, db.session.get(Registration, day["reg_id"]))
    assert new.token != day["token"]
    assert scan(client, day, day["token"])["code"] == "revoked"
    assert scan(client, day, new.token)["colour"] == "green"


def test_scanner_is_for_organisers_only(client, day):
    page = f"/en/organiser/events/{day['slug']}/check-in/"
    assert client.get(page).status_code == 302  # log in first
    login(client, day["user"])
    assert client.get(page).status_code == 404
    assert (
        client.post(f"/en/organiser/events/{day['slug']}/check-in/scan", data={"token": "x"})
    ).status_code == 404
    login(client, day["organiser"])
    r = client.get(page)
    assert r.status_code == 200
    assert "/static/vendor/jsqr/jsQR.js" in r.text
    assert "/static/tickets/checkin.js" in r.text
    assert "<script>" not in r.text  # no inline script (strict CSP)
    assert 'name="csrf-token"' in r.text


def test_typed_search_ignores_kana_script_and_width(client, app, day):
    login(client, day["organiser"])
    base = f"/en/organiser/events/{day['slug']}/check-in/search"
    for q in ("サトウ", "さとう はなこ", "ｻﾄｳ", "佐藤花子", "hanako", "SATO"):
        found = client.get(base, query_string={"q": q}).get_json()["results"]
        assert [r["id"] for r in found] == [day["reg_id"]], q
    assert client.get(base, query_string={"q": "すずき"}).get_json()["results"] == []
    r = client.post(f"/en/organiser/events/{day['slug']}/check-in/registrations/{day['reg_id']}")
    assert r.get_json()["colour"] == "green"
    found = client.get(base, query_string={"q": "さとう"}).get_json()["results"]
    assert found[0]["checked_in"] is True


def test_list_check_in_goes_through_the_same_service(client, app, day):
    login(client, day["organiser"])
    base = f"/en/organiser/events/{day['slug']}/registrations/"
    client.post(base + f"{day['reg_id']}/check-in")
    assert scan(client, day, day["token"])["code"] == "already"
    with app.app_context():
        row = db.session.scalar(sa.select(CheckIn))
        assert row.checked_in_by_id == day["organiser"].id


# -- the exchange meeting's own check-in -----------------------------------------------------


def test_exchange_meeting_check_in(client, app, day):
    with app.app_context():
        s = db.session
        event = s.get(Event, day["event_id"])
        f.enable(s, event, "exchange_meeting")
        s.add(
            ExchangeMeetingSignup(
                registration_id=day["reg_id"], event_id=event.id, state=SignupState.confirmed
            )
        )
        nobody = register(s, event)
        s.commit()
        nobody_token = tickets.current_ticket(s, nobody).token
    login(client, day["organiser"])
    page = client.get(f"/en/organiser/events/{day['slug']}/check-in/?point=reception")
    assert page.status_code == 200 and 'data-point="reception"' in page.text
    first = scan(client, day, day["token"], "reception")
    assert (first["colour"], first["message"]) == ("green", "Welcome to the exchange meeting")
    assert first["counts"]["reception_checked_in"] == 1
    assert first["counts"]["reception_expected"] == 1
    assert scan(client, day, day["token"], "reception")["colour"] == "amber"
    assert scan(client, day, nobody_token, "reception")["code"] == "no_reception_place"
    # The meeting's own check-in is separate.
    assert scan(client, day, day["token"])["colour"] == "green"


def test_reception_point_needs_the_plugin(client, day):
    login(client, day["organiser"])
    assert scan(client, day, day["token"], "reception")["code"] == "no_reception"
    page = client.get(f"/en/organiser/events/{day['slug']}/check-in/?point=reception")
    assert page.status_code == 404


# -- counts on the dashboard -----------------------------------------------------------------


def test_dashboard_counts(client, app, day):
    with app.app_context():
        s = db.session
        event = s.get(Event, day["event_id"])
        register(s, event, mode="online")
        register(s, event)
        s.commit()
    login(client, day["organiser"])
    scan(client, day, day["token"])
    counts = client.get(f"/en/organiser/events/{day['slug']}/check-in/counts").get_json()
    assert counts["checked_in"] == {"onsite": 1, "online": 0}
    assert counts["expected"] == {"onsite": 2, "online": 1}
    page = client.get(f"/en/organiser/events/{day['slug']}/")
    assert 'data-count="checked_in" data-mode="onsite">1<' in page.text
    assert 'data-count="expected" data-mode="onsite">2<' in page.text
    assert "/static/tickets/counts.js" in page.text


@needs_poppler
def test_ticket_pdf_says_whether_the_person_joins_the_exchange_meeting(client, app, day, tmp_path):
    login(client, day["user"])
    url = f"/ja/my/registrations/{day['reg_id']}/ticket.pdf"
    assert "意見交換会" not in pdftotext(client.get(url).data, tmp_path)  # plugin off
    with app.app_context():
        f.enable(db.session, db.session.get(Event, day["event_id"]), "exchange_meeting")
        db.session.commit()
    assert "意見交換会    いいえ" in pdftotext(client.get(url).data, tmp_path)
    with app.app_context():
        db.session.add(
            ExchangeMeetingSignup(
                registration_id=day["reg_id"], event_id=day["event_id"], state=SignupState.confirmed
            )
        )
        db.session.commit()
    assert "意見交換会    はい" in pdftotext(client.get(url).data, tmp_path)
