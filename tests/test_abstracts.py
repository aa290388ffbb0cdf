"""The abstracts plugin's rules: submitting, deadlines, reviewing, deciding, emails, files.

Helpers here (``make_call``, ``data``, ``a_pdf``, ``login``) are shared with the other
``test_abstracts_*`` files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import g

from plugins.abstracts import files, services
from plugins.abstracts.models import (
    Abstract,
    AbstractAuthor,
    AbstractEmailText,
    AbstractState,
    ReviewAssignment,
)
from plugins.abstracts.services import AbstractError, AbstractInput, AuthorInput
from portal.accounts.models import Person
from portal.audit import AuditEntry
from portal.db import utcnow
from portal.events.models import Talk
from portal.i18n import BilingualText
from portal.mail.models import OutboxEmail
from portal.speakers.models import SpeakerProfile
from tests import factories as f

# -- shared helpers ----------------------------------------------------------------------------


def local(event, delta: timedelta) -> str:
    """An ISO local time in the event's zone, ``delta`` from now."""
    return (utcnow() + delta).astimezone(ZoneInfo(event.timezone)).strftime("%Y-%m-%dT%H:%M")


@dataclass
class Call:
    series: object
    event: object
    organiser: object
    submitter: object
    other: object
    reviewers: list


def make_call(session, **settings) -> Call:
    """A workshop edition with the call open for ten more days, its people and reviewers."""
    series = f.series(session, "workshop")
    event = f.event(
        session,
        series,
        title=BilingualText(ja="反応性金属ワークショップ", en="Reactive Metal Workshop"),
    )
    values = {
        "closes_at": local(event, timedelta(days=10)),
        "word_limit": 50,
        "topics": [
            {"key": "extraction", "ja": "製錬", "en": "Extraction"},
            {"key": "processing", "ja": "加工", "en": "Processing"},
        ],
    }
    values.update(settings)
    f.enable(session, event, "abstracts", **values)
    organiser = f.user(
        session, roles=(("organiser", series),), romanized_name="Olga Organiser",
        preferred_language="en",
    )  # fmt: skip
    submitter = f.user(
        session, email="sub@example.org", family_name="鈴木", given_name="花子",
        romanized_name="Hanako Suzuki", affiliation="Tohoku University", preferred_language="ja",
    )  # fmt: skip
    other = f.user(session, email="other@example.org", romanized_name="Otto Other")
    reviewers = [
        f.user(
            session,
            email=f"rev{i}@example.org",
            romanized_name=f"Reviewer {i}",
            family_name="査読",
            given_name=f"{i}",
            affiliation=aff,
            preferred_language="en",
            roles=(("reviewer", series),),
        )  # fmt: skip
        for i, aff in enumerate(("MIT", "Kyoto University", "Tohoku University", "NIMS"), 1)
    ]
    session.commit()
    return Call(series, event, organiser, submitter, other, reviewers)


def data(title="Titanium powder by electrolysis", body="A new route to **titanium**.", **kw):
    authors = kw.pop(
        "authors",
        [
            AuthorInput("鈴木 花子", "Tohoku University", "sub@example.org", True),
            AuthorInput("John Smith", "Boston Metals", "smith@example.com", False),
        ],
    )
    values = dict(
        title=BilingualText(en=title),
        body=BilingualText(en=body),
        language="en",
        topic="extraction",
        presentation_type="oral",
        authors=authors,
    )
    values.update(kw)
    return AbstractInput(**values)


def a_pdf(text: str = "Supplementary figure") -> bytes:
    from reportlab.pdfgen.canvas import Canvas

    buffer = BytesIO()
    canvas = Canvas(buffer)
    canvas.drawString(72, 720, text)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def login(client, user) -> None:
    with client.session_transaction() as s:
        s["_user_id"] = user.get_id()
        s["_fresh"] = True


@pytest.fixture
def rq(app, session):
    """A request context (for links in emails) over the test's session."""
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        yield session


def outbox(session, to: str | None = None) -> list[OutboxEmail]:
    stmt = sa.select(OutboxEmail).order_by(OutboxEmail.id)
    if to:
        stmt = stmt.where(OutboxEmail.to_address == to)
    return list(session.scalars(stmt))


