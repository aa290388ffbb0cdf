"""Receipts and invoices: sequential numbers, never edited, corrections name what they replace."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from portal.documents.models import Document, DocumentKind
from portal.documents.pdf import render_pdf
from portal.documents.services import (
    DocumentError,
    cancel_document,
    correct_document,
    included_tax,
    issue_document,
)
from tests import factories as f


def _receipt(session, series, **kw):
    values = dict(
        series=series,
        kind=DocumentKind.receipt,
        language="ja",
        lines=[
            {"label": "参加費", "amount_minor": 5000},
            {"label": "意見交換会費", "amount_minor": 3000},
        ],
        currency="JPY",
        subject_type="registration",
        subject_id=1,
        purpose="第94回 レアメタル研究会 参加費",
        recipient_name="山田 太郎",
    )
    values.update(kw)
    return issue_document(session, **values)


def test_numbers_are_one_sequence_per_kind_and_year_for_the_issuer(session):
    study, workshop = f.series(session), f.series(session, "workshop")
    first = _receipt(session, study)
    second = _receipt(session, study)
    other = _receipt(session, workshop, currency="USD", language="en")
    invoice = _receipt(session, study, kind=DocumentKind.invoice)
    assert [first.number, second.number, other.number, invoice.number] == [1, 2, 3, 1]
    year = datetime.now(ZoneInfo("Asia/Tokyo")).year
    assert first.year == invoice.year == year
    assert first.reference == f"R-{year}-000001"
    assert other.reference == f"R-{year}-000003"
    assert invoice.reference == f"I-{year}-000001"


def test_tax_is_the_included_part_rounded_down():
    assert included_tax(8000, 10) == 727
    assert included_tax(11000, 10) == 1000
    assert included_tax(25000, 0) == 0


def test_receipt_snapshot_and_tax(session):
    doc = _receipt(session, f.series(session))
    assert doc.total_minor == 8000
    assert doc.tax_rate == 10 and doc.tax_minor == 727
    assert doc.issuer["registration_number"] == "T0000000000000"


def test_correction_is_a_new_document_and_the_original_is_unchanged(session):
    study = f.series(session)
    original = _receipt(session, study)
    corrected = correct_document(session, original, recipient_company="架空金属株式会社")
    cancellation = cancel_document(session, corrected)
    session.commit()
    again = session.get(Document, original.id)
    assert again.recipient_company == "" and again.total_minor == 8000
    assert corrected.replaces_id == original.id and corrected.number == 2
    assert cancellation.replaces_id == corrected.id and cancellation.is_cancellation
    assert cancellation.total_minor == -8000
    assert session.scalar(sa.select(sa.func.count()).select_from(Document)) == 3


def test_bad_registration_number_is_refused(app, session):
    app.config["ISSUER_REGISTRATION_NUMBER"] = "T123"
    with pytest.raises(DocumentError):
        _receipt(session, f.series(session))


@pytest.mark.parametrize(
    "lang, words",
    [
        ("ja", ["領収書", "山田 太郎 様", "¥8,000", "T0000000000000"]),
        ("en", ["Receipt", "Amount received", "¥8,000"]),
    ],
)
def test_pdf_renders_in_the_document_language(app, session, tmp_path, lang, words):
    doc = _receipt(session, f.series(session), language=lang)
    with app.test_request_context():
        pdf = render_pdf(doc)
    assert pdf.startswith(b"%PDF")
    path = Path(tmp_path) / "doc.pdf"
    path.write_bytes(pdf)
    if not Path("/usr/bin/pdftotext").exists():
        if os.environ.get("CI"):
            pytest.fail("pdftotext is missing; .ci/run installs poppler-utils")
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for word in words:
        assert word in text
