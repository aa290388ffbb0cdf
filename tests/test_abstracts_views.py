"""The abstracts plugin's pages: forms, access by the wrong person, lists, exports, the book."""

from __future__ import annotations

import csv
import io
import re
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from flask import g
from pypdf import PdfReader

from plugins.abstracts import services
from plugins.abstracts.models import Abstract, AbstractState, ReviewAssignment
from plugins.abstracts.services import AuthorInput
from portal.db import db
from portal.events.models import Event, EventPlugin
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from tests import factories as f
from tests.test_abstracts import a_pdf, data, local, login, make_call


@contextmanager
def opened(app):
    """The database in a fresh app context (each request of the test client gets its own)."""
    with app.test_request_context("/en/", method="POST"):
        g.lang_code = "en"
        yield db.session


def base(call) -> str:
    return f"/en/events/{call.event.slug}/abstracts"


def form_fields(**kw) -> dict:
    values = {
        "title_ja": "",
        "title_en": "Titanium powder by electrolysis",
        "body_ja": "",
        "body_en": "A new route to **titanium**.",
        "language": "en",
        "topic": "extraction",
        "presentation_type": "oral",
        "authors-0-name": "鈴木 花子",
        "authors-0-affiliation": "Tohoku University",
        "authors-0-email": "sub@example.org",
        "presenting": "0",
        "action": "submit",
    }
    values.update(kw)
    return values


def world(app):
    """A call with four abstracts: submitted and assigned to reviewer 1, submitted and
    unassigned, rejected (was assigned to reviewer 1), and accepted (by another person)."""
    with opened(app) as session:
        call = make_call(session, anonymised_reviews=True)
        mit = call.reviewers[0]
        assigned = services.submit(session, call.event, call.submitter, data(title="Assigned one"))
        unassigned = services.submit(
            session, call.event, call.submitter, data(title="Unassigned one")
        )
        rejected = services.submit(session, call.event, call.submitter, data(title="Rejected one"))
        accepted = services.submit(
            session, call.event, call.other, data(title="Accepted one", authors=[
                AuthorInput("Otto Other", "Elsewhere", "other@example.org", True),
            ]),
        )  # fmt: skip
        session.flush()
        a1 = services.assign_reviewer(session, assigned, mit.person, call.organiser)
        a2 = services.assign_reviewer(session, rejected, mit.person, call.organiser)
        services.reject(session, rejected, call.organiser)
        services.accept_oral(session, accepted, call.organiser)
        session.commit()
        ids = {
            "assigned": assigned.id,
            "unassigned": unassigned.id,
            "rejected": rejected.id,
            "accepted": accepted.id,
            "a1": a1.id,
            "a2": a2.id,
        }
    return call, ids


def count(app, model) -> int:
    with opened(app) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def state_of(app, abstract_id: int) -> AbstractState:
    with opened(app) as session:
        return session.get(Abstract, abstract_id).state


def change_settings(app, event_id: int, **values) -> None:
    with opened(app) as session:
        row = session.scalar(sa.select(EventPlugin).where(EventPlugin.event_id == event_id))
        for key, value in values.items():
            if key == "enabled":
                row.enabled = value
            else:
                row.settings = {**row.settings, key: value}
        session.commit()


# -- the plugin on and off ---------------------------------------------------------------------


def test_disabled_plugin_pages_answer_404_and_tabs_vanish(app, client):
    call, ids = world(app)
    login(client, call.organiser)
    event_page = client.get(f"/en/events/{call.event.slug}/").text
    assert event_page.count('data-plugin="abstracts"') == 3  # call, book, manage
    change_settings(app, call.event.id, enabled=False)
    urls = [
        "/", "/new", "/mine", f"/{ids['assigned']}/", f"/{ids['assigned']}/edit",
        "/book", "/book.pdf", "/reviews", f"/reviews/{ids['a1']}", "/manage/",
        "/manage/settings", f"/manage/{ids['assigned']}", "/manage/emails",
        "/manage/emails/submitted", "/manage/export.csv",
    ]  # fmt: skip
    assert {u: client.get(base(call) + u).status_code for u in urls} == dict.fromkeys(urls, 404)
    assert client.post(base(call) + "/manage/auto-assign").status_code == 404
    event_page = client.get(f"/en/events/{call.event.slug}/").text
    assert 'data-plugin="abstracts"' not in event_page
    assert "Call for abstracts" not in event_page