def actions(session, abstract) -> list[str]:
    return [e.action for e in services.history(session, abstract)]


def submitted(session, call, **kw) -> Abstract:
    abstract = services.submit(session, call.event, call.submitter, data(**kw))
    session.commit()
    return abstract


# -- text, settings and time -------------------------------------------------------------------


def test_word_count_counts_words_and_two_japanese_characters_as_one():
    assert services.word_count("A new route to **titanium**.") == 5
    assert services.word_count("チタン粉末の新製法") == 5  # 9 characters → 5 words
    assert services.word_count("TiO2 の電解還元") == 1 + 3  # "TiO2" + 5 characters (の電解還元)
    assert services.word_count("") == 0


def test_markdown_is_sanitised_on_output():
    html = str(
        services.render_markdown("**bold** <script>alert(1)</script> [x](javascript:alert(1))")
    )
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "javascript:" not in html


def test_fill_replaces_known_placeholders_and_leaves_the_rest():
    text = "Dear {name}: {title} {unknown} {0} {name.__class__} {{x}} {"
    assert (
        services.fill(text, {"name": "Hanako", "title": "Ti"})
        == "Dear Hanako: Ti {unknown} {0} {name.__class__} {{x}} {"
    )


def test_settings_written_as_text_are_read_leniently(app, session):
    call = make_call(
        session,
        topics="['Extraction | 製錬', 'Recycling']",
        criteria="Novelty | 新規性; Clarity",
        presentation_types="poster",
        word_limit="120",
        allow_pdf="False",
        anonymised_reviews="True",
    )
    settings = services.call_settings(call.event)
    assert [(t.key, t.label.en, t.label.ja) for t in settings.topics] == [
        ("extraction", "Extraction", "製錬"),
        ("recycling", "Recycling", ""),
    ]
    assert [c.key for c in settings.criteria] == ["novelty", "clarity"]
    assert settings.presentation_types == ["poster"]
    assert settings.word_limit == 120
    assert settings.allow_pdf is False and settings.anonymised is True


def test_deadline_is_read_in_the_event_zone_and_shown_in_several(app, session):
    call = make_call(session, closes_at="2030-03-01T23:59")
    settings = services.call_settings(call.event)
    assert settings.closes_at == datetime(2030, 3, 2, 4, 59, tzinfo=UTC)  # EST is UTC-5
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        lines = services.time_lines(settings.closes_at, call.event, call.submitter.person)
    assert lines == [
        "1 March 2030, 23:59 EST (event time, EST)",
        "2 March 2030, 13:59 JST (your time, JST)",
        "2 March 2030, 04:59 UTC",
    ]
    american = f.person(session, country="US")
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        lines = services.time_lines(settings.closes_at, call.event, american)
    assert lines == [
        "1 March 2030, 23:59 EST (event time, EST)",
        "2 March 2030, 04:59 UTC",
    ]


# -- submitting ----------------------------------------------------------------------------------


