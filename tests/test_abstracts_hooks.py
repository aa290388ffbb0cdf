"""The abstracts plugin's hooks: tabs, dashboard panel, personal data and forgetting a person."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g
from flask_login import AnonymousUserMixin

from plugins.abstracts import files, services
from plugins.abstracts.models import Abstract, AbstractAuthor, AbstractState, ReviewAssignment
from portal import plugins
from portal.plugins import Tab
from tests.test_abstracts import a_pdf, data, make_call


def _impl(hook: str):
    [impl] = [
        i
        for i in getattr(plugins.manager().hook, hook).get_hookimpls()
        if i.plugin_name == "abstracts"
    ]
    return impl.function


def test_hook_event_tabs_abstracts(app, session):
    call = make_call(session)
    slug = call.event.slug
    base = f"/en/events/{slug}/abstracts"
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        tabs = plugins.call_event_hook("event_tabs", call.event, user=AnonymousUserMixin())
        assert tabs == [Tab("Call for abstracts", f"{base}/", "abstracts")]
        abstract = services.submit(session, call.event, call.submitter, data())
        services.assign_reviewer(session, abstract, call.reviewers[0].person, call.organiser)
        services.accept_oral(session, abstract, call.organiser)
        session.commit()
        assert plugins.call_event_hook("event_tabs", call.event, user=call.reviewers[0]) == [
            Tab("Call for abstracts", f"{base}/", "abstracts"),
            Tab("Book of abstracts", f"{base}/book", "abstracts"),
            Tab("My reviews", f"{base}/reviews", "abstracts"),
        ]
        assert plugins.call_event_hook("event_tabs", call.event, user=call.organiser) == [
            Tab("Call for abstracts", f"{base}/", "abstracts"),
            Tab("Book of abstracts", f"{base}/book", "abstracts"),
            Tab("Manage abstracts", f"{base}/manage/", "abstracts"),
        ]
        call.event.plugin_settings[0].enabled = False
        session.commit()
        plugins.forget(call.event)
        assert plugins.call_event_hook("event_tabs", call.event, user=call.organiser) == []


def test_hook_dashboard_panels_abstracts(app, session):
    call = make_call(session)
    with app.test_request_context("/en/"):
        g.lang_code = "en"
        services.submit(session, call.event, call.submitter, data(title="One"))
        services.save_draft(session, call.event, call.other, data(title="Draft"))
        session.commit()
        [panel] = plugins.call_event_hook("dashboard_panels", call.event, user=call.organiser)
        assert 'id="abstracts-panel"' in panel
        assert "<dt>Submitted</dt><dd>1</dd>" in panel
        assert "<dt>Abstracts</dt><dd>1</dd>" in panel  # drafts are not counted
        assert f'href="/en/events/{call.event.slug}/abstracts/manage/"' in panel
        assert plugins.call_event_hook("dashboard_panels", call.event, user=call.other) == []


def test_hook_personal_data_abstracts(app, session):
    call = make_call(session)
    with app.test_request_context("/en/"):
        abstract = services.submit(session, call.event, call.submitter, data())
        mit = call.reviewers[0]
        assignment = services.assign_reviewer(session, abstract, mit.person, call.organiser)
        scores = {"originality": 4, "significance": 4, "clarity": 4}
        services.save_review(session, assignment, mit, scores, "Clear")
        session.commit()
    mine = _impl("personal_data")(person=call.submitter.person)
    assert [(a["id"], a["title"], a["state"]) for a in mine["abstracts"]] == [
        (abstract.id, {"ja": "", "en": "Titanium powder by electrolysis"}, "submitted")
    ]
    assert mine["authorships"] == [
        {
            "abstract_id": abstract.id,
            "position": 1,
            "name": "鈴木 花子",
            "affiliation": "Tohoku University",
            "email": "sub@example.org",
            "presenting": True,
        }
    ]
    assert mine["reviews"] == []
    reviewer = _impl("personal_data")(person=mit.person)
    assert reviewer["abstracts"] == [] and reviewer["authorships"] == []
    assert [(r["abstract_id"], r["scores"], r["comment"]) for r in reviewer["reviews"]] == [
        (abstract.id, scores, "Clear")
    ]


def test_hook_forget_person_abstracts(app, session):
    call = make_call(session)
    with app.test_request_context("/en/"):
        pdf = files.check_pdf(a_pdf(), "figure.pdf")
        draft = services.save_draft(session, call.event, call.submitter, data(pdf=pdf))
        sent = services.submit(session, call.event, call.submitter, data(title="Sent"))
        accepted = services.submit(session, call.event, call.submitter, data(title="Kept"))
        services.accept_oral(session, accepted, call.organiser)
        mit = call.reviewers[0]
        other = services.submit(session, call.event, call.other, data(title="Other's"))
        assignment = services.assign_reviewer(session, other, mit.person, call.organiser)
        services.save_review(session, assignment, mit, dict.fromkeys(
            ("originality", "significance", "clarity"), 3), "Reviewed")  # fmt: skip
        session.commit()
    draft_id, draft_file = draft.id, files.path_of(draft.pdf_name)
    assert draft_file.exists()

    _impl("forget_person")(person=call.submitter.person)
    _impl("forget_person")(person=mit.person)
    session.commit()
    session.expire_all()

    assert session.get(Abstract, draft_id) is None
    assert not draft_file.exists()
    sent = session.get(Abstract, sent.id)
    assert (sent.state, sent.submitter_id) == (AbstractState.withdrawn, None)
    kept = session.get(Abstract, accepted.id)
    assert (kept.state, kept.submitter_id) == (AbstractState.accepted_oral, None)
    authored = session.scalars(
        sa.select(AbstractAuthor).where(AbstractAuthor.person_id == call.submitter.person_id)
    ).all()
    assert {(a.name, a.email, a.affiliation) for a in authored} == {("", "", "")}
    review = session.get(ReviewAssignment, assignment.id)
    assert review.reviewer_id is None
    assert (review.review.comment, review.review.overall) == ("Reviewed", 3.0)
