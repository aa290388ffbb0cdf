"""A series organiser appoints the reviewers of their own series (only theirs); abstracts
accepted as posters are marked as posters in the programme."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from plugins.abstracts import services as abstracts
from portal.accounts.models import Role, UserRole
from portal.audit import AuditEntry
from portal.events.models import Talk
from tests import factories as f
from tests import test_speakers_support as support
from tests.test_abstracts import make_call, submitted
from tests.test_speakers_support import login


@pytest.fixture
def dbs(app):
    yield from support.open_session(app)


def _world(dbs):
    study = f.series(dbs, slug="study")
    workshop = f.series(dbs, "workshop", slug="workshop")
    organiser = f.user(dbs, email="org@example.org", roles=(("organiser", study),))
    boston = f.user(dbs, email="boston@example.org", roles=(("organiser", workshop),))
    candidate = f.user(dbs, email="Kenji@Example.org")
    workshop_reviewer = f.user(dbs, email="wr@example.org", roles=(("reviewer", workshop),))
    dbs.commit()
    return study, workshop, organiser, boston, candidate, workshop_reviewer


def _roles(dbs, user) -> set:
    dbs.commit()
    return {
        (r.role, r.series_id)
        for r in dbs.scalars(sa.select(UserRole).where(UserRole.user_id == user.id))
    }


def test_series_organiser_appoints_and_removes_reviewers_of_their_series(app, client, dbs):
    study, workshop, organiser, _boston, candidate, _wr = _world(dbs)
    login(client, organiser)
    page = client.get("/en/organiser/series/study/reviewers")
    assert page.status_code == 200
    assert "Appoint a reviewer" in page.text
    assert "/en/organiser/series/study/reviewers" in client.get("/en/organiser/").text
    response = client.post(
        "/en/organiser/series/study/reviewers", data={"email": "kenji@example.org"}
    )
    assert response.status_code == 302
    assert _roles(dbs, candidate) == {(Role.reviewer, study.id)}
    entry = dbs.scalar(sa.select(AuditEntry).where(AuditEntry.action == "role_granted"))
    assert (entry.actor_id, entry.subject_id, entry.data) == (
        organiser.id,
        candidate.id,
        {"role": "reviewer", "series_id": study.id},
    )
    page = client.get("/ja/organiser/series/study/reviewers")
    assert "kenji@example.org" in page.text and "査読者を任命する" in page.text
    # Again: nothing new.
    client.post("/en/organiser/series/study/reviewers", data={"email": "kenji@example.org"})
    assert len(_roles(dbs, candidate)) == 1
    # Nobody with that email: the form again with the message.
    bad = client.post("/en/organiser/series/study/reviewers", data={"email": "nobody@example.org"})
    assert bad.status_code == 400
    assert "Nobody has an account with this email." in bad.text
    assert 'value="nobody@example.org"' in bad.text
    role = dbs.scalar(sa.select(UserRole).where(UserRole.user_id == candidate.id))
    response = client.post(f"/en/organiser/series/study/reviewers/{role.id}/remove")
    assert response.status_code == 302
    assert _roles(dbs, candidate) == set()


def test_organisers_of_another_series_cannot_touch_these_reviewers(app, client, dbs):
    study, workshop, organiser, boston, candidate, workshop_reviewer = _world(dbs)
    login(client, boston)  # organises the workshop only
    assert client.get("/en/organiser/series/study/reviewers").status_code == 404
    response = client.post(
        "/en/organiser/series/study/reviewers", data={"email": "kenji@example.org"}
    )
    assert response.status_code == 404
    assert _roles(dbs, candidate) == set()
    # The study group's organiser cannot take away the workshop's reviewer through their
    # series, nor an organiser role through the reviewers page.
    login(client, organiser)
    [wr_role] = workshop_reviewer.roles
    assert (
        client.post(f"/en/organiser/series/study/reviewers/{wr_role.id}/remove").status_code == 404
    )
    assert (
        client.post(f"/en/organiser/series/workshop/reviewers/{wr_role.id}/remove").status_code
        == 404
    )
    [own_role] = organiser.roles
    response = client.post(f"/en/organiser/series/study/reviewers/{own_role.id}/remove")
    assert response.status_code == 302
    assert _roles(dbs, organiser) == {(Role.organiser, study.id)}
    assert _roles(dbs, workshop_reviewer) == {(Role.reviewer, workshop.id)}
    # A participant is refused.
    login(client, candidate)
    assert client.get("/en/organiser/series/study/reviewers").status_code == 403


def test_posters_are_marked_on_the_programme(app, client, dbs):
    with support.ctx(app):
        call = make_call(dbs)
        poster = submitted(dbs, call, title="Poster about niobium")
        oral = submitted(dbs, call, title="Talk about tantalum")
        abstracts.accept_poster(dbs, poster, call.organiser)
        abstracts.accept_oral(dbs, oral, call.organiser)
        dbs.commit()
        slug = call.event.slug
        assert dbs.get(Talk, poster.talk_id).presentation_type == "poster"
        assert dbs.get(Talk, oral.talk_id).presentation_type == "oral"
    for lang, label in (("en", "Poster"), ("ja", "ポスター")):
        for url in (f"/{lang}/events/{slug}/", f"/{lang}/events/{slug}/programme/"):
            page = client.get(url)
            assert page.status_code == 200, url
            text = page.text
            poster_at = text.index("Poster about niobium")
            oral_at = text.index("Talk about tantalum")
            badge = f'<span class="badge poster">{label}</span>'
            assert text.count(badge) == 1, url
            assert poster_at < text.index(badge) < oral_at or oral_at < poster_at < text.index(
                badge
            )
    # Accepted as oral after all: no longer a poster.
    with support.ctx(app):
        abstracts.accept_oral(dbs, poster, call.organiser)
        dbs.commit()
        assert dbs.get(Talk, poster.talk_id).presentation_type == "oral"