def test_submit_links_authors_to_speaker_records_and_emails_the_submitter(rq):
    session = rq
    call = make_call(session)
    known = f.person(session, family_name="佐藤", given_name="一郎", email=None,
                     romanized_name="Ichiro Sato")  # fmt: skip
    session.add(SpeakerProfile(person_id=known.id, links=[]))
    session.add(
        AbstractEmailText(
            event_id=call.event.id,
            kind="submitted",
            subject=BilingualText(ja="要旨を受け付けました: {title}", en="Received: {title}"),
            body=BilingualText(ja="{name} 様 {unknown}", en="Dear {name}"),
        )
    )
    session.commit()
    authors = [
        AuthorInput("鈴木 花子", "Tohoku University", "SUB@example.org", True),
        AuthorInput("John Smith", "Boston Metals", "smith@example.com", False),
        AuthorInput("佐藤 一郎", "Kyoto University", "", False),
    ]
    abstract = services.submit(session, call.event, call.submitter, data(authors=authors))
    session.commit()

    assert abstract.state == AbstractState.submitted
    rows = session.scalars(
        sa.select(AbstractAuthor).where(AbstractAuthor.abstract_id == abstract.id)
        .order_by(AbstractAuthor.position)
    ).all()  # fmt: skip
    assert [(r.position, r.name, r.presenting) for r in rows] == [
        (1, "鈴木 花子", True),
        (2, "John Smith", False),
        (3, "佐藤 一郎", False),
    ]
    assert rows[0].person_id == call.submitter.person_id  # by email, whatever its case
    assert rows[2].person_id == known.id  # by an unambiguous name
    smith = session.get(Person, rows[1].person_id)  # a new speaker record
    assert (smith.romanized_name, smith.email, smith.affiliation) == (
        "John Smith",
        "smith@example.com",
        "Boston Metals",
    )
    assert session.scalar(
        sa.select(sa.func.count()).select_from(SpeakerProfile)
        .where(SpeakerProfile.person_id == smith.id)
    ) == 1  # fmt: skip
    [email] = outbox(session)
    assert email.to_address == "sub@example.org"
    assert email.language == "ja"
    assert email.subject == "要旨を受け付けました: Titanium powder by electrolysis"
    body, signature = email.body_text.strip().split("\n\n--\n", 1)
    assert body == "鈴木 花子 様 {unknown}"
    assert signature.startswith("レアメタル研究会 事務局\n")  # signed by the office
    assert actions(session, abstract) == ["submitted"]


def test_draft_needs_only_a_title_and_creates_no_speaker_records(rq):
    session = rq
    call = make_call(session)
    people = session.scalar(sa.select(sa.func.count()).select_from(Person))
    draft = services.save_draft(
        session, call.event, call.submitter, data(body="", topic="", authors=[
            AuthorInput("Someone New", "", "new@example.com", False)
        ]),
    )  # fmt: skip
    session.commit()
    assert draft.state == AbstractState.draft
    assert [a.person_id for a in draft.authors] == [None]
    assert session.scalar(sa.select(sa.func.count()).select_from(Person)) == people
    assert outbox(session) == []
    with pytest.raises(AbstractError) as error:
        services.submit(session, call.event, call.submitter, data(body=""), draft)
    assert error.value.field == "body_en"


def test_submission_rules_name_the_field(rq):
    session = rq
    call = make_call(session)
    settings = services.call_settings(call.event)
    long_body = " ".join(["word"] * 51)
    found = services.problems(
        data(body=long_body, topic="", authors=[AuthorInput("A", "", "", False)]),
        settings,
        submitting=True,
    )
    assert {k: [str(m) for m in v] for k, v in found.items()} == {
        "body_en": ["The abstract has 51 words; the limit is 50 words."],
        "topic": ["Please choose one of the topics."],
        "presenting": ["Please mark exactly one presenting author."],
    }


def test_after_the_deadline_nothing_changes_unless_reopened(rq):
    session = rq
    call = make_call(session)
    abstract = submitted(session, call)
    row = call.event.plugin_settings[0]
    row.settings = {**row.settings, "closes_at": local(call.event, timedelta(minutes=-1))}
    session.commit()
    from portal import plugins

    plugins.forget(call.event)
    with pytest.raises(AbstractError) as error:
        services.submit(session, call.event, call.submitter, data(title="Changed"), abstract)
    assert str(error.value.message).startswith("The deadline has passed")
    with pytest.raises(AbstractError):
        services.submit(session, call.event, call.submitter, data())  # a new one
    session.rollback()

    services.reopen(session, abstract, call.organiser)
    session.commit()
    services.submit(session, call.event, call.submitter, data(title="Changed"), abstract)
    session.commit()
    assert abstract.title.en == "Changed"
    assert actions(session, abstract) == ["submitted", "reopened", "changed"]


def test_only_the_submitter_changes_or_withdraws(rq):
    session = rq
    call = make_call(session)
    abstract = submitted(session, call)
    with pytest.raises(services.NotFound):
        services.submit(session, call.event, call.other, data(title="Mine now"), abstract)
    with pytest.raises(services.NotFound):
        services.withdraw(session, abstract, call.other)
    services.withdraw(session, abstract, call.submitter)
    session.commit()
    assert abstract.state == AbstractState.withdrawn
    with pytest.raises(AbstractError):
        services.submit(session, call.event, call.submitter, data(), abstract)
    assert [e.subject for e in outbox(session)] == [
        "講演要旨を受け付けました：Titanium powder by electrolysis",
        "講演要旨を取り下げました：Titanium powder by electrolysis",
    ]


