"""Corporate membership: fiscal years, who is a member, invoices and receipts, invitations,
organiser pages, CSV, renewal reminders and the personal-data hooks."""

from __future__ import annotations

import csv
import io
import re
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from plugins.membership import services
from plugins.membership.models import (
    CompanyMember,
    MemberCompany,
    MemberHow,
    MemberInvitation,
    Membership,
    MembershipState,
    RenewalReminder,
)
from plugins.membership.services import MembershipError, fiscal_year
from portal.accounts.models import User
from portal.audit import AuditEntry
from portal.db import db, utcnow
from portal.documents.models import Document, DocumentKind
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from tests import factories as f

# Documents are numbered per kind and calendar year of issue (Japan time): I-2026-000001.
ISSUED_IN = datetime.now(ZoneInfo("Asia/Tokyo")).year


@contextmanager
def database(app):
    """A database session in its own app context (not shared with the test client)."""
    with app.app_context():
        yield db.session


def login(client, app, user_id: int) -> None:
    with database(app) as s:
        stamp = s.get(User, user_id).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True


def company(s, series, domains=("kakuu-metal.co.jp",), **kw) -> MemberCompany:
    values = dict(
        name=BilingualText(ja="架空金属株式会社", en="Kakuu Metals Co., Ltd."),
        contact_name="佐藤 花子",
        contact_email="hanako.sato@kakuu-metal.co.jp",
        billing_address="東京都千代田区丸の内1-1-1",
        language="ja",
    )
    values.update(kw)
    return services.create_company(s, series, None, domains=list(domains), **values)


def membership(s, comp, year=None, amount=100000, **kw) -> Membership:
    year = services.current_fiscal_year(comp.series) if year is None else year
    return services.record_membership(
        s,
        comp,
        year,
        tier=BilingualText(ja="一般", en="Regular"),
        amount_minor=amount,
        actor=None,
        **kw,
    )


@pytest.fixture
def world(app):
    with database(app) as s:
        study = f.series(s, slug="study")
        other = f.series(s, slug="other")
        f.enable_for_series(s, study, "membership")
        admin = f.user(s, email="admin@example.org", is_admin=True)
        organiser = f.user(s, email="org@example.org", roles=(("organiser", study),))
        other_org = f.user(s, email="org2@example.org", roles=(("organiser", other),))
        outsider = f.user(s, email="someone@example.org")
        employee = f.user(s, email="ichiro@kakuu-metal.co.jp")
        contact = f.user(s, email="hanako.sato@kakuu-metal.co.jp")
        comp = company(s, study)
        s.commit()
        ids = dict(
            study=study.id,
            other=other.id,
            admin=admin.id,
            organiser=organiser.id,
            other_org=other_org.id,
            outsider=outsider.id,
            employee=employee.id,
            contact=contact.id,
            company=comp.id,
        )
    return ids


# -- fiscal year -----------------------------------------------------------------------------


def test_fiscal_year_runs_april_to_march():
    assert fiscal_year(date(2026, 3, 31)) == 2025
    assert fiscal_year(date(2026, 4, 1)) == 2026
    assert fiscal_year(date(2026, 12, 31)) == 2026
    assert fiscal_year(date(2027, 1, 1)) == 2026


def test_current_fiscal_year_is_read_in_the_series_time_zone(session):
    study = f.series(session)
    # 31 March 2026, 16:00 UTC is already 1 April 01:00 in Tokyo.
    assert services.current_fiscal_year(study, f.at(2026, 3, 31, 16)) == 2026
    assert services.current_fiscal_year(study, f.at(2026, 3, 31, 14)) == 2025


def test_domains_are_parsed_and_checked():
    assert services.parse_domains("Kakuu-Metal.co.jp\n@example.com, example.com bad_domain") == (
        ["kakuu-metal.co.jp", "example.com"],
        ["bad_domain"],
    )


# -- member_status ---------------------------------------------------------------------------


