"""Importing an existing list (CSV or Excel: name, kana, email, affiliation, sector, language).

The reading follows the attendance import (``plugins/attendance/importer.py``): UTF-8 with or
without BOM or Shift_JIS/CP932 as Excel writes it, or an .xlsx workbook (first sheet); English
or Japanese headers. ``preview`` is a dry run (nothing saved): new people, people already in
the portal (merged by email address: the existing record is kept, empty fields are filled),
people already on the list, and rows that cannot be imported with the reason. The rows travel
from the preview to the import in a signed hidden field (``stash``), not re-uploaded.
``import_rows`` adds every row to the list either asked to confirm by email (pending until
they do) or kept as imported, not yet confirmed (on the list, sent nothing), as the office
chooses.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import Person, Sector
from portal.announcements import subscriptions
from portal.announcements.models import Subscription, SubscriptionStatus
from portal.errors import UserError
from portal.events.models import Series

MAX_ROWS = 20000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

HEADERS = {
    "name": ("name", "氏名", "名前", "お名前"),
    "kana": ("kana", "フリガナ", "ふりがな", "カナ", "よみ"),
    "email": ("email", "e-mail", "mail", "メールアドレス", "メール", "電子メール"),
    "affiliation": ("affiliation", "所属", "会社名", "勤務先", "所属機関"),
    "sector": ("sector", "区分", "所属区分"),
    "language": ("language", "言語", "希望言語"),
}
SECTORS = {
    "company": Sector.company,
    "企業": Sector.company,
    "企業関係者": Sector.company,
    "university": Sector.university,
    "大学": Sector.university,
    "大学関係者": Sector.university,
    "government_other": Sector.government_other,
    "government": Sector.government_other,
    "other": Sector.government_other,
    "官庁": Sector.government_other,
    "官庁他": Sector.government_other,
    "その他": Sector.government_other,
}
LANGUAGES = {
    "ja": "ja",
    "日本語": "ja",
    "japanese": "ja",
    "en": "en",
    "英語": "en",
    "english": "en",
}


class ImportError_(UserError):  # noqa: N801 - not the builtin
    default_message = _l("The file could not be read.")


@dataclass
class Row:
    line: int
    name: str
    kana: str
    email: str
    affiliation: str
    sector: str
    language: str


@dataclass
class Preview:
    rows: list[Row]
    new: list[Row] = field(default_factory=list)
    known: list[Row] = field(default_factory=list)  # the person exists: merged
    on_list: list[Row] = field(default_factory=list)  # already on the list: unchanged
    skipped: list[tuple[Row, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the file as a whole cannot be imported


@dataclass
class Result:
    added: int = 0
    merged: int = 0
    unchanged: int = 0


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportError_(_l("The file is neither UTF-8 nor Shift_JIS text."))


def _table(data: bytes, filename: str) -> list[list]:
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        import zipfile

        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ImportError_(_l("The file is not an Excel workbook (.xlsx).")) from exc
        try:
            return [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    text = _decode(data)
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ImportError_(_l("The file is not a CSV table.")) from exc


def _cell(value) -> str:
    return "" if value is None else str(value).strip()


def read_upload(data: bytes, filename: str = "") -> list[Row]:
    table = [r for r in _table(data, filename) if any(_cell(c) for c in r)]
    if not table:
        raise ImportError_(_l("The file is empty."))
    header = [_cell(c).lower() for c in table[0]]
    columns: dict[str, int] = {}
    for key, names in HEADERS.items():
        for index, cell in enumerate(header):
            if cell in names:
                columns[key] = index
                break
    if "email" not in columns:
        raise ImportError_(_l("The first row must name the columns, with an email column."))
    if len(table) - 1 > MAX_ROWS:
        raise ImportError_(_l("The file has more than %(n)d rows.", n=MAX_ROWS))
    rows = []
    for line, cells in enumerate(table[1:], start=2):

        def get(key, cells=cells):
            index = columns.get(key)
            return _cell(cells[index]) if index is not None and index < len(cells) else ""

        rows.append(
            Row(
                line=line,
                name=get("name")[:200],
                kana=get("kana")[:200],
                email=get("email")[:254],
                affiliation=get("affiliation")[:200],
                sector=get("sector").lower(),
                language=get("language").lower(),
            )
        )
    return rows


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="portal.announcements.import")


def stash(rows: list[Row]) -> str:
    return _serializer().dumps([list(r.__dict__.values()) for r in rows])


def unstash(value: str) -> list[Row]:
    try:
        data = _serializer().loads(value)
        return [Row(*item) for item in data]
    except (BadSignature, TypeError, ValueError) as exc:
        raise ImportError_(_l("The preview has expired. Please choose the file again.")) from exc


def preview(session: Session, series: Series, rows: list[Row]) -> Preview:
    """What the import would do (two queries, whatever the size)."""
    result = Preview(rows=rows)
    seen: set[str] = set()
    valid = []
    for row in rows:
        email = row.email.lower()
        if not EMAIL.match(email):
            result.skipped.append((row, str(_l("not a valid email address"))))
        elif email in seen:
            result.skipped.append((row, str(_l("the same address appears earlier in the file"))))
        elif row.sector and row.sector not in SECTORS:
            result.skipped.append((row, str(_l("unknown sector"))))
        elif row.language and row.language not in LANGUAGES:
            result.skipped.append((row, str(_l("unknown language"))))
        else:
            seen.add(email)
            valid.append(row)
    people = _people_by_email(session, [r.email.lower() for r in valid])
    statuses: dict[int, SubscriptionStatus] = {}
    if people:
        statuses = dict(
            session.execute(
                sa.select(Subscription.person_id, Subscription.status).where(
                    Subscription.series_id == series.id,
                    Subscription.person_id.in_([p.id for p in people.values()]),
                )
            ).all()
        )
    for row in valid:
        person = people.get(row.email.lower())
        status = statuses.get(person.id) if person is not None else None
        if person is None:
            result.new.append(row)
        elif status in (SubscriptionStatus.left, SubscriptionStatus.undeliverable):
            result.skipped.append((row, str(_l("left the list or the address bounces"))))
        elif status in (SubscriptionStatus.confirmed, SubscriptionStatus.imported):
            result.on_list.append(row)
        else:
            result.known.append(row)
    return result


def _people_by_email(session: Session, emails: list[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for start in range(0, len(emails), 1000):
        chunk = emails[start : start + 1000]
        for person in session.scalars(
            sa.select(Person)
            .where(sa.func.lower(Person.email).in_(chunk), Person.anonymised_at.is_(None))
            .order_by(Person.id)
        ):
            found.setdefault(person.email.lower(), person)
    return found


def _split(text: str) -> tuple[str, str]:
    parts = text.replace("\u3000", " ").split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (text, "")


def import_rows(
    session: Session, series: Series, preview: Preview, *, ask_to_confirm: bool, actor
) -> Result:
    """Add the previewed rows to the list. Does not commit."""
    result = Result(unchanged=len(preview.on_list))
    people = _people_by_email(session, [r.email.lower() for r in preview.known + preview.new])
    for row in preview.known + preview.new:
        person = people.get(row.email.lower())
        language = LANGUAGES.get(row.language, "")
        if person is None:
            family, given = _split(row.name)
            family_kana, given_kana = _split(row.kana)
            person = Person(
                email=row.email.lower(),
                family_name=family,
                given_name=given,
                family_name_kana=family_kana,
                given_name_kana=given_kana,
                affiliation=row.affiliation,
                sector=SECTORS.get(row.sector),
                preferred_language=language or series.default_language,
            )
            session.add(person)
            session.flush()
            result.added += 1
        else:
            if not person.affiliation and row.affiliation:
                person.affiliation = row.affiliation
            if person.sector is None and row.sector in SECTORS:
                person.sector = SECTORS[row.sector]
            result.merged += 1
        sub = subscriptions.subscription_of(session, series.id, person.id)
        if sub is None:
            sub = Subscription(
                series_id=series.id, person_id=person.id, status=None, source="import"
            )
        sub.language = language or sub.language or person.preferred_language or "ja"
        if ask_to_confirm:
            subscriptions.move(session, sub, SubscriptionStatus.pending, "requested", note="import")
            subscriptions.send_confirmation(session, sub, person)
        else:
            subscriptions.move(session, sub, SubscriptionStatus.imported, "imported", note="import")
    audit.record(
        session,
        actor,
        "series",
        series.id,
        "list_imported",
        added=result.added,
        merged=result.merged,
        ask_to_confirm=ask_to_confirm,
    )
    return result
