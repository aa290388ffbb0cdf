"""The year's membership invoices in one step: a preview, then every member company gets its
invoice, emailed as a PDF to the company's contact."""

from __future__ import annotations

import subprocess

import sqlalchemy as sa

from plugins.membership import services
from plugins.membership.models import Membership, MembershipState
from portal.documents.models import Document, DocumentKind
from portal.events.models import Series
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from tests.test_membership import company, database, login, membership, world  # noqa: F401


def _setup(app, world):  # noqa: F811
    """Last year: Kakuu (regular, ¥100,000) and Fictional (large, ¥300,000, no contact email)
    were members, Gone cancelled; this year Already is invoiced already."""
    with database(app) as s:
        series = s.get(Series, world["study"])
        year = services.current_fiscal_year(series)
        kakuu = s.get(services.MemberCompany, world["company"])
        membership(s, kakuu, year - 1)
        fictional = company(
            s,
            series,
            domains=("fictional.example",),
            name=BilingualText(ja="架空合金工業株式会社", en="Fictional Alloys Inc."),
            contact_email="",
            language="en",
        )
        services.record_membership(
            s,
            fictional,
            year - 1,
            tier=BilingualText(ja="大口", en="Large"),
            amount_minor=300000,
            actor=None,
        )
        gone = company(s, series, domains=("gone.example",), contact_email="x@gone.example")
        services.cancel_membership(s, membership(s, gone, year - 1), None)
        already = company(
            s, series, domains=("already.example",), contact_email="a@already.example"
        )
        membership(s, already, year - 1)
        membership(s, already, year)
        s.commit()
        return year, kakuu.id, fictional.id


def test_preview_then_issue_the_years_invoices_mailed_as_pdf(app, client, world):  # noqa: F811
    year, kakuu, fictional = _setup(app, world)
    login(client, app, world["organiser"])
    preview = client.get(f"/en/organiser/membership/study/invoices?fy={year}")
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert page.count("<tr data-company=") == 2
    assert f'data-company="{kakuu}"' in page and f'data-company="{fictional}"' in page
    assert "hanako.sato@kakuu-metal.co.jp" in page
    assert "No contact email" in page
    assert "¥400,000" in page
    with database(app) as s:  # the preview changes nothing
        assert (
            s.scalar(
                sa.select(sa.func.count())
                .select_from(Membership)
                .where(Membership.fiscal_year == year)
            )
            == 1
        )
    answer = client.post(
        f"/en/organiser/membership/study/invoices?fy={year}", data={"due_date": f"{year}-05-31"}
    )
    assert answer.status_code == 302
    with database(app) as s:
        new = s.scalars(
            sa.select(Membership)
            .where(Membership.fiscal_year == year, Membership.company_id.in_([kakuu, fictional]))
            .order_by(Membership.company_id)
        ).all()
        assert [(m.state, m.amount_minor) for m in new] == [
            (MembershipState.unpaid, 100000),
            (MembershipState.unpaid, 300000),
        ]
        invoices = s.scalars(
            sa.select(Document).where(
                Document.kind == DocumentKind.invoice,
                Document.subject_id.in_([m.id for m in new]),
            )
        ).all()
        assert len(invoices) == 2
        emails = s.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.template == "membership/invoice")
        ).all()
        assert [e.to_address for e in emails] == ["hanako.sato@kakuu-metal.co.jp"]
        mail = emails[0]
        invoice = next(d for d in invoices if d.recipient_company == "架空金属株式会社")
        assert invoice.reference in mail.body_text
        assert [(a.filename, a.content_type) for a in mail.attachments] == [
            (f"{invoice.reference}.pdf", "application/pdf")
        ]
        pdf = mail.attachments[0].content
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "請求書" in text and invoice.reference in text and "¥100,000" in text
    assert "T0000000000000" in text and "口座名義" in text
    # Pressing again issues nothing more.
    again = client.post(f"/en/organiser/membership/study/invoices?fy={year}", data={})
    assert again.status_code == 302
    with database(app) as s:
        count = s.scalar(
            sa.select(sa.func.count()).select_from(Membership).where(Membership.fiscal_year == year)
        )
        assert count == 3
    preview = client.get(f"/en/organiser/membership/study/invoices?fy={year}")
    assert 'id="nothing-to-invoice"' in preview.get_data(as_text=True)


def test_the_years_invoices_are_for_the_series_organisers_only(app, client, world):  # noqa: F811
    _setup(app, world)
    for who in ("other_org", "outsider"):
        login(client, app, world[who])
        assert client.get("/en/organiser/membership/study/invoices").status_code == 404
        assert client.post("/en/organiser/membership/study/invoices", data={}).status_code == 404
