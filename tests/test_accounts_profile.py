"""Profile: details, email change, password change, data download, account deletion, hooks."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import sqlalchemy as sa

from portal.accounts.models import LoginAttempt, Person, Sector, User, UserRole
from portal.accounts.passwords import verify_password
from portal.audit import AuditEntry
from portal.hookspecs import hookimpl
from portal.mail.models import OutboxEmail
from tests import factories as f
from tests.test_accounts import (  # noqa: F401  (fixtures)
    db_session,
    is_logged_in,
    link_path,
    log_in,
    make_user,
    outbox,
)

NEW = "a brand new password"


def _errors(text: str) -> list[str]:
    return re.findall(r'<p class="error" id="[^"]*-error">([^<]*)</p>', text)


def _profile_data(**kw) -> dict:
    data = {
        "family_name": "佐藤",
        "given_name": "次郎",
        "family_name_kana": "サトウ",
        "given_name_kana": "じろう",
        "romanized_name": "Jiro Sato",
        "affiliation": "架空大学 金属研究所",
        "sector": "university",
        "country": "US",
        "preferred_language": "en",
    }
    data.update(kw)
    return {f"profile-{k}": v for k, v in data.items()}


# -- details ---------------------------------------------------------------------------------


def test_profile_page_shows_the_persons_details_in_both_languages(app, client):
    _, email = make_user(app, affiliation="架空金属株式会社", romanized_name="Taro Yamada")
    log_in(client, email)
    ja = client.get("/ja/account/profile")
    en = client.get("/en/account/profile")
    assert ja.status_code == en.status_code == 200
    for text in ("プロフィール", "メールアドレス", "パスワード", "自分のデータをダウンロード"):
        assert text in ja.text
    for text in ("Profile", "Change my password", "Download my data", "Delete my account"):
        assert text in en.text
    assert 'value="架空金属株式会社"' in en.text
    assert 'value="Taro Yamada"' in en.text
    assert f"<strong>{email}</strong>" in en.text
    assert '<input checked id="profile-sector-0"' in en.text


def test_profile_update_saves_and_audits_only_field_names(app, client):
    uid, email = make_user(app)
    log_in(client, email)
    r = client.post("/ja/account/profile", data=_profile_data())
    assert r.status_code == 302
    assert r.headers["Location"] == "/ja/account/profile"
    assert "プロフィールを保存しました。" in client.get("/ja/account/profile").text
    with db_session(app) as s:
        person = s.get(User, uid).person
        assert (person.family_name, person.given_name) == ("佐藤", "次郎")
        assert (person.family_name_kana, person.given_name_kana) == ("サトウ", "じろう")
        assert person.romanized_name == "Jiro Sato"
        assert person.affiliation == "架空大学 金属研究所"
        assert person.sector == Sector.university
        assert person.country == "US"
        assert person.preferred_language == "en"
        [entry] = s.scalars(sa.select(AuditEntry))
        assert (entry.subject_type, entry.subject_id, entry.action) == (
            "person",
            person.id,
            "profile.updated",
        )
        assert entry.data == {
            "fields": [
                "family_name",
                "given_name",
                "family_name_kana",
                "given_name_kana",
                "romanized_name",
                "affiliation",
                "sector",
                "country",
                "preferred_language",
            ]
        }


def test_profile_bad_input_keeps_what_was_typed(app, client):
    uid, email = make_user(app)
    log_in(client, email)
    r = client.post(
        "/en/account/profile",
        data=_profile_data(family_name="", given_name_kana="Jiro", country="XX"),
    )
    assert r.status_code == 400
    assert _errors(r.text) == [
        "Please fill in this field.",
        "Please write the reading in hiragana or katakana.",
        "Please choose a country or region.",
    ]
    assert 'value="次郎"' in r.text
    assert 'value="Jiro"' in r.text
    assert 'value="架空大学 金属研究所"' in r.text
    with db_session(app) as s:
        assert s.get(User, uid).person.family_name == "山田"


# -- email change ----------------------------------------------------------------------------


def test_change_email_needs_the_password_and_the_link_sent_to_the_new_address(app, client):
    uid, email = make_user(app, preferred_language="en")
    log_in(client, email)
    r = client.post(
        "/en/account/profile/email",
        data={"email-email": "new@example.org", "email-password": "wrong password"},
    )
    assert r.status_code == 400
    assert _errors(r.text) == ["The password is not correct."]
    assert 'value="new@example.org"' in r.text
    r = client.post(
        "/en/account/profile/email", data={"email-email": email, "email-password": f.PASSWORD}
    )
    assert _errors(r.text) == ["This is already your email address."]
    assert outbox(app) == []

    r = client.post(
        "/en/account/profile/email",
        data={"email-email": "New@Example.org", "email-password": f.PASSWORD},
    )
    assert r.status_code == 302
    [mail] = outbox(app)
    assert (mail.to_address, mail.template) == ("new@example.org", "accounts/change_email")
    assert mail.subject == "Please confirm your new email address"
    with db_session(app) as s:
        assert s.get(User, uid).email == email  # not switched yet

    r = client.get(link_path(mail.body_text))
    assert r.status_code == 302
    with db_session(app) as s:
        user = s.get(User, uid)
        assert user.email == "new@example.org"
        assert user.person.email == "new@example.org"
        assert user.email_verified_at is not None
    notice = outbox(app, "accounts/email_changed")
    assert [(m.to_address, m.subject) for m in notice] == [
        (email, "Your email address has been changed")
    ]
    assert "new@example.org" in notice[0].body_text
    client.post("/en/account/logout")
    assert log_in(client, email).status_code == 400
    assert log_in(client, "new@example.org").status_code == 302
    # The link is spent: the account no longer has the address it was issued for.
    assert client.get(link_path(mail.body_text)).status_code == 404


def test_change_email_link_only_works_for_its_own_account(app, client):
    _, email = make_user(app)
    _, other_email = make_user(app)
    log_in(client, email)
    client.post(
        "/en/account/profile/email",
        data={"email-email": "new@example.org", "email-password": f.PASSWORD},
    )
    path = link_path(outbox(app)[0].body_text)
    client.post("/en/account/logout")
    # Not logged in: log in first, then come back.
    r = client.get(path)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(
        "/ja/account/login?next=%2Fja%2Faccount%2Fprofile%2Femail%2F"
    )
    # Someone else's session: nothing to see.
    log_in(client, other_email)
    assert client.get(path).status_code == 404
    with db_session(app) as s:
        emails = set(s.scalars(sa.select(User.email)))
    assert emails == {email, other_email}


def test_change_email_to_an_address_taken_meanwhile_is_refused(app, client):
    uid, email = make_user(app, preferred_language="en")
    log_in(client, email)
    client.post(
        "/en/account/profile/email",
        data={"email-email": "taken@example.org", "email-password": f.PASSWORD},
    )
    path = link_path(outbox(app)[0].body_text)
    make_user(app, email="taken@example.org")
    r = client.get(path)
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/account/profile"
    page = client.get("/en/account/profile")
    assert "This email address already belongs to another account." in page.text
    with db_session(app) as s:
        assert s.get(User, uid).email == email


# -- password change -------------------------------------------------------------------------


def test_change_password_needs_the_current_one_and_logs_out_other_sessions(app, client):
    uid, email = make_user(app)
    phone = app.test_client()
    log_in(client, email)
    log_in(phone, email)
    r = client.post(
        "/ja/account/profile/password",
        data={
            "password-current_password": "not my password",
            "password-password": NEW,
            "password-password_confirm": NEW,
        },
    )
    assert r.status_code == 400
    assert _errors(r.text) == ["パスワードが正しくありません。"]
    r = client.post(
        "/ja/account/profile/password",
        data={
            "password-current_password": f.PASSWORD,
            "password-password": "too short",
            "password-password_confirm": "too short",
        },
    )
    assert _errors(r.text) == ["パスワードは10文字以上にしてください。"]
    assert is_logged_in(phone)

    r = client.post(
        "/ja/account/profile/password",
        data={
            "password-current_password": f.PASSWORD,
            "password-password": NEW,
            "password-password_confirm": NEW,
        },
    )
    assert r.status_code == 302
    assert is_logged_in(client)  # this session goes on
    assert not is_logged_in(phone)  # the other one ends
    with db_session(app) as s:
        assert verify_password(s.get(User, uid).password_hash, NEW)
    [mail] = outbox(app)
    assert (mail.to_address, mail.template) == (email, "accounts/password_changed")
    assert mail.subject == "パスワード変更のお知らせ"


# -- personal data ---------------------------------------------------------------------------


class RecorderPlugin:
    """A plugin that stores something about people (registered only in these tests)."""

    name = "recorder"

    def __init__(self):
        self.forgotten: list[tuple[int, str | None, str]] = []

    @hookimpl
    def personal_data(self, person):
        return {"badge": f"B-{person.id}", "printed_at": datetime(2020, 11, 6, 9, 0, tzinfo=UTC)}

    @hookimpl
    def forget_person(self, person):
        self.forgotten.append((person.id, person.email, person.family_name))


def _register(app) -> RecorderPlugin:
    plugin = RecorderPlugin()
    app.extensions["portal_plugins"].register(plugin, name="recorder")
    return plugin


def test_download_my_data_returns_json_about_the_person_only(app, client):
    with db_session(app) as s:
        series = f.series(s)
        me = f.user(
            s,
            email="me@example.org",
            roles=(("organiser", series),),
            romanized_name="Me Myself",
        )
        other = f.user(
            s,
            email="other@example.org",
            family_name="他人",
            romanized_name="Someone Else",
            affiliation="別会社",
        )
        from portal import audit

        audit.record(s, other, "user", other.id, "email.verified")
        audit.record(s, other, "person", other.person.id, "profile.updated", fields=["x"])
        audit.record(s, me, "user", me.id, "email.verified")
        me_id, person_id, series_id = me.id, me.person.id, series.id
    log_in(client, "me@example.org")
    r = client.get("/en/account/profile/data.json")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert r.headers["Content-Disposition"] == 'attachment; filename="my-data.json"'
    data = json.loads(r.text)
    assert data["person"]["id"] == person_id
    assert data["person"]["email"] == "me@example.org"
    assert data["person"]["romanized_name"] == "Me Myself"
    assert data["person"]["sector"] == "company"
    assert data["user"]["id"] == me_id
    assert data["user"]["email"] == "me@example.org"
    assert data["roles"] == [{"role": "organiser", "series_id": series_id}]
    assert [(e["subject"], e["action"], e["by_self"]) for e in data["audit"]] == [
        (f"user:{me_id}", "email.verified", True)
    ]
    for text in ("other@example.org", "他人", "Someone Else", "別会社"):
        assert text not in r.text


def test_hook_personal_data_results_are_placed_under_the_plugin_name(app, client):
    _register(app)
    uid, email = make_user(app)
    with db_session(app) as s:
        pid = s.get(User, uid).person_id
    log_in(client, email)
    data = client.get("/en/account/profile/data.json").get_json()
    assert data["plugins"]["recorder"] == {
        "badge": f"B-{pid}",
        "printed_at": "2020-11-06T09:00:00+00:00",
    }


def test_nothing_of_another_person_is_visible(app, client):
    _, email = make_user(app)
    _, other_email = make_user(
        app, family_name="他人", given_name="花子", romanized_name="Hanako Tanin"
    )
    log_in(client, email)
    for path in ("/en/account/profile", "/ja/account/profile", "/en/account/profile/data.json"):
        text = client.get(path).text
        for secret in (other_email, "他人", "Hanako Tanin"):
            assert secret not in text, (path, secret)


# -- deleting the account --------------------------------------------------------------------


def test_delete_account_needs_the_password(app, client):
    uid, email = make_user(app)
    log_in(client, email)
    r = client.post("/ja/account/profile/delete", data={"delete-password": "not it"})
    assert r.status_code == 400
    assert _errors(r.text) == ["パスワードが正しくありません。"]
    assert is_logged_in(client)
    with db_session(app) as s:
        assert s.get(User, uid) is not None


def test_delete_account_anonymises_the_person_and_logs_out(app, client):
    with db_session(app) as s:
        series = f.series(s)
        user = f.user(
            s,
            email="leaving@example.org",
            roles=(("reviewer", series),),
            sector=Sector.university,
            country="US",
        )
        uid, pid = user.id, user.person.id
        from portal import audit

        audit.record(s, user, "person", pid, "profile.updated", fields=["affiliation"])
    _register(app)
    log_in(client, "leaving@example.org", "wrong password")  # a failed attempt is stored
    log_in(client, "leaving@example.org")
    client.post("/en/account/password/forgot", data={"email": "leaving@example.org"})
    r = client.post("/en/account/profile/delete", data={"delete-password": f.PASSWORD})
    assert r.status_code == 302
    assert r.headers["Location"] == "/en/"
    assert "Your account has been deleted." in client.get("/en/").text
    assert not is_logged_in(client)
    with db_session(app) as s:
        assert s.get(User, uid) is None
        assert s.scalar(sa.select(sa.func.count(UserRole.id))) == 0
        person = s.get(Person, pid)
        assert (
            person.family_name,
            person.given_name,
            person.family_name_kana,
            person.given_name_kana,
            person.romanized_name,
            person.affiliation,
            person.email,
        ) == ("", "", "", "", "", "", None)
        assert person.sector == Sector.university
        assert person.country == "US"
        assert person.anonymised_at is not None
        assert s.scalar(sa.select(sa.func.count(LoginAttempt.id))) == 0
        assert s.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 0
        entries = list(s.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)))
        last = entries[-1]
        assert (last.actor_id, last.subject_type, last.subject_id, last.action, last.data) == (
            None,
            "person",
            pid,
            "account.deleted",
            {},
        )
        # Entries the person made no longer point at the deleted account.
        assert {e.actor_id for e in entries} == {None}
        assert s.scalar(sa.select(sa.func.count(User.id))) == 0
    assert log_in(client, "leaving@example.org").status_code == 400


def test_hook_forget_person_is_called_before_the_person_is_anonymised(app, client):
    plugin = _register(app)
    uid, email = make_user(app, family_name="消去")
    with db_session(app) as s:
        pid = s.get(User, uid).person_id
    log_in(client, email)
    client.post("/en/account/profile/delete", data={"delete-password": f.PASSWORD})
    assert plugin.forgotten == [(pid, email, "消去")]