def _status(app, user_id, series_id):
    with database(app) as s:
        from portal.events.models import Series

        user = s.get(User, user_id) if user_id else None
        series = s.get(Series, series_id)
        if user is None:
            from flask_login import AnonymousUserMixin

            user = AnonymousUserMixin()
        return app.extensions["portal_plugins"].hook.member_status(user=user, series=series)


def test_hook_member_status_membership(app, world):
    # A series without member companies: no opinion.
    assert _status(app, world["employee"], world["other"]) is None
    # Member companies exist but none has a membership this fiscal year: nobody is a member.
    assert _status(app, world["employee"], world["study"]) is False
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        m = membership(s, comp)  # invoiced, not paid yet: counts
        unverified = f.user(s, email="jiro@kakuu-metal.co.jp", verified=False)
        subdomain = f.user(s, email="saburo@lab.kakuu-metal.co.jp")
        s.commit()
        m_id, unverified_id, subdomain_id = m.id, unverified.id, subdomain.id
    assert _status(app, world["employee"], world["study"]) is True
    assert _status(app, unverified_id, world["study"]) is False
    assert _status(app, subdomain_id, world["study"]) is False
    assert _status(app, world["outsider"], world["study"]) is False
    assert _status(app, None, world["study"]) is False

    # An organiser adds the outsider; removes the employee (which overrides the domain).
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        services.add_member(s, comp, "someone@example.org", None)
        services.remove_member(s, comp, s.get(User, world["employee"]).person, None)
        s.commit()
    assert _status(app, world["outsider"], world["study"]) is True
    assert _status(app, world["employee"], world["study"]) is False

    # A cancelled membership does not count.
    with database(app) as s:
        services.cancel_membership(s, s.get(Membership, m_id), None)
        s.commit()
    assert _status(app, world["outsider"], world["study"]) is False


def test_last_years_membership_does_not_count(app, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        membership(s, comp, year=services.current_fiscal_year(comp.series) - 1)
        s.commit()
    assert _status(app, world["employee"], world["study"]) is False


# -- invoices, payments, receipts ------------------------------------------------------------


def test_membership_issues_an_invoice_and_payment_a_receipt(app, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        m = membership(s, comp, year=2026, due_date=date(2026, 5, 31))
        invoice = services.latest_for(s, "membership_fee", m.id, DocumentKind.invoice)
        assert (invoice.number, invoice.kind, invoice.language, invoice.total_minor) == (
            1,
            DocumentKind.invoice,
            "ja",
            100000,
        )
        assert invoice.recipient_company == "架空金属株式会社"
        assert invoice.recipient_name == "佐藤 花子"
        assert invoice.purpose == (
            "2026年度 法人会費 / Corporate membership fee FY2026 (Apr 2026–Mar 2027)"
        )
        assert invoice.lines == [
            {
                "label": "2026年度 法人会費（一般） / Membership fee FY2026 (Regular)",
                "amount_minor": 100000,
            }
        ]
        assert invoice.issuer["name"] == app.config["ISSUER_NAME"]
        assert invoice.issuer["bank_account"] == app.config["ISSUER_BANK_ACCOUNT"]

        receipt = services.record_payment(s, m, date(2026, 5, 20), actor=None)
        assert (m.state, receipt.kind, receipt.number, receipt.total_minor) == (
            MembershipState.paid,
            DocumentKind.receipt,
            1,
            100000,
        )
        assert services.local_today(comp.series) >= date(2026, 5, 20)
        assert m.paid_at == services.start_of_day(date(2026, 5, 20), comp.series)
        with pytest.raises(MembershipError) as exc:
            services.record_payment(s, m, date(2026, 5, 21), actor=None)
        assert exc.value.code == "already_paid"
        actions = [
            e.action
            for e in s.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.subject_type == "membership", AuditEntry.subject_id == m.id)
                .order_by(AuditEntry.id)
            )
        ]
        assert actions == ["invoiced", "paid"]