def test_pdf_is_checked_by_content():
    good = a_pdf()
    assert files.check_pdf(good, "figure.pdf").pages == 1
    cases = {
        b"": "The file is empty.",
        b"GIF89a not a pdf": "This file is not a PDF. Please attach a PDF file.",
        b"%PDF-1.7\n garbage without objects": (
            "The PDF could not be read. Please check the file and attach it again."
        ),
        b"%PDF-1.4" + b"0" * files.MAX_PDF_BYTES: (
            "The PDF is too large. Please attach a file of at most 10 MB."
        ),
    }
    for content, message in cases.items():
        with pytest.raises(files.PdfError) as error:
            files.check_pdf(content, "x.pdf")
        assert str(error.value.message) == message


def test_attached_pdf_is_stored_and_replaced_file_removed_after_commit(rq, app):
    session = rq
    call = make_call(session)
    first = files.check_pdf(a_pdf("one"), "one.pdf")
    abstract = services.submit(session, call.event, call.submitter, data(pdf=first))
    session.commit()
    old_path = files.path_of(abstract.pdf_name)
    assert old_path.read_bytes() == first.data
    assert (abstract.pdf_filename, abstract.pdf_size) == ("one.pdf", len(first.data))
    second = files.check_pdf(a_pdf("two"), "two.pdf")
    services.submit(session, call.event, call.submitter, data(pdf=second), abstract)
    session.commit()
    assert not old_path.exists()
    assert files.path_of(abstract.pdf_name).read_bytes() == second.data


# -- reviewing ---------------------------------------------------------------------------------


def test_auto_assign_balances_load_and_avoids_authors_and_colleagues(rq):
    session = rq
    call = make_call(session)
    mit, kyoto, tohoku, nims = call.reviewers
    # Abstract 1: the submitter from Tohoku University (conflicts with reviewer 3).
    one = submitted(session, call, title="One")
    # Abstract 2: written by reviewer 1 (MIT) with a Kyoto co-author.
    two = services.submit(
        session, call.event, mit, data(title="Two", authors=[
            AuthorInput("Reviewer 1", "MIT", "rev1@example.org", True),
            AuthorInput("Kenji Kyoto", "Kyoto University", "kenji@example.jp", False),
        ]),
    )  # fmt: skip
    three = services.submit(
        session, call.event, call.other, data(title="Three", authors=[
            AuthorInput("Otto Other", "Elsewhere", "other@example.org", True),
        ]),
    )  # fmt: skip
    session.commit()
    result = services.auto_assign(session, call.event, call.organiser, per_abstract=2)
    session.commit()
    assigned = {a.id: sorted(r.reviewer_id for r in a.assignments) for a in (one, two, three)}
    assert assigned == {
        one.id: [mit.person_id, kyoto.person_id],
        two.id: [tohoku.person_id, nims.person_id],
        three.id: [mit.person_id, kyoto.person_id],
    }
    assert (result.assigned, result.short) == (6, [])
    # Asking for three: nobody twice, the least loaded first.
    result = services.auto_assign(session, call.event, call.organiser, per_abstract=3)
    session.commit()
    loads = session.execute(
        sa.select(ReviewAssignment.reviewer_id, sa.func.count())
        .group_by(ReviewAssignment.reviewer_id).order_by(ReviewAssignment.reviewer_id)
    ).all()  # fmt: skip
    assert [n for _id, n in loads] == [2, 2, 2, 2]
    # One gets NIMS, three gets Tohoku; nobody is left for two (MIT wrote it, Kyoto co-wrote).
    assert (result.assigned, result.short) == (2, [two.id])
    assert len(outbox(session, "rev4@example.org")) == 2