# -- submitting through the form -------------------------------------------------------------


def test_author_rows_are_added_and_removed_keeping_what_was_typed(app, client):
    with opened(app) as session:
        call = make_call(session)
    login(client, call.submitter)
    page = client.get(base(call) + "/new")
    assert page.status_code == 200
    assert 'value="sub@example.org"' in page.text  # the submitter is the first author
    fields = form_fields(
        action="add_author", **{"authors-0-name": "First Author", "body_en": "Kept *text*"}
    )
    page = client.post(base(call) + "/new", data=fields)
    assert page.status_code == 200
    assert 'name="authors-1-name"' in page.text
    assert "Kept *text*" in page.text and 'value="First Author"' in page.text
    fields.update({"authors-1-name": "Second Author", "presenting": "1", "action": "remove-0"})
    page = client.post(base(call) + "/new", data=fields)
    assert 'value="Second Author"' in page.text and "First Author" not in page.text
    assert 'name="authors-1-name"' not in page.text
    assert re.search(r'name="presenting" value="0" checked', page.text)
    assert count(app, Abstract) == 0


def test_submitting_over_the_word_limit_shows_the_message_and_keeps_the_text(app, client):
    with opened(app) as session:
        call = make_call(session, word_limit=5)
    login(client, call.submitter)
    text = "one two three four five six"
    page = client.post(base(call) + "/new", data=form_fields(body_en=text))
    assert page.status_code == 400
    assert "The abstract has 6 words; the limit is 5 words." in page.text
    assert text in page.text
    assert count(app, Abstract) == 0
    page = client.post(base(call) + "/new", data=form_fields(body_en="one two three"))
    assert page.status_code == 302
    with opened(app) as session:
        abstract = session.scalars(sa.select(Abstract)).one()
        assert abstract.state == AbstractState.submitted
    assert page.headers["Location"] == f"{base(call)}/{abstract.id}/"
    mine = client.get(base(call) + "/mine").text
    assert "Titanium powder by electrolysis" in mine and "Submitted" in mine


