"""Personal data does not leak: the archive names only its speakers and keeps members-only
slide text to those who may open it; an organiser sees the people of their own series and
finds anyone else only by typing an exact, complete email address; a deleted account's
email leaves stored webhook payloads and outbox messages (issue #12)."""

from __future__ import annotations

import sqlalchemy as sa

from portal.accounts import services as accounts
from portal.accounts.models import Person, User
from portal.mail.models import OutboxEmail
from portal.mail.services import queue_email
from portal.payments.models import Payment, ProcessedWebhookEvent
from portal.registration.models import Registration, RegistrationState
from tests import factories as f
from tests.test_archive import add_file, database, login, make_pptx
from tests.test_archive import world as world  # noqa: F401  (the archive's fixture)
from tests.test_speakers_support import speaker

# -- the archive -----------------------------------------------------------------------------


def test_archive_speaker_filter_names_only_speakers_of_the_archive(app, client, world):
    add_file(app, world["talk"], world=world)
    with database(app) as s:
        stranger = f.person(s, romanized_name="Secret Person", family_name="秘密", given_name="人")
        outsider_person = s.get(User, world["outsider"]).person
        outsider_name = outsider_person.romanized_name
        speaker_person = s.get(User, world["speaker"]).person_id
        s.commit()
        stranger_id, outsider_id = stranger.id, outsider_person.id
    for person_id, name in ((stranger_id, "Secret Person"), (outsider_id, outsider_name)):
        page = client.get(f"/en/series/study/archive/?speaker={person_id}")
        assert page.status_code == 200
        assert name not in page.text
        assert "Talks by" not in page.text
    page = client.get(f"/en/series/study/archive/?speaker={speaker_person}").text
    assert "Talks by Ichiro Suzuki" in page


def test_archive_search_keeps_members_only_slide_text_to_those_who_may_open_it(app, client, world):
    add_file(app, world["talk2"], make_pptx("Niobium supply chain", "二次電池"), "m.pptx")
    for who in ("anonymous", "outsider", "speaker"):  # speaker: of another talk
        login(client, app, world[who])
        for q in ("supply", "二次電池"):
            page = client.get(f"/ja/series/study/archive/?q={q}").text
            assert "ニオブの市場" not in page, (who, q)
            assert "検索に一致する資料はありません。" in page
        # The title and the speaker's name stay searchable for everyone.
        assert "ニオブの市場" in client.get("/ja/series/study/archive/?q=niobium").text
    for who in ("member", "organiser", "admin", "speaker2"):  # speaker2: their own talk
        login(client, app, world[who])
        assert "ニオブの市場" in client.get("/ja/series/study/archive/?q=supply").text, who


# -- organisers see the people of their own series -------------------------------------------


def _two_series(s):
    study = f.series(s, slug="study")
    workshop = f.series(s, "workshop", slug="workshop")
    meeting = f.event(s, study, slug="meeting-1")
    boston = f.event(s, workshop, slug="boston-1")
    organiser = f.user(s, email="org@example.org", roles=(("organiser", study),))
    other = f.person(
        s,
        family_name="波士頓",
        given_name="太郎",
        romanized_name="Boston Only",
        email="boston.only@workshop.example",
        affiliation="Boston Metals",
    )
    s.add(
        Registration(
            event_id=boston.id,
            person_id=other.id,
            state=RegistrationState.confirmed,
            attendance_mode="onsite",
            currency="JPY",
        )
    )
    mine = f.person(s, romanized_name="Tokyo Registrant", email="tokyo.reg@study.example")
    s.add(
        Registration(
            event_id=meeting.id,
            person_id=mine.id,
            state=RegistrationState.confirmed,
            attendance_mode="onsite",
            currency="JPY",
        )
    )
    s.commit()
    return organiser, other, mine, meeting