def test_assign_by_hand_refuses_authors_colleagues_and_non_reviewers(rq):
    session = rq
    call = make_call(session)
    abstract = submitted(session, call)
    mit, kyoto, tohoku, _nims = call.reviewers
    for person, message in (
        (tohoku.person, "This person has the same affiliation as an author and cannot review the abstract."),
        (call.submitter.person, "This person is not a reviewer of this series."),
        (call.other.person, "This person is not a reviewer of this series."),
    ):  # fmt: skip
        with pytest.raises(AbstractError) as error:
            services.assign_reviewer(session, abstract, person, call.organiser)
        assert str(error.value.message) == message
    services.assign_reviewer(session, abstract, mit.person, call.organiser)
    session.commit()
    [email] = outbox(session, "rev1@example.org")
    assert email.subject == "An abstract to review: Titanium powder by electrolysis"
    assert "/en/events/" in email.body_text and "/abstracts/reviews/" in email.body_text


def test_review_scores_are_checked_and_locked_by_the_decision(rq):
    session = rq
    call = make_call(session, scale_max=5)
    abstract = submitted(session, call)
    mit = call.reviewers[0]
    assignment = services.assign_reviewer(session, abstract, mit.person, call.organiser)
    session.commit()
    scores = {"originality": 5, "significance": 4, "clarity": 6}
    with pytest.raises(AbstractError) as error:
        services.save_review(session, assignment, mit, scores, "")
    assert error.value.field == "score_clarity"
    with pytest.raises(services.NotFound):
        services.save_review(session, assignment, call.reviewers[1], {}, "")
    review = services.save_review(session, assignment, mit, {**scores, "clarity": 3}, " Good ")
    session.commit()
    assert (review.scores, review.overall, review.comment) == (
        {"originality": 5, "significance": 4, "clarity": 3}, 4.0, "Good",
    )  # fmt: skip
    services.save_review(session, assignment, mit, {**scores, "clarity": 2}, "Fine")
    services.accept_poster(session, abstract, call.organiser)
    session.commit()
    with pytest.raises(AbstractError) as error:
        services.save_review(session, assignment, mit, {**scores, "clarity": 5}, "Later")
    assert str(error.value.message) == (
        "A decision has been made; the review can no longer be changed."
    )


def test_scores_side_by_side(rq):
    session = rq
    call = make_call(session)
    abstract = submitted(session, call)
    mit, kyoto, _tohoku, nims = call.reviewers
    for reviewer, values in ((mit, (5, 5, 5)), (kyoto, (3, 3, 3)), (nims, None)):
        assignment = services.assign_reviewer(session, abstract, reviewer.person, call.organiser)
        if values:
            services.save_review(
                session, assignment, reviewer, dict(zip(("originality", "significance", "clarity"), values, strict=True)), ""
            )  # fmt: skip
    session.commit()
    summary = services.score_summaries(session, [abstract])[abstract.id]
    assert (summary.assigned, summary.count, summary.mean, summary.stdev) == (3, 2, 4.0, 1.0)
    assert (summary.low, summary.high, summary.spread) == (3.0, 5.0, 2.0)
    assert summary.by_criterion == {"originality": 4.0, "significance": 4.0, "clarity": 4.0}


# -- deciding ----------------------------------------------------------------------------------


def test_accepting_makes_a_talk_after_the_existing_ones_and_rejecting_removes_it(rq):
    session = rq
    call = make_call(session)
    f.talk(session, call.event, position=3)
    abstract = submitted(session, call)
    services.accept_oral(session, abstract, call.organiser, "Welcome!")
    session.commit()
    talk = session.get(Talk, abstract.talk_id)
    presenting = abstract.presenting_author
    assert (talk.position, talk.speaker_id, talk.title.en, talk.language) == (
        4, presenting.person_id, "Titanium powder by electrolysis", "en",
    )  # fmt: skip
    assert presenting.person_id == call.submitter.person_id
    assert (
        session.scalar(
            sa.select(SpeakerProfile.id).where(SpeakerProfile.person_id == presenting.person_id)
        )
        is not None
    )  # the presenting author has a speaker record now
    services.accept_poster(session, abstract, call.organiser)  # same talk, other kind
    session.commit()
    assert abstract.talk_id == talk.id
    services.reject(session, abstract, call.organiser, "Sorry.")
    session.commit()
    assert abstract.talk_id is None
    assert session.get(Talk, talk.id) is None
    assert actions(session, abstract) == [
        "submitted", "accepted_oral", "accepted_poster", "rejected",
    ]  # fmt: skip
    decisions = [
        e.data for e in session.scalars(
            sa.select(AuditEntry).where(AuditEntry.subject_type == "abstract",
                                        AuditEntry.action == "accepted_oral")
        )
    ]  # fmt: skip
    assert decisions == [{"old": "submitted", "new": "accepted_oral", "note": "Welcome!"}]
    subjects = [e.subject for e in outbox(session)]
    assert subjects == [
        "講演要旨を受け付けました：Titanium powder by electrolysis",
        "講演要旨が採択されました：Titanium powder by electrolysis",
        "講演要旨が採択されました：Titanium powder by electrolysis",
        "講演要旨の採否のお知らせ：Titanium powder by electrolysis",
    ]