def test_draft_then_submit_with_a_pdf_checked_by_content(app, client):
    with opened(app) as session:
        call = make_call(session)
    login(client, call.submitter)
    bad = form_fields(action="save_draft", pdf=(io.BytesIO(b"GIF89a..."), "fake.pdf"))
    page = client.post(base(call) + "/new", data=bad, content_type="multipart/form-data")
    assert page.status_code == 400
    assert "This file is not a PDF. Please attach a PDF file." in page.text
    good = form_fields(action="save_draft", pdf=(io.BytesIO(a_pdf()), "figure.pdf"))
    page = client.post(base(call) + "/new", data=good, content_type="multipart/form-data")
    assert page.status_code == 302
    with opened(app) as session:
        abstract = session.scalars(sa.select(Abstract)).one()
        assert (abstract.state, abstract.pdf_filename) == (AbstractState.draft, "figure.pdf")
    pdf = client.get(f"{base(call)}/{abstract.id}/abstract.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    page = client.post(f"{base(call)}/{abstract.id}/edit", data=form_fields())
    assert page.status_code == 302
    assert state_of(app, abstract.id) == AbstractState.submitted


def test_after_the_deadline_the_form_says_so(app, client):
    with opened(app) as session:
        call = make_call(session)
        abstract_id = services.submit(session, call.event, call.submitter, data()).id
        session.commit()
    change_settings(app, call.event.id, closes_at=local(call.event, timedelta(hours=-1)))
    login(client, call.submitter)
    message = "The deadline has passed, so the abstract can no longer be changed."
    page = client.get(f"{base(call)}/{abstract_id}/edit", follow_redirects=True)
    assert message in page.text
    page = client.post(f"{base(call)}/{abstract_id}/edit", data=form_fields(title_en="Late"))
    assert page.status_code == 400 and message in page.text
    assert 'value="Late"' in page.text
    page = client.get(base(call) + "/new", follow_redirects=True)
    assert "The deadline for abstracts has passed." in page.text
    with opened(app) as session:
        assert session.get(Abstract, abstract_id).title.en == "Titanium powder by electrolysis"


# -- access by the wrong person --------------------------------------------------------------


def test_a_submitter_sees_only_their_own_abstracts(app, client):
    call, ids = world(app)
    login(client, call.other)
    for name in ("assigned", "unassigned", "rejected"):
        aid = ids[name]
        for url in (f"/{aid}/", f"/{aid}/edit", f"/{aid}/abstract.pdf"):
            assert client.get(base(call) + url).status_code == 404
        assert client.post(f"{base(call)}/{aid}/withdraw").status_code == 404
        assert client.post(f"{base(call)}/{aid}/edit", data=form_fields()).status_code == 404
    mine = client.get(base(call) + "/mine").text
    assert "Accepted one" in mine
    assert "Assigned one" not in mine and "Rejected one" not in mine
    assert client.get(f"{base(call)}/{ids['accepted']}/").status_code == 200
    assert client.get(base(call) + "/manage/").status_code == 404
    assert client.get(base(call) + "/manage/export.csv").status_code == 404
    assert client.get(base(call) + "/reviews").status_code == 404
    assert state_of(app, ids["assigned"]) == AbstractState.submitted


def test_a_reviewer_sees_only_what_is_assigned_and_no_authors_when_anonymised(app, client):
    call, ids = world(app)
    mit, kyoto = call.reviewers[0], call.reviewers[1]
    login(client, mit)
    listing = client.get(base(call) + "/reviews").text
    assert "Assigned one" in listing
    assert "Unassigned one" not in listing and "Rejected one" not in listing
    page = client.get(f"{base(call)}/reviews/{ids['a1']}")
    assert page.status_code == 200
    assert "Assigned one" in page.text
    assert "鈴木" not in page.text and "Tohoku University" not in page.text
    assert client.get(f"{base(call)}/reviews/{ids['a2']}").status_code == 404  # rejected
    assert client.get(f"{base(call)}/{ids['assigned']}/").status_code == 404
    assert client.get(base(call) + "/manage/").status_code == 404
    page = client.post(
        f"{base(call)}/reviews/{ids['a1']}",
        data={"score_originality": "5", "score_significance": "4"},
    )
    assert page.status_code == 400
    assert "Please give a score from 1 to 5." in page.text
    page = client.post(
        f"{base(call)}/reviews/{ids['a1']}",
        data={"score_originality": "5", "score_significance": "4", "score_clarity": "3",
              "comment": "Solid work"},
    )  # fmt: skip
    assert page.status_code == 302
    login(client, kyoto)  # another reviewer: nothing is assigned to them
    assert client.get(f"{base(call)}/reviews/{ids['a1']}").status_code == 404
    assert "Assigned one" not in client.get(base(call) + "/reviews").text
    post = client.post(
        f"{base(call)}/reviews/{ids['a1']}",
        data={"score_originality": "1", "score_significance": "1", "score_clarity": "1"},
    )
    assert post.status_code == 404
    with opened(app) as session:
        review = session.get(ReviewAssignment, ids["a1"]).review
        assert (review.scores, review.comment) == (
            {"originality": 5, "significance": 4, "clarity": 3},
            "Solid work",
        )


def test_organisers_of_another_series_get_404(app, client):
    call, ids = world(app)
    with opened(app) as session:
        elsewhere = f.series(session)
        stranger = f.user(session, roles=(("organiser", elsewhere),))
        session.commit()
    login(client, stranger)
    for url in (
        "/manage/", "/manage/settings", f"/manage/{ids['assigned']}",
        "/manage/emails", "/manage/export.csv", f"/{ids['assigned']}/abstract.pdf",
    ):  # fmt: skip
        assert client.get(base(call) + url).status_code == 404, url
    decide = client.post(
        f"{base(call)}/manage/{ids['assigned']}/decide", data={"decision": "reject"}
    )
    assert decide.status_code == 404
    assert state_of(app, ids["assigned"]) == AbstractState.submitted


def test_visitors_are_asked_to_log_in(app, client):
    call, ids = world(app)
    for url in ("/new", "/mine", "/reviews", "/manage/"):
        page = client.get(base(call) + url)
        assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert client.get(base(call) + "/").status_code == 200
    assert client.get(base(call) + "/book").status_code == 200


# -- organisers --------------------------------------------------------------------------------


def test_organiser_sees_scores_side_by_side_and_sorts_by_them(app, client):
    criteria = ("originality", "significance", "clarity")
    with opened(app) as session:
        call = make_call(session)
        other = [AuthorInput("Otto Other", "Elsewhere", "other@example.org", True)]
        low = services.submit(session, call.event, call.other, data(title="Low", authors=other))
        high = services.submit(session, call.event, call.other, data(title="High", authors=other))
        session.flush()
        for abstract, marks in ((low, (2, 1)), (high, (5, 3))):
            for reviewer, mark in zip(call.reviewers[:2], marks, strict=True):
                a = services.assign_reviewer(session, abstract, reviewer.person, call.organiser)
                services.save_review(session, a, reviewer, dict.fromkeys(criteria, mark), "")
        session.commit()
    login(client, call.organiser)
    page = client.get(base(call) + "/manage/?sort=mean").text
    assert page.index(">High<") < page.index(">Low<")
    rows = re.findall(
        r'<tr data-abstract="(\d+)">.*?class="mean">([^<]*)<.*?class="stdev">([^<]*)<'
        r'.*?class="spread">([^<]*)<.*?class="count">([^<]*)<',
        page,
        re.S,
    )
    assert rows == [
        (str(high.id), "4.00", "1.00", "3.00–5.00", "2 / 2"),
        (str(low.id), "1.50", "0.50", "1.00–2.00", "2 / 2"),
    ]
    page = client.get(base(call) + "/manage/?sort=id").text
    assert page.index(">Low<") < page.index(">High<")
    detail = client.get(f"{base(call)}/manage/{high.id}")
    assert detail.status_code == 200
    assert "Reviewer 1" in detail.text and "Reviewer 2" in detail.text
    assert '<td id="overall-mean">4.00</td>' in detail.text


def test_organiser_assigns_decides_and_the_talk_appears_in_the_programme(app, client):
    with opened(app) as session:
        call = make_call(session)
        abstract_id = services.submit(session, call.event, call.submitter, data()).id
        session.commit()
    login(client, call.organiser)
    tohoku = call.reviewers[2]
    manage = f"{base(call)}/manage/{abstract_id}"
    page = client.post(f"{manage}/assign", data={"reviewer": str(tohoku.person_id)})
    assert page.status_code == 400
    assert "same affiliation as an author" in page.text
    page = client.post(f"{manage}/assign", data={"reviewer": str(call.reviewers[0].person_id)})
    assert page.status_code == 302
    page = client.post(f"{manage}/decide", data={"note": "x"})
    assert page.status_code == 400 and "Please choose a decision." in page.text
    page = client.post(
        f"{manage}/decide", data={"decision": "accept_oral", "note": "Congratulations"}
    )
    assert page.status_code == 302
    programme = client.get(f"/en/events/{call.event.slug}/").text
    assert "Titanium powder by electrolysis" in programme
    assert "Hanako Suzuki" in programme
    detail = client.get(manage).text
    assert "Accepted (oral presentation)" in detail and "Congratulations" in detail


def test_auto_assign_from_the_manage_page(app, client):
    with opened(app) as session:
        call = make_call(session)
        services.submit(session, call.event, call.submitter, data())
        session.commit()
    login(client, call.organiser)
    page = client.post(
        base(call) + "/manage/auto-assign", data={"per_abstract": "2"}, follow_redirects=True
    )
    assert "2 assignments were made." in page.text
    assert count(app, ReviewAssignment) == 2


def test_csv_export_has_a_bom_scores_and_decisions(app, client):
    call, ids = world(app)
    with opened(app) as session:
        mit = session.get(type(call.reviewers[0]), call.reviewers[0].id)
        assignment = session.get(ReviewAssignment, ids["a1"])
        scores = {"originality": 4, "significance": 3, "clarity": 5}
        services.save_review(session, assignment, mit, scores, "")
        session.commit()
    login(client, call.organiser)
    response = client.get(base(call) + "/manage/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [(r["title_en"], r["state"], r["reviews"], r["mean"]) for r in rows] == [
        ("Assigned one", "submitted", "1", "4.00"),
        ("Unassigned one", "submitted", "0", ""),
        ("Rejected one", "rejected", "0", ""),
        ("Accepted one", "accepted_oral", "0", ""),
    ]
    assert rows[0]["mean_clarity"] == "5.00"
    assert rows[0]["authors"] == "鈴木 花子; John Smith"


def test_settings_page_saves_the_call(app, client):
    with opened(app) as session:
        call = make_call(session)
    login(client, call.organiser)
    page = client.get(base(call) + "/manage/settings")
    assert page.status_code == 200 and "Extraction | 製錬" in page.text
    bad = {
        "opens_at": "2030-03-01T09:00", "closes_at": "2030-02-01T09:00", "word_limit": "300",
        "topics": "Extraction | 製錬\nRecycling | リサイクル", "presentation_types": ["oral"],
        "criteria": "Novelty | 新規性", "scale_max": "5", "reviewers_per_abstract": "2",
    }  # fmt: skip
    page = client.post(base(call) + "/manage/settings", data=bad)
    assert page.status_code == 400
    assert "The deadline must come after the opening." in page.text
    assert "Recycling | リサイクル" in page.text
    good = dict(bad, closes_at="2030-04-01T23:59", anonymised_reviews="y")
    assert client.post(base(call) + "/manage/settings", data=good).status_code == 302
    with opened(app) as session:
        row = session.scalar(sa.select(EventPlugin).where(EventPlugin.event_id == call.event.id))
        settings = row.settings
    # Typed in the event's zone (New York), stored as UTC instants.
    assert (settings["opens_at"], settings["closes_at"]) == (
        "2030-03-01T14:00:00+00:00",
        "2030-04-02T03:59:00+00:00",
    )
    assert settings["topics"] == [
        {"key": "extraction", "ja": "製錬", "en": "Extraction"},
        {"key": "recycling", "ja": "リサイクル", "en": "Recycling"},
    ]
    assert settings["criteria"] == [{"key": "novelty", "ja": "新規性", "en": "Novelty"}]
    assert (settings["presentation_types"], settings["allow_pdf"]) == (["oral"], False)
    assert settings["anonymised_reviews"] is True
    call_page = client.get(base(call) + "/").text
    assert "(event time, EDT)" in call_page and "1 April 2030, 23:59 EDT" in call_page
    assert "America/New_York" not in call_page
    assert 'value="2030-04-01T23:59"' in client.get(base(call) + "/manage/settings").text
    with opened(app) as session:  # the event moves to Tokyo: the deadline stays the same instant
        session.get(Event, call.event.id).timezone = "Asia/Tokyo"
        session.commit()
    call_page = client.get(base(call) + "/").text
    assert "2 April 2030, 12:59 JST" in call_page


def test_email_texts_are_edited_per_event(app, client):
    with opened(app) as session:
        call = make_call(session)
    login(client, call.organiser)
    page = client.get(base(call) + "/manage/emails/submitted")
    assert page.status_code == 200 and "{title}" in page.text
    fields = {
        "subject_ja": "【RMW】要旨受付: {title}", "subject_en": "[RMW] Received: {title}",
        "body_ja": "{name} 様\n受け付けました。{link}", "body_en": "",
    }  # fmt: skip
    assert client.post(base(call) + "/manage/emails/submitted", data=fields).status_code == 302
    assert client.get(base(call) + "/manage/emails/nonsense").status_code == 404
    login(client, call.submitter)
    assert client.post(base(call) + "/new", data=form_fields()).status_code == 302
    with opened(app) as session:
        email = session.scalars(sa.select(OutboxEmail)).one()
        assert email.subject == "【RMW】要旨受付: Titanium powder by electrolysis"
        assert email.body_text.startswith(
            "鈴木 花子 様\n受け付けました。http://localhost/ja/events/"
        )


# -- output ------------------------------------------------------------------------------------


def test_the_book_lists_only_accepted_abstracts_as_html_and_pdf(app, client):
    call, ids = world(app)
    with opened(app) as session:
        event = session.get(type(call.event), call.event.id)
        other = session.get(type(call.other), call.other.id)
        organiser = session.get(type(call.organiser), call.organiser.id)
        japanese = services.AbstractInput(
            title=BilingualText(ja="チタン粉末の新製法"),
            body=BilingualText(ja="電解で**チタン**を得る。"),
            language="ja",
            topic="processing",
            presentation_type="poster",
            authors=[AuthorInput("Otto Other", "Elsewhere", "other@example.org", True)],
        )
        abstract = services.submit(session, event, other, japanese)
        services.accept_poster(session, abstract, organiser)
        session.commit()
    page = client.get(base(call) + "/book")
    assert page.status_code == 200
    assert "Accepted one" in page.text and "チタン粉末の新製法" in page.text
    for hidden in ("Assigned one", "Unassigned one", "Rejected one"):
        assert hidden not in page.text
    assert page.text.index("Extraction") < page.text.index("Processing")
    by_session = client.get(base(call) + "/book?by=session").text
    assert by_session.index("Oral presentations") < by_session.index("Poster presentations")
    pdf = client.get(base(call) + "/book.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert (
        "Accepted one" in text and "チタン粉末の新製法" in text and "電解でチタンを得る。" in text
    )
    for hidden in ("Assigned one", "Unassigned one", "Rejected one"):
        assert hidden not in text


def test_pages_work_in_japanese(app, client):
    call, ids = world(app)
    login(client, call.organiser)
    ja = f"/ja/events/{call.event.slug}/abstracts"
    for url in (
        "/", "/book", "/manage/", "/manage/settings", "/manage/emails",
        f"/manage/{ids['assigned']}", "/manage/emails/rejected",
    ):  # fmt: skip
        page = client.get(ja + url)
        assert page.status_code == 200, url
        assert '<html lang="ja">' in page.text
    login(client, call.submitter)
    for url in ("/new", "/mine", f"/{ids['assigned']}/", f"/{ids['assigned']}/edit"):
        assert client.get(ja + url).status_code == 200, url
    login(client, call.reviewers[0])
    for url in ("/reviews", f"/reviews/{ids['a1']}"):
        assert client.get(ja + url).status_code == 200, url


def test_lists_issue_a_constant_number_of_queries(app, client):
    with opened(app) as session:
        call = make_call(session)
    engine = app.extensions["portal_db"]["engine"]
    statements: list[str] = []

    def counted(*_args):
        statements.append("q")

    def add(number: int) -> None:
        with opened(app) as session:
            event = session.get(type(call.event), call.event.id)
            submitter = session.get(type(call.submitter), call.submitter.id)
            organiser = session.get(type(call.organiser), call.organiser.id)
            reviewers = [session.get(type(r), r.id) for r in call.reviewers[:2]]
            for i in range(number):
                abstract = services.submit(session, event, submitter, data(title=f"T{i}"))
                for reviewer in reviewers:
                    a = services.assign_reviewer(session, abstract, reviewer.person, organiser)
                    services.save_review(
                        session, a, reviewer, dict.fromkeys(("originality", "significance", "clarity"), 3), "",
                    )  # fmt: skip
                if i % 2:
                    services.accept_oral(session, abstract, organiser)
            session.commit()

    def queries() -> dict[str, int]:
        result = {}
        pages = {
            "manage": (call.organiser, "/manage/?sort=mean"),
            "book": (call.organiser, "/book"),
            "mine": (call.submitter, "/mine"),
            "reviews": (call.reviewers[0], "/reviews"),
            "event": (call.organiser, ""),
        }
        for name, (user, url) in pages.items():
            login(client, user)
            statements.clear()
            target = f"/en/events/{call.event.slug}/" if not url else base(call) + url
            assert client.get(target).status_code == 200
            result[name] = len(statements)
        return result

    sa.event.listen(engine, "before_cursor_execute", counted)
    try:
        add(2)
        few = queries()
        add(6)
        many = queries()
    finally:
        sa.event.remove(engine, "before_cursor_execute", counted)
    assert min(few.values()) > 0
    assert many == few