def test_add_registration_search_lists_only_people_of_the_organisers_series(app, client):
    with database(app) as s:
        organiser, other, mine, meeting = _two_series(s)
        organiser_id, other_id, mine_id = organiser.id, other.id, mine.id
    login(client, app, organiser_id)
    url = "/en/organiser/events/meeting-1/registrations/add"
    for q in ("@", "boston", "Boston Only", "workshop.example", "boston.only@workshop"):
        page = client.get(url, query_string={"q": q}).text
        assert "Boston Metals" not in page and f"person_id={other_id}" not in page, q
        assert q == "@" or "Nobody found." in page
    assert "Tokyo Registrant" in client.get(url, query_string={"q": "tokyo"}).text
    assert "Tokyo Registrant" in client.get(url, query_string={"q": "@study"}).text
    # The exact, complete address finds the person (to add them), and only them.
    page = client.get(url, query_string={"q": "Boston.Only@workshop.example"}).text
    assert f"person_id={other_id}" in page and "Boston Metals" in page
    assert "Tokyo Registrant" not in page
    # person_id alone does not show someone of another series.
    page = client.get(url, query_string={"person_id": other_id}).text
    assert "Boston Only" not in page and "Boston Metals" not in page
    assert "Tokyo Registrant" in client.get(url, query_string={"person_id": mine_id}).text
    page = client.get(
        url, query_string={"person_id": other_id, "q": "boston.only@workshop.example"}
    ).text
    assert "Boston Metals" in page


def test_add_registration_with_an_unknown_person_id_of_another_series_adds_nobody(app, client):
    with database(app) as s:
        organiser, other, _mine, _meeting = _two_series(s)
        organiser_id, other_id = organiser.id, other.id
    login(client, app, organiser_id)
    r = client.post(
        "/en/organiser/events/meeting-1/registrations/add",
        data={"person_id": other_id, "attendance_mode": "onsite"},
    )
    assert r.status_code == 400  # the new-person form again: no name given
    with database(app) as s:
        assert (
            s.scalar(
                sa.select(sa.func.count())
                .select_from(Registration)
                .where(Registration.person_id == other_id)
            )
            == 1
        )


def test_talk_form_speaker_search_by_email_needs_the_complete_address(app, client):
    with database(app) as s:
        organiser, _other, _mine, meeting = _two_series(s)
        talk = f.talk(s, meeting)
        elsewhere = speaker(s, romanized_name="Far Speaker", email="far.speaker@workshop.example")
        s.commit()
        organiser_id, talk_id, far_id = organiser.id, talk.id, elsewhere.person_id
    login(client, app, organiser_id)
    url = f"/en/organiser/talks/{talk_id}/speaker"
    for q in ("@workshop", "far.speaker@", "@"):
        page = client.get(url, query_string={"q": q}).text
        assert f'value="{far_id}"' not in page, q
    page = client.get(url, query_string={"q": "far.speaker@workshop.example"}).text
    assert f'value="{far_id}"' in page


def test_shared_speaker_directory_shows_emails_of_the_organisers_own_series_only(app, client):
    """The speaker directory is shared by both series; an address is not: the list, the CSV
    and the edit form show it for speakers of the organiser's series (and to administrators)."""
    with database(app) as s:
        organiser, _other, _mine, meeting = _two_series(s)
        ours = speaker(s, romanized_name="Our Speaker", email="our.speaker@study.example")
        f.talk(s, meeting, ours.person)
        theirs = speaker(s, romanized_name="Their Speaker", email="their.speaker@workshop.example")
        admin = f.user(s, email="root@example.org", is_admin=True)
        s.commit()
        organiser_id, admin_id = organiser.id, admin.id
        ours_id, theirs_id = ours.person_id, theirs.person_id
    login(client, app, organiser_id)
    listing = client.get("/en/organiser/speakers/").text
    assert "Their Speaker" in listing and "Our Speaker" in listing
    assert "their.speaker@workshop.example" not in listing
    assert "our.speaker@study.example" in listing
    assert "(other series)" in listing
    csv_text = client.get("/en/organiser/speakers/export.csv").get_data(as_text=True)
    rows = {line.split(",")[0]: line for line in csv_text.splitlines()[1:]}
    assert "their.speaker@workshop.example" not in csv_text
    assert "our.speaker@study.example" in rows[str(ours_id)]
    edit = client.get(f"/en/organiser/speakers/{theirs_id}/edit").text
    assert "their.speaker@workshop.example" not in edit and 'name="email"' not in edit
    assert 'name="email"' in client.get(f"/en/organiser/speakers/{ours_id}/edit").text
    # Saving the record of the other series' speaker keeps their address.
    r = client.post(
        f"/en/organiser/speakers/{theirs_id}/edit",
        data={
            "family_name": "講演",
            "given_name": "者",
            "romanized_name": "Their Speaker",
            "preferred_language": "en",
        },
    )
    assert r.status_code == 302, r.text[:2000]
    with database(app) as s:
        assert s.get(Person, theirs_id).email == "their.speaker@workshop.example"
    login(client, app, admin_id)
    assert "their.speaker@workshop.example" in client.get("/en/organiser/speakers/").text
    csv_text = client.get("/en/organiser/speakers/export.csv").get_data(as_text=True)
    assert "their.speaker@workshop.example" in csv_text