def test_correction_is_a_new_invoice_and_cancellation_a_credit_note(app, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        m = membership(s, comp, year=2026)
        first = services.latest_for(s, "membership_fee", m.id, DocumentKind.invoice)
        comp.billing_address = "大阪府大阪市北区1-1"
        corrected = services.correct_invoice(
            s, m, tier=BilingualText(ja="特別", en="Special"), amount_minor=200000, actor=None
        )
        assert (corrected.number, corrected.replaces_id, corrected.total_minor) == (
            2,
            first.id,
            200000,
        )
        assert corrected.recipient_address == "大阪府大阪市北区1-1"
        assert (first.total_minor, first.recipient_address) == (100000, "東京都千代田区丸の内1-1-1")
        assert m.amount_minor == 200000
        credit = services.cancel_membership(s, m, actor=None)
        assert (credit.is_cancellation, credit.replaces_id, credit.total_minor, credit.number) == (
            True,
            corrected.id,
            -200000,
            3,
        )
        assert m.state == MembershipState.cancelled
        with pytest.raises(MembershipError):
            services.record_payment(s, m, date(2026, 5, 1), actor=None)


def test_organiser_records_the_payment_on_the_page(app, client, world):
    with database(app) as s:
        m = membership(s, s.get(MemberCompany, world["company"]))
        s.commit()
        m_id = m.id
    login(client, app, world["organiser"])
    url = f"/ja/organiser/membership/study/memberships/{m_id}/payment"
    page = client.get(url)
    assert page.status_code == 200
    assert "振込日" in page.get_data(as_text=True)
    future = (date.today() + timedelta(days=5)).isoformat()
    bad = client.post(url, data={"paid_on": future})
    assert bad.status_code == 400
    assert "未来の日付" in bad.get_data(as_text=True)
    assert f'value="{future}"' in bad.get_data(as_text=True)
    today = date.today() - timedelta(days=1)
    done = client.post(url, data={"paid_on": today.isoformat()})
    assert done.status_code == 302
    with database(app) as s:
        m = s.get(Membership, m_id)
        assert m.state == MembershipState.paid
        receipts = s.scalars(
            sa.select(Document).where(
                Document.subject_id == m_id, Document.kind == DocumentKind.receipt
            )
        ).all()
        assert len(receipts) == 1
    again = client.post(url, data={"paid_on": today.isoformat()})
    assert again.status_code == 400
    assert "既に記録" in again.get_data(as_text=True)


def test_invoice_pdf_in_japanese_and_english_is_the_same_document(app, client, world):
    with database(app) as s:
        m = membership(s, s.get(MemberCompany, world["company"]))
        s.commit()
        invoice = services.latest_for(s, "membership_fee", m.id, DocumentKind.invoice)
        doc_id, reference = invoice.id, invoice.reference
        count = s.scalar(sa.select(sa.func.count()).select_from(Document))
    login(client, app, world["organiser"])
    ja = client.get(f"/ja/organiser/membership/study/documents/{doc_id}.pdf")
    en = client.get(f"/en/organiser/membership/study/documents/{doc_id}.pdf?language=en")
    assert (ja.status_code, en.status_code) == (200, 200)
    assert ja.mimetype == en.mimetype == "application/pdf"
    assert ja.headers["Cache-Control"] == "private, no-store"
    en_text = PdfReader(io.BytesIO(en.data)).pages[0].extract_text()
    assert "Invoice" in en_text
    assert reference in en_text
    assert "Sample Metals Foundation" in en_text
    assert reference in PdfReader(io.BytesIO(ja.data)).pages[0].extract_text()
    with database(app) as s:
        # Rendering in another language issued nothing new.
        assert s.scalar(sa.select(sa.func.count()).select_from(Document)) == count
    # Documents of another series' organiser pages, or not about membership: 404.
    assert client.get(f"/ja/organiser/membership/other/documents/{doc_id}.pdf").status_code == 404


# -- organiser pages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, expected",
    [("admin", 200), ("organiser", 200), ("other_org", 404), ("outsider", 404), ("employee", 404)],
)
def test_organiser_pages_are_for_organisers_only(app, client, world, who, expected):
    with database(app) as s:
        membership(s, s.get(MemberCompany, world["company"]))
        s.commit()
    login(client, app, world[who])
    cid = world["company"]
    for url in (
        "/ja/organiser/membership/study/",
        "/ja/organiser/membership/study/members",
        "/ja/organiser/membership/study/unpaid",
        "/ja/organiser/membership/study/companies.csv",
        "/ja/organiser/membership/study/members.csv",
        f"/ja/organiser/membership/study/companies/{cid}/",
        "/en/organiser/membership/study/companies/new",
    ):
        assert client.get(url).status_code == expected, url


