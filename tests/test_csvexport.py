"""CSV exports: a BOM for Excel, and text that a spreadsheet would run as a formula kept as text."""

from portal.csvexport import csv_text, safe_cell
from portal.events.models import AttendanceMode
from portal.registration import services as registration
from tests import factories as f
from tests.test_accounts import db_session


def test_safe_cell():
    assert safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert [safe_cell(v) for v in ("+1", "-1", "@a", "\tx", "山田", None, 5)] == [
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "山田",
        "",
        5,
    ]


def test_csv_text_has_a_bom_and_crlf():
    assert csv_text([["名前", "金額"], ["山田", 5000]]) == "\ufeff名前,金額\r\n山田,5000\r\n"


def test_registration_export_keeps_formulas_as_text(app, client):
    with db_session(app) as s:
        organiser = f.user(s, is_admin=True, email="admin@example.org")
        event = f.event(s)
        guest = f.user(s, family_name="=cmd|' /C calc'!A0", given_name="太郎")
        registration.register(
            s, event, guest.person, mode=AttendanceMode.onsite, user=guest, privacy_accepted=True
        )
        s.commit()
        slug = event.slug
    client.post("/en/account/login", data={"email": organiser.email, "password": f.PASSWORD})
    r = client.get(f"/en/organiser/events/{slug}/registrations/export.csv")
    assert r.status_code == 200
    text = r.data.decode("utf-8")
    assert text.startswith("\ufeff")
    assert ",'=cmd|' /C calc'!A0,太郎," in text