def test_moves_that_are_not_allowed(rq):
    session = rq
    call = make_call(session)
    abstract = submitted(session, call)
    services.reject(session, abstract, call.organiser)
    session.commit()
    with pytest.raises(AbstractError) as error:
        services.request_revision(session, abstract, call.organiser)
    assert str(error.value.message) == (
        "An abstract cannot move from “Not accepted” to “Revision requested”."
    )
    with pytest.raises(AbstractError):
        services.withdraw(session, abstract, call.submitter)
    with pytest.raises(AbstractError):
        services.reopen(session, abstract, call.organiser)


def test_revision_request_lets_the_submitter_edit_after_the_deadline(rq):
    session = rq
    call = make_call(session)
    abstract = submitted(session, call)
    row = call.event.plugin_settings[0]
    row.settings = {**row.settings, "closes_at": local(call.event, timedelta(days=-1))}
    session.commit()
    from portal import plugins

    plugins.forget(call.event)
    services.request_revision(session, abstract, call.organiser, "Please shorten the title.")
    session.commit()
    assert services.can_edit(abstract, services.call_settings(call.event))
    services.submit(session, call.event, call.submitter, data(title="Ti powder"), abstract)
    services.accept_oral(session, abstract, call.organiser)
    session.commit()
    assert abstract.title.en == "Ti powder" and not abstract.reopened
    revision = [e for e in outbox(session) if e.subject.startswith("講演要旨の修正のお願い")]
    assert len(revision) == 1
    assert "Please shorten the title." in revision[0].body_text


def test_decision_email_is_delivered_over_smtp(rq, app, smtp_server):
    from portal.mail.services import send_due

    session = rq
    call = make_call(session)
    abstract = submitted(session, call)
    services.accept_oral(session, abstract, call.organiser, "See you in Boston.")
    session.commit()
    app.config["MAIL_PORT"] = smtp_server.port
    assert send_due(session) == (2, 0)
    decision = smtp_server.messages[-1]
    assert decision["To"] == "sub@example.org"
    assert decision["Subject"] == "講演要旨が採択されました：Titanium powder by electrolysis"
    assert "See you in Boston." in decision.get_body(("plain",)).get_content()


def test_organisers_never_see_drafts_and_a_withdrawn_abstract_can_be_reopened(rq):
    session = rq
    call = make_call(session)
    draft = services.save_draft(session, call.event, call.submitter, data(title="Private"))
    sent = services.submit(session, call.event, call.submitter, data(title="Sent"))
    session.flush()
    services.withdraw(session, draft, call.submitter)
    services.withdraw(session, sent, call.submitter)
    session.commit()
    listed = session.scalars(services.organiser_list(call.event)).unique().all()
    assert [a.title.en for a in listed] == ["Sent"]
    assert services.progress(session, call.event).counts == {AbstractState.withdrawn: 1}
    with pytest.raises(services.NotFound):
        services.reopen(session, draft, call.organiser)
    services.reopen(session, sent, call.organiser)
    session.commit()
    assert (sent.state, sent.reopened) == (AbstractState.submitted, True)
    assert actions(session, sent) == ["submitted", "withdrawn", "reopened"]