def test_visitors_are_asked_to_log_in(client, world):
    response = client.get("/ja/organiser/membership/study/")
    assert response.status_code == 302
    assert "/ja/account/login" in response.headers["Location"]


def test_company_form_keeps_input_and_explains_bad_domains(app, client, world):
    login(client, app, world["organiser"])
    data = {
        "name_ja": "見本鉱業株式会社",
        "name_en": "Mihon Mining",
        "contact_name": "鈴木 一郎",
        "contact_email": "suzuki@mihon.example",
        "billing_address": "東京都港区1-2-3",
        "domains": "mihon.example\nnot a domain",
        "language": "ja",
    }
    bad = client.post("/ja/organiser/membership/study/companies/new", data=data)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "メールのドメインではありません：not, a, domain" in html
    assert 'value="見本鉱業株式会社"' in html
    assert "東京都港区1-2-3" in html
    taken = client.post(
        "/ja/organiser/membership/study/companies/new",
        data=dict(data, domains="kakuu-metal.co.jp"),
    )
    assert taken.status_code == 400
    assert "既に他の会員企業に登録されています：kakuu-metal.co.jp" in taken.get_data(as_text=True)
    good = client.post(
        "/en/organiser/membership/study/companies/new", data=dict(data, domains="mihon.example")
    )
    assert good.status_code == 302
    with database(app) as s:
        comp = s.scalar(sa.select(MemberCompany).where(MemberCompany.contact_name == "鈴木 一郎"))
        assert comp.domains == ["mihon.example"]
        assert comp.name == BilingualText(ja="見本鉱業株式会社", en="Mihon Mining")