# -- deleting an account scrubs stored copies ------------------------------------------------


def test_deleting_an_account_scrubs_webhook_payloads_and_outbox_messages(app):
    with database(app) as s:
        series = f.series(s)
        event = f.event(s, series)
        user = f.user(s, email="leaving@example.org")
        person = user.person
        registration = Registration(
            event_id=event.id,
            person_id=person.id,
            state=RegistrationState.confirmed,
            attendance_mode="onsite",
            currency="JPY",
        )
        s.add(registration)
        s.flush()
        payment = Payment(
            registration_id=registration.id,
            event_id=event.id,
            person_id=person.id,
            method="card",
            amount_minor=5000,
            currency="JPY",
        )
        s.add(payment)
        s.flush()
        s.add(
            ProcessedWebhookEvent(
                id="evt_1",
                type="checkout.session.completed",
                payment_id=payment.id,
                payload={
                    "id": "evt_1",
                    "data": {
                        "object": {
                            "customer_email": "leaving@example.org",
                            "customer_details": {"email": "leaving@example.org", "name": "X"},
                            "amount_total": 5000,
                        }
                    },
                },
            )
        )
        s.add(
            ProcessedWebhookEvent(
                id="evt_2",
                type="charge.refunded",
                payload={"data": {"object": {"receipt_email": "Leaving@example.org"}}},
            )
        )
        # An earlier address (the notice of the change went there) and a mention elsewhere.
        queue_email(
            s,
            "old.address@example.org",
            "accounts/email_changed",
            "en",
            person=person,
            new_email="leaving@example.org",
        )
        s.add(
            OutboxEmail(
                to_address="office@example.org",
                language="en",
                subject="New registration",
                body_text="leaving@example.org registered.",
                body_html="<p>leaving@example.org registered.</p>",
                reply_to="leaving@example.org",
            )
        )
        s.add(
            OutboxEmail(
                to_address="old.address@example.org",
                language="en",
                subject="Reminder",
                body_text="See you",
                body_html="<p>See you</p>",
            )
        )
        s.commit()
        accounts.delete_account(s, s.get(User, user.id))
        s.commit()
        own, other = s.get(ProcessedWebhookEvent, "evt_1"), s.get(ProcessedWebhookEvent, "evt_2")
        assert own.payload == {"id": "evt_1", "data": {"object": {"amount_total": 5000}}}
        assert other.payload == {"data": {"object": {"receipt_email": "[deleted]"}}}
        # The payment (the ledger) stays.
        assert s.get(Payment, payment.id).amount_minor == 5000
        rows = s.execute(
            sa.select(OutboxEmail.to_address, OutboxEmail.body_text, OutboxEmail.reply_to)
        ).all()
        assert rows == [("office@example.org", "[deleted] registered.", "")]
        assert s.get(Person, person.id).email in (None, "")


def test_hook_series_people(app):
    """Abstract authors and member companies' people count as people of the series."""
    from plugins.abstracts.models import Abstract, AbstractAuthor
    from plugins.membership.models import CompanyMember, MemberCompany, MemberHow
    from portal import people
    from portal.i18n import BilingualText

    with database(app) as s:
        study = f.series(s, slug="study")
        workshop = f.series(s, "workshop", slug="workshop")
        meeting = f.event(s, study)
        author, submitter, employee, stranger = (f.person(s) for _ in range(4))
        abstract = Abstract(event_id=meeting.id, submitter_id=submitter.id)
        s.add(abstract)
        s.flush()
        s.add(AbstractAuthor(abstract_id=abstract.id, person_id=author.id, name="A"))
        company = MemberCompany(series_id=study.id, name=BilingualText(ja="社", en="Co"))
        s.add(company)
        s.flush()
        s.add(CompanyMember(company_id=company.id, person_id=employee.id, how=MemberHow.domain))
        s.flush()
        ids = set(s.scalars(people.series_person_ids([study.id])))
        assert {author.id, submitter.id, employee.id} <= ids
        assert stranger.id not in ids
        assert not set(s.scalars(people.series_person_ids([workshop.id])))
