"""Receipts and invoices as PDF on a machine with no Japanese font pack and no poppler-data:
the embedded IPAex fonts make pdftotext read them and pdftoppm draw them; Platypus wraps long
names and labels and flows long documents onto a second page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta

import pytest

from portal.db import utcnow
from portal.documents.models import DocumentKind
from portal.documents.pdf import render_pdf
from portal.documents.services import cancel_document, correct_document, issue_document
from tests import factories as f

TOOLS = ("pdftotext", "pdftoppm", "pdffonts", "pdfinfo")


@pytest.fixture(autouse=True)
def poppler():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} missing; .ci/run installs poppler-utils")
        pytest.skip(f"{missing} not installed (poppler-utils)")


def issue(session, series=None, **kw):
    values = dict(
        series=series or f.series(session),
        kind=DocumentKind.receipt,
        language="ja",
        lines=[
            {"label": "参加費（一般）", "amount_minor": 5000},
            {"label": "意見交換会費", "amount_minor": 3000},
        ],
        currency="JPY",
        subject_type="registration",
        subject_id=1,
        purpose="第94回 レアメタル研究会 参加費",
        recipient_name="山田 太郎",
        paid_at=utcnow(),
    )
    values.update(kw)
    return issue_document(session, **values)


def pdf_of(app, document, language=None) -> bytes:
    with app.test_request_context("/"):
        return render_pdf(document, language=language)


def run(tool: str, pdf: bytes, *args: str) -> bytes:
    return subprocess.run(
        [tool, *args, "-", "-"] if tool != "pdffonts" else [tool, "-"],
        input=pdf,
        capture_output=True,
        check=True,
    ).stdout


def text(pdf: bytes, *args: str) -> str:
    return run("pdftotext", pdf, *args).decode("utf-8")


def flat(pdf: bytes) -> str:
    """The text without any whitespace: what wrapped lines say, joined."""
    return re.sub(r"\s+", "", text(pdf))


def pages(pdf: bytes) -> int:
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    return int(re.search(rb"Pages:\s+(\d+)", info).group(1))


DPI = 50


def dark_pixels(pdf: bytes, page: int = 1, rows: tuple[int, int] | None = None) -> int:
    """Dark pixels of a page rendered in grey at 50 dpi by pdftoppm (within ``rows``, top
    and bottom in millimetres from the top of the page, if given)."""
    raw = subprocess.run(
        ["pdftoppm", "-gray", "-r", str(DPI), "-f", str(page), "-l", str(page), "-"],
        input=pdf,
        capture_output=True,
        check=True,
    ).stdout
    # PGM: "P5\n<width> <height>\n<max>\n" then one byte per pixel
    match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", raw)
    width, height = int(match.group(1)), int(match.group(2))
    pixels = raw[match.end() :]
    assert len(pixels) == width * height
    if rows is not None:
        top, bottom = (round(mm_ * DPI / 25.4) for mm_ in rows)
        pixels = pixels[top * width : bottom * width]
    return sum(1 for byte in pixels if byte < 128)


def test_japanese_receipt_reads_with_the_qualified_invoice_wording(app, session):
    document = issue(session)
    pdf = pdf_of(app, document)
    words = text(pdf)
    year = document.year
    for expected in (
        "領収書",
        f"領収書番号 R-{year}-000001",
        "山田 太郎 様",
        "¥8,000",
        "T0000000000000",
        "登録番号",
        "10%対象",
        "うち消費税 ¥727",
        "但し 第94回 レアメタル研究会 参加費 として",
        "上記正に領収いたしました",
        "一般財団法人 見本金属振興財団",
    ):
        assert expected in words, expected
    assert "請求書" not in words and "口座名義" not in words  # receipts: no bank account


def test_every_font_is_embedded_and_the_page_is_drawn(app, session):
    pdf = pdf_of(app, issue(session))
    fonts = run("pdffonts", pdf).decode()
    rows = [line.split() for line in fonts.splitlines()[2:]]
    assert rows, fonts
    assert all("IPAex" in row[0] for row in rows), fonts
    assert all(row[-5] == "yes" for row in rows), fonts  # the "emb" column
    # Glyphs are drawn, not only the ruled lines: the title band (18–30 mm from the top) has
    # no line at all, only the word 領収書 in 22 pt; without a usable font it stays white.
    assert dark_pixels(pdf, rows=(18, 30)) > 100
    assert dark_pixels(pdf) > 1500


def test_a_company_alone_is_addressed_with_onchu(app, session):
    pdf = pdf_of(app, issue(session, recipient_name="", recipient_company="架空金属株式会社"))
    assert "架空金属株式会社 御中" in text(pdf)
    assert "様" not in text(pdf)


def test_a_long_company_name_wraps_and_keeps_its_honorific(app, session):
    company = "国立研究開発法人 架空レアメタル資源循環技術総合研究機構 " * 4
    long_label = "参加費（一般・会場参加・意見交換会を含む・" + "長い区分名" * 20 + "）"
    document = issue(
        session,
        recipient_company=company.strip(),
        recipient_name="長谷川 由美子",
        lines=[{"label": long_label, "amount_minor": 12345}],
    )
    pdf = pdf_of(app, document)
    joined = flat(pdf)
    assert re.sub(r"\s+", "", company) in joined
    assert "長谷川由美子様" in joined
    assert re.sub(r"\s+", "", long_label) in joined
    assert "¥12,345" in joined
    # The label wrapped beside its amount instead of running over it: the amount is on the
    # same line as the first words of the label, not pushed out of the page.
    assert pages(pdf) == 1


def test_many_lines_flow_onto_a_second_page(app, session):
    lines = [{"label": f"明細 {n:03d}: 資料代", "amount_minor": 100} for n in range(1, 51)]
    document = issue(session, lines=lines)
    pdf = pdf_of(app, document)
    assert pages(pdf) == 2
    second = text(pdf, "-f", "2", "-l", "2")
    assert "明細 050: 資料代" in second
    assert "品目" in second  # the table's header is repeated
    assert f"R-{document.year}-000001" in second  # every page names the document
    assert "¥5,000" in second  # the total, after the last line
    assert dark_pixels(pdf, 2, rows=(18, 60)) > 100


def test_english_invoice_for_an_overseas_payer(app, session):
    workshop = f.series(session, "workshop")
    document = issue(
        session,
        series=workshop,
        kind=DocumentKind.invoice,
        language="en",
        currency="USD",
        lines=[{"label": "Registration fee (General)", "amount_minor": 25000}],
        recipient_name="Jane Doe",
        recipient_company="Fictional Alloys Inc.",
        recipient_address="1 Example Street, Boston, MA 02110, USA",
        purpose="Reactive Metal Workshop 2027",
        due_date=utcnow() + timedelta(days=30),
        paid_at=None,
    )
    pdf = pdf_of(app, document)
    words = text(pdf)
    for expected in (
        "Invoice",
        f"Invoice number I-{document.year}-000001",
        "Fictional Alloys Inc.",
        "Jane Doe",
        "US$250.00",
        "All amounts in USD",
        "T0000000000000",
        "Payment due by",
        "Bank details for international transfers",
        "SWIFT/BIC",
        "SMPLJPJT",
        "Account holder",
        "Sample Metals Foundation",
        "Bank address",
    ):
        assert expected in words, expected
    assert "$250.00" not in words.replace("US$250.00", "")  # never a bare $
    assert "For Reactive Metal Workshop 2027" not in words  # 但し書き is for receipts only


def test_japanese_invoice_has_due_date_account_and_holder(app, session):
    document = issue(
        session,
        kind=DocumentKind.invoice,
        recipient_name="",
        recipient_company="架空金属株式会社",
        lines=[{"label": "2026年度 法人会費（一般）", "amount_minor": 100000}],
        purpose="2026年度 法人会費",
        due_date=utcnow() + timedelta(days=30),
        paid_at=None,
    )
    words = text(pdf_of(app, document))
    for expected in (
        "請求書",
        f"請求書番号 I-{document.year}-000001",
        "架空金属株式会社 御中",
        "¥100,000",
        "お支払期限",
        "お振込先",
        "見本銀行 駒場支店 普通 0000000",
        "口座名義",
        "ザイ）ミホンキンゾクシンコウザイダン",
        "T0000000000000",
    ):
        assert expected in words, expected
    assert "但し" not in words


def test_a_correction_names_the_document_it_replaces(app, session):
    original = issue(session)
    corrected = correct_document(session, original, recipient_company="架空金属株式会社")
    cancellation = cancel_document(session, corrected)
    words = text(pdf_of(app, corrected))
    assert f"領収書番号 R-{original.year}-000002" in words
    assert f"R-{original.year}-000001" in words  # the one it replaces
    cancelled = text(pdf_of(app, cancellation))
    assert "取消" in cancelled and "-¥8,000" in cancelled


def test_the_same_document_renders_with_english_labels(app, session):
    document = issue(session)
    words = text(pdf_of(app, document, language="en"))
    assert "Receipt number" in words and "¥8,000" in words and "山田 太郎" in words


def test_the_pdf_first_rendered_is_the_one_kept_in_the_file_storage(app, session, monkeypatch):
    """The PDF a payer received is the PDF shown later, on any machine: the first rendering
    in each language is stored (local folder or S3) and served from there, not drawn again
    from whatever the layout code or the issuer's settings are by then."""
    from portal import storage
    from portal.documents import layout
    from portal.documents.pdf import stored_key

    document = issue(session)
    session.commit()
    first = pdf_of(app, document)
    with app.app_context():
        key = stored_key(document, "ja")
        assert storage.storage().read(key) == first
        assert storage.storage().keys("documents/") == [key]
    build = layout.build_pdf
    monkeypatch.setattr(layout, "build_pdf", lambda *a, **k: b"drawn again")
    assert pdf_of(app, document) == first
    monkeypatch.setattr(layout, "build_pdf", build)
    english = pdf_of(app, document, language="en")
    assert english != first and "Receipt" in text(english)
    with app.app_context():
        assert len(storage.storage().keys("documents/")) == 2