def test_year_page_members_and_csv(app, client, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        m = membership(s, comp)
        services.add_member(s, comp, "someone@example.org", None)
        s.commit()
        year = m.fiscal_year
    login(client, app, world["organiser"])
    page = client.get(f"/ja/organiser/membership/study/?fy={year}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "架空金属株式会社" in html
    assert "未入金" in html
    assert "¥100,000" in html

    members = client.get(f"/en/organiser/membership/study/members?fy={year}").get_data(as_text=True)
    assert "Added by an organiser" in members
    assert "Email address at the company's domain" in members
    assert "ichiro@kakuu-metal.co.jp" in members
    # The contact has an account at the domain too.
    assert "hanako.sato@kakuu-metal.co.jp" in members

    response = client.get(f"/ja/organiser/membership/study/companies.csv?fy={year}")
    assert response.mimetype == "text/csv"
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:3] == ["年度", "会社名（日本語）", "会社名（英語）"]
    assert rows[1][0:3] == [str(year), "架空金属株式会社", "Kakuu Metals Co., Ltd."]
    assert rows[1][8:11] == ["100000", "JPY", "未入金"]
    assert rows[1][12] == f"I-{ISSUED_IN}-000001"
    assert len(rows) == 2

    members_csv = client.get(f"/en/organiser/membership/study/members.csv?fy={year}")
    rows = list(csv.reader(io.StringIO(members_csv.data.decode("utf-8")[1:])))
    assert rows[0] == ["Fiscal year", "Member company", "Name", "Email address", "How"]
    assert sorted(r[3] for r in rows[1:]) == [
        "hanako.sato@kakuu-metal.co.jp",
        "ichiro@kakuu-metal.co.jp",
        "someone@example.org",
    ]

    unpaid = client.get("/ja/organiser/membership/study/unpaid").get_data(as_text=True)
    assert f"I-{ISSUED_IN}-000001" in unpaid


def test_members_page_pages_without_counting_the_membership(app, client, world, monkeypatch):
    """Next-page paging: one row more than the page says whether another follows; the
    whole membership is counted only on the last page (exactly) or for a search."""
    from plugins.membership import views as membership_views

    monkeypatch.setattr(membership_views, "PER_PAGE", 2)
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        m = membership(s, comp)
        for n in range(3):  # with the employee and the contact at the domain: five members
            f.user(s, email=f"extra{n}@example.org")
            services.add_member(s, comp, f"extra{n}@example.org", None)
        s.commit()
        year = m.fiscal_year
    login(client, app, world["organiser"])
    url = f"/en/organiser/membership/study/members?fy={year}"
    first, third = client.get(url).text, client.get(url + "&page=3").text

    def pager(text):
        return text.split('<nav class="pager"', 1)[1].split("</nav>", 1)[0]

    assert "Page 1<" in pager(first) and 'rel="next"' in pager(first)
    assert "Page 3 of 3" in pager(third) and 'rel="prev"' in pager(third)
    assert 'rel="next"' not in pager(third)
    shown = [
        address
        for text in (first, client.get(url + "&page=2").text, third)
        for address in re.findall(r"[\w.]+@[\w.-]+", text.split("<table", 1)[-1])
        if "example.org" in address or "kakuu-metal" in address
    ]
    assert len(set(shown)) == 5  # every member once, none lost between pages
    found = client.get(url + "&q=extra").text
    assert "3 members found." in found


def test_members_page_finds_people_in_any_script(app, client, world):
    """「タカハシ」, 「たかはし」, 「ﾀｶﾊｼ」, "takahashi" and the email all find 高橋 (issue #15)."""
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        m = membership(s, comp)
        f.user(
            s,
            email="k.takahashi@kakuu-metal.co.jp",
            family_name="高橋",
            given_name="健",
            family_name_kana="たかはし",
            given_name_kana="けん",
            romanized_name="Ken Takahashi",
        )
        s.commit()
        year = m.fiscal_year
    login(client, app, world["organiser"])
    url = "/ja/organiser/membership/study/members"
    for q in ("タカハシ", "たかはし", "ﾀｶﾊｼ", "takahashi", "ＴＡＫＡＨＡＳＨＩ", "k.takahashi@"):
        html = client.get(url, query_string={"fy": year, "q": q}).get_data(as_text=True)
        assert "k.takahashi@kakuu-metal.co.jp" in html, q
        assert "ichiro@kakuu-metal.co.jp" not in html, q
        assert "1人の会員が見つかりました。" in html, q
    html = client.get(url, query_string={"fy": year, "q": "鈴木"}).get_data(as_text=True)
    assert "検索に一致する会員はいません。" in html
    assert "k.takahashi@kakuu-metal.co.jp" not in html
    # No query: everyone of the year.
    html = client.get(url, query_string={"fy": year}).get_data(as_text=True)
    assert "ichiro@kakuu-metal.co.jp" in html and "k.takahashi@kakuu-metal.co.jp" in html


def _count_queries(app, client, url) -> int:
    engine = app.extensions["portal_db"]["engine"]
    statements = []

    def count(*args, **kwargs):
        statements.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_organiser_pages_issue_a_constant_number_of_queries(app, client, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        year = membership(s, comp).fiscal_year
        s.commit()
    login(client, app, world["organiser"])
    urls = [
        f"/ja/organiser/membership/study/?fy={year}",
        f"/ja/organiser/membership/study/members?fy={year}",
        "/ja/organiser/membership/study/unpaid",
    ]
    before = [_count_queries(app, client, url) for url in urls]
    with database(app) as s:
        study = s.get(MemberCompany, world["company"]).series
        for n in range(6):
            c = company(s, study, domains=(f"c{n}.example",), contact_email=f"c{n}@c{n}.example")
            membership(s, c)
            f.user(s, email=f"p{n}@c{n}.example")
            services.add_member(s, c, "someone@example.org", None)
        s.commit()
    after = [_count_queries(app, client, url) for url in urls]
    assert after == before


def test_contact_page_lists_each_companys_members_in_a_constant_number_of_queries(
    app, client, world
):
    """A contact of several companies sees each one's members of the year; the page reads
    them all at once (not once per company)."""
    with database(app) as s:
        membership(s, s.get(MemberCompany, world["company"]))
        s.commit()
    login(client, app, world["contact"])
    before = _count_queries(app, client, "/ja/membership/study/")
    with database(app) as s:
        study = s.get(MemberCompany, world["company"]).series
        ids = []
        for n in range(3):
            c = company(
                s,
                study,
                domains=(f"c{n}.example",),
                name=BilingualText(ja=f"会社{n}", en=f"Company {n}"),
            )
            if n < 2:  # the third has no membership this year: no members listed
                membership(s, c)
            f.user(s, email=f"p{n}@c{n}.example", family_name=f"社員{n}")
            ids.append(c.id)
        s.commit()
    assert _count_queries(app, client, "/ja/membership/study/") == before
    html = client.get("/ja/membership/study/").get_data(as_text=True)
    sections = {
        cid: html.split(f'id="company-{cid}"')[1].split("</section>")[0]
        for cid in [world["company"], *ids]
    }
    assert "社員0" in sections[ids[0]] and "社員1" not in sections[ids[0]]
    assert "社員1" in sections[ids[1]] and "社員0" not in sections[ids[1]]
    assert "社員" not in sections[ids[2]]
    assert "社員" not in sections[world["company"]]


# -- invitations -----------------------------------------------------------------------------


def test_contact_invites_and_colleague_accepts_after_logging_in(app, client, world):
    with database(app) as s:
        membership(s, s.get(MemberCompany, world["company"]))
        s.commit()
    login(client, app, world["contact"])
    page = client.get("/ja/membership/study/")
    assert page.status_code == 200
    assert "架空金属株式会社のご担当者として登録されています" in page.get_data(as_text=True)
    bad = client.post(
        f"/ja/membership/study/companies/{world['company']}/invitations",
        data={"invite-email": "not-an-email"},
    )
    assert bad.status_code == 400
    assert 'value="not-an-email"' in bad.get_data(as_text=True)
    sent = client.post(
        f"/ja/membership/study/companies/{world['company']}/invitations",
        data={"invite-email": "someone@example.org"},
    )
    assert sent.status_code == 302
    with database(app) as s:
        email = s.scalar(
            sa.select(OutboxEmail).where(OutboxEmail.template == "membership/invitation")
        )
        assert email.to_address == "someone@example.org"
        assert email.subject == "レアメタル研究会 会員へのご招待"
        link = re.search(r"http://localhost(/ja/membership/invitations/\S+)", email.body_text)[1]

    # Someone else may not invite for the company.
    login(client, app, world["outsider"])
    assert (
        client.post(
            f"/ja/membership/study/companies/{world['company']}/invitations",
            data={"invite-email": "x@example.org"},
        ).status_code
        == 404
    )

    client.post("/ja/account/logout")
    with client.session_transaction() as flask_session:
        flask_session.clear()
    anonymous = client.get(link)
    assert anonymous.status_code == 302
    assert "/ja/account/login" in anonymous.headers["Location"]

    login(client, app, world["outsider"])
    assert client.get(link).status_code == 200
    accepted = client.post(link)
    assert accepted.status_code == 302
    assert _status(app, world["outsider"], world["study"]) is True
    with database(app) as s:
        row = s.scalar(sa.select(CompanyMember))
        assert (row.how, row.company_id) == (MemberHow.invited, world["company"])
        assert s.scalar(sa.select(MemberInvitation)).accepted_at is not None
    used = client.post(link)
    assert used.status_code == 400
    assert "既に受諾" in used.get_data(as_text=True)
    tampered = client.get(link[:-3] + "abc")
    assert tampered.status_code == 400


def test_expired_invitation_is_refused(app, client, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        with app.test_request_context("/ja/"):
            invitation = services.invite_member(s, comp, "someone@example.org", None)
            token = services.invitation_token(invitation)
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        s.commit()
    login(client, app, world["outsider"])
    response = client.get(f"/en/membership/invitations/{token}")
    assert response.status_code == 400
    assert "This invitation link has expired" in response.get_data(as_text=True)


# -- reminders -------------------------------------------------------------------------------


def test_hook_cli_commands_membership_remind(app, runner, world):
    with database(app) as s:
        study = s.get(MemberCompany, world["company"]).series
        current = s.get(MemberCompany, world["company"])
        membership(s, current, year=2026)
        renewed = company(s, study, domains=("renewed.example",), contact_email="a@renewed.example")
        membership(s, renewed, year=2026)
        membership(s, renewed, year=2027)
        lapsed = company(s, study, domains=("lapsed.example",), contact_email="b@lapsed.example")
        membership(s, lapsed, year=2025)
        s.commit()
    result = runner.invoke(args=["membership", "remind", "--today", "2027-02-15"])
    assert result.exit_code == 0, result.output
    assert "1 reminder(s) queued." in result.output
    with database(app) as s:
        emails = s.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.template == "membership/renewal_reminder")
        ).all()
        assert [e.to_address for e in emails] == ["hanako.sato@kakuu-metal.co.jp"]
        assert emails[0].subject == "2027年度 法人会員更新のご案内"
        assert "佐藤 花子 様" in emails[0].body_text
        assert [(r.company_id, r.fiscal_year) for r in s.scalars(sa.select(RenewalReminder))] == [
            (world["company"], 2027)
        ]
    again = runner.invoke(args=["membership", "remind", "--today", "2027-03-01"])
    assert "0 reminder(s) queued." in again.output


# -- other hooks -----------------------------------------------------------------------------


def test_hook_dashboard_panels_membership(app, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        membership(s, comp)
        event = f.event(s, comp.series)
        f.enable(s, event, "membership")
        s.commit()
        event_id = event.id
    from portal import plugins
    from portal.events.models import Event

    with app.test_request_context("/en/"):
        from flask import g

        g.lang_code = "en"
        s = db.session
        event = s.get(Event, event_id)
        organiser = s.get(User, world["organiser"])
        outsider = s.get(User, world["outsider"])
        panels = plugins.call_event_hook("dashboard_panels", event, user=organiser)
        html = "".join(str(p) for p in panels if "membership-panel" in str(p))
        assert "0 paid, 1 unpaid" in html
        assert [
            p
            for p in plugins.call_event_hook("dashboard_panels", event, user=outsider)
            if "membership-panel" in str(p)
        ] == []


def test_hook_personal_data_membership(app, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        membership(s, comp)
        services.add_member(s, comp, "someone@example.org", None)
        s.commit()
        outsider = s.get(User, world["outsider"])
        contact = s.get(User, world["contact"])
        hook = app.extensions["portal_plugins"].hook
        data = [d for d in hook.personal_data(person=outsider.person) if "company_members" in d]
        assert len(data) == 1
        entry = data[0]["company_members"][0]
        assert (entry["company"], entry["series"], entry["how"], entry["removed_at"]) == (
            {"ja": "架空金属株式会社", "en": "Kakuu Metals Co., Ltd."},
            "study",
            "organiser",
            None,
        )
        contact_data = [d for d in hook.personal_data(person=contact.person) if "contact_of" in d]
        assert contact_data[0]["contact_of"] == [
            {
                "company": {"ja": "架空金属株式会社", "en": "Kakuu Metals Co., Ltd."},
                "contact_name": "佐藤 花子",
                "contact_email": "hanako.sato@kakuu-metal.co.jp",
            }
        ]


def test_hook_forget_person_membership(app, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        membership(s, comp)
        services.add_member(s, comp, "someone@example.org", None)
        with app.test_request_context("/ja/"):
            services.invite_member(s, comp, "someone@example.org", None)
        s.commit()
        hook = app.extensions["portal_plugins"].hook
        hook.forget_person(person=s.get(User, world["outsider"]).person)
        hook.forget_person(person=s.get(User, world["contact"]).person)
        s.commit()
        assert s.scalars(sa.select(CompanyMember)).all() == []
        assert s.scalars(sa.select(MemberInvitation)).all() == []
        comp = s.get(MemberCompany, world["company"])
        s.refresh(comp)
        assert (comp.contact_name, comp.contact_email) == ("", "")
        # The company and its issued documents stay.
        assert s.scalar(sa.select(sa.func.count()).select_from(Document)) == 1


def test_organiser_flow_on_the_company_page(app, client, world):
    login(client, app, world["organiser"])
    cid = world["company"]
    base = f"/ja/organiser/membership/study/companies/{cid}"
    new = client.get(f"{base}/memberships/new")
    assert new.status_code == 200
    with database(app) as s:
        year = services.current_fiscal_year(s.get(MemberCompany, cid).series)
    bad = client.post(
        f"{base}/memberships/new",
        data={"fiscal_year": year, "tier_ja": "一般", "tier_en": "Regular", "amount": "10万"},
    )
    assert bad.status_code == 400
    assert "円単位の整数" in bad.get_data(as_text=True)
    assert 'value="一般"' in bad.get_data(as_text=True)
    made = client.post(
        f"{base}/memberships/new",
        data={"fiscal_year": year, "tier_ja": "一般", "tier_en": "Regular", "amount": "100,000"},
    )
    assert made.status_code == 302
    twice = client.post(
        f"{base}/memberships/new",
        data={"fiscal_year": year, "tier_ja": "一般", "tier_en": "Regular", "amount": "100000"},
    )
    assert twice.status_code == 400
    assert "その年度の会員登録が既にあります" in twice.get_data(as_text=True)
    with database(app) as s:
        m = s.scalar(sa.select(Membership))
        assert (m.fiscal_year, m.amount_minor, m.state) == (year, 100000, MembershipState.unpaid)
        m_id = m.id

    page = client.get(f"{base}/").get_data(as_text=True)
    assert f"I-{ISSUED_IN}-000001" in page
    assert "英語版" in page

    correct_url = f"/ja/organiser/membership/study/memberships/{m_id}/correct"
    form = client.get(correct_url).get_data(as_text=True)
    assert 'value="100000"' in form
    corrected = client.post(
        correct_url,
        data={"fiscal_year": year, "tier_ja": "特別", "tier_en": "Special", "amount": "150000"},
    )
    assert corrected.status_code == 302

    unknown = client.post(f"{base}/members", data={"member-email": "nobody@example.org"})
    assert unknown.status_code == 400
    assert "ポータルに登録されていません" in unknown.get_data(as_text=True)
    assert 'value="nobody@example.org"' in unknown.get_data(as_text=True)
    added = client.post(f"{base}/members", data={"member-email": "someone@example.org"})
    assert added.status_code == 302
    with database(app) as s:
        person_id = s.get(User, world["employee"]).person_id
    removed = client.post(f"{base}/members/{person_id}/remove")
    assert removed.status_code == 302
    assert _status(app, world["employee"], world["study"]) is False
    assert _status(app, world["outsider"], world["study"]) is True

    cancelled = client.post(f"/ja/organiser/membership/study/memberships/{m_id}/cancel")
    assert cancelled.status_code == 302
    with database(app) as s:
        docs = s.scalars(sa.select(Document).order_by(Document.id)).all()
        assert [(d.number, d.total_minor, d.is_cancellation) for d in docs] == [
            (1, 100000, False),
            (2, 150000, False),
            (3, -150000, True),
        ]
        assert s.get(Membership, m_id).state == MembershipState.cancelled
    assert "取消" in client.get(f"{base}/").get_data(as_text=True)


def test_csv_cells_are_not_run_as_formulas(app, client, world):
    with database(app) as s:
        comp = s.get(MemberCompany, world["company"])
        comp.billing_address = '=HYPERLINK("http://evil.example")'
        year = membership(s, comp).fiscal_year
        s.commit()
    login(client, app, world["organiser"])
    text = client.get(f"/ja/organiser/membership/study/companies.csv?fy={year}").data.decode()
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[1][5] == '\'=HYPERLINK("http://evil.example")'
