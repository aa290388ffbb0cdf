"""Words a Japanese office (事務局) would use, and emails that reach a person: no あなた, 事務局
everywhere, full-width brackets and colons, 名称 in the fee table, 日本時間 / JST, deadlines as
2026年12月5日(土) 15:24まで, 「振込依頼人名の前に」, emails signed by the office with a Reply-To,
confirmations with venue and time, the payment-pending email with bank details and reference."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po

from portal.config import ROOT
from portal.db import db
from portal.i18n import BilingualText, format_datetime, format_deadline, format_zone
from portal.mail.models import OutboxEmail
from portal.registration import services
from portal.registration.models import FeeCategory
from tests import factories as f

CATALOGUE = Path(ROOT) / "translations/ja/LC_MESSAGES/messages.po"
PROTECT = re.compile(
    r"%\([a-z_]+\)[sdrf]|%%|\{[a-z_]+\}|https?://\S*|\d{1,2}:\d{2}|HH:MM|<[^>]+>|YYYY-MM-DDTHH:MM"
)
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _translations():
    with CATALOGUE.open("rb") as f_:
        catalogue = read_po(f_, locale="ja")
    for message in catalogue:
        if not message.id:
            continue
        strings = [message.string] if isinstance(message.string, str) else message.string
        yield from (s for s in strings if s)


def test_catalogue_says_jimukyoku_and_never_anata():
    texts = list(_translations())
    assert [t for t in texts if "あなた" in t] == []
    assert [t for t in texts if "主催者" in t or "幹事" in t] == []
    assert sum("事務局" in t for t in texts) >= 27


def test_japanese_text_has_full_width_brackets_and_colons():
    offenders = [
        t for t in _translations() if JAPANESE.search(t) and re.search(r"[():]", PROTECT.sub("", t))
    ]
    assert offenders == []


def test_times_are_named_as_people_say_them():
    moment = datetime(2026, 12, 5, 6, 24, tzinfo=UTC)
    assert format_zone("Asia/Tokyo", "ja") == "日本時間"
    assert format_zone("Asia/Tokyo", "en") == "JST"
    assert format_deadline(moment, "Asia/Tokyo", "ja") == "2026年12月5日(土) 15:24まで"
    assert format_datetime(moment, "Asia/Tokyo", "en") == "5 December 2026, 15:24 JST"
    assert format_datetime(moment, "America/New_York", "en").endswith("01:24 EST")
    assert "Asia/Tokyo" not in format_datetime(moment, "Asia/Tokyo", "ja")


@contextmanager
def _context(app):
    with app.app_context():
        yield db.session
        db.session.commit()


@pytest.fixture
def world(app):
    app.config.update(OFFICE_EMAIL="office@rare-metal.example", OFFICE_PHONE="03-0000-0000")
    with _context(app) as s:
        series = f.series(s)
        event = f.event(
            s,
            series,
            starts_at=datetime(2030, 6, 3, 5, 30, tzinfo=UTC),
            venue=BilingualText(ja="東京大学生産技術研究所", en="IIS, University of Tokyo"),
        )
        event.ends_at = event.starts_at + timedelta(hours=3, minutes=30)
        f.enable(s, event, "bank_transfer", bank_account="見本銀行 駒場支店 普通 1234567")
        free = FeeCategory(
            event_id=event.id, code="free", name={"ja": "学生", "en": "Students"}, price_minor=0
        )
        paid = FeeCategory(
            event_id=event.id,
            code="paid",
            name={"ja": "一般", "en": "General"},
            price_minor=5000,
            position=1,
        )
        s.add_all([free, paid])
        s.flush()
        organiser = f.user(s, roles=(("organiser", series),))
        return dict(
            slug=event.slug,
            event_id=event.id,
            free=free.id,
            paid=paid.id,
            organiser=organiser.get_id(),
        )


def _register(app, world, category, lang):
    from portal.events.models import Event

    with _context(app) as s, app.test_request_context(f"/{lang}/"):
        event = s.get(Event, world["event_id"])
        person = f.person(s, preferred_language=lang)
        registration = services.register(
            s, event, person, mode="onsite", fee_category=world[category], privacy_accepted=True
        )
        email = s.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.to_address == person.email)
        ).one()
        return registration.id, email


def test_confirmation_email_has_venue_time_and_the_office_signature(app, world):
    _, ja = _register(app, world, "free", "ja")
    assert "会場：東京大学生産技術研究所" in ja.body_text
    assert "14:30–18:00（日本時間）" in ja.body_text
    assert "レアメタル研究会 事務局" in ja.body_text
    assert "office@rare-metal.example" in ja.body_text and "03-0000-0000" in ja.body_text
    assert "あなた" not in ja.body_text + ja.body_html
    assert "東京大学生産技術研究所" in ja.body_html and "事務局" in ja.body_html
    assert ja.reply_to == "office@rare-metal.example"
    _, en = _register(app, world, "free", "en")
    assert "Venue: IIS, University of Tokyo" in en.body_text
    assert "14:30–18:00 (JST)" in en.body_text
    assert "Rare Metal Study Group office" in en.body_text
    assert en.reply_to == "office@rare-metal.example"


def test_payment_pending_email_has_bank_details_and_reference(app, world):
    reg_id, ja = _register(app, world, "paid", "ja")
    assert ja.template == "registration/pending_payment"
    assert f"R{reg_id:06d}" in ja.body_text
    assert "振込依頼人名の前に" in ja.body_text
    assert "振込先口座：見本銀行 駒場支店 普通 1234567" in ja.body_text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日\(.\) \d\d:\d\dまで", ja.body_text)
    reg_id, en = _register(app, world, "paid", "en")
    assert f"R{reg_id:06d}" in en.body_text and "1234567" in en.body_html


def _log_in(client, user_id):
    with client.session_transaction() as s:
        s["_user_id"] = user_id
        s["_fresh"] = True


def test_event_page_shows_the_fee_table_and_the_zone(app, client, world):
    page = client.get(f"/ja/events/{world['slug']}/")
    assert page.status_code == 200
    table = page.text.split('class="fee-table"', 1)[1].split("</table>", 1)[0]
    assert '<th scope="col">名称</th>' in table
    assert "学生" in table and "一般" in table and "¥5,000" in table and "無料" in table
    assert "（日本時間）" in page.text and "Asia/Tokyo" not in page.text
    en = client.get(f"/en/events/{world['slug']}/")
    assert "(JST)" in en.text and "General" in en.text and "Asia/Tokyo" not in en.text


def test_organiser_fee_table_column_is_meisho(app, client, world):
    _log_in(client, world["organiser"])
    page = client.get(f"/ja/organiser/events/{world['slug']}/registrations/fees/")
    assert page.status_code == 200
    head = page.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert "<th>名称</th>" in head and "氏名" not in head


def _mail_templates():
    """Every email template (not the partials), in the core and in the plugins."""
    roots = [Path(ROOT) / "portal/templates", *Path(ROOT).glob("plugins/*/templates")]
    for root in roots:
        for path in sorted((root / "mail").rglob("*")):
            if path.suffix in (".txt", ".html") and not path.name.startswith("_"):
                yield root, path


def _reaches_signature(name: str, roots, seen: set) -> bool:
    if name in seen:
        return False
    seen.add(name)
    if name.startswith("mail/_signature."):
        return True
    source = next((r / name).read_text() for r in roots if (r / name).exists())
    included = re.findall(r'{%-?\s*(?:include|extends)\s+"([^"]+)"', source)
    return any(_reaches_signature(n, roots, seen) for n in included)


def test_every_email_is_signed_by_the_office():
    """Card payments, receipts, refunds, invoices…: every email ends with the 事務局's name
    and contact (settings), not a bare portal name."""
    roots = [Path(ROOT) / "portal/templates", *Path(ROOT).glob("plugins/*/templates")]
    unsigned = [
        str(path.relative_to(ROOT))
        for root, path in _mail_templates()
        if not _reaches_signature(str(path.relative_to(root)), roots, set())
    ]
    assert unsigned == []
