"""The portal stands on its own: its history file is in the repository, and a new installation
creates its first administrator with ``portal users create-admin``."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from portal.accounts.models import User
from portal.config import ROOT
from portal.db import db
from portal.mail.models import OutboxEmail

REPO = Path(ROOT)


def test_history_file_is_in_the_repository_and_shipped():
    from portal import demo

    path = Path(demo.ATTENDANCE_CSV).resolve()
    assert path.is_relative_to(REPO.resolve())
    assert path.exists()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 24  # the header and meetings 1–10, 81–93
    assert lines[0].startswith("meeting_no,date,mailing_list,participants,")
    assert "data/*.csv" in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_nothing_reads_outside_the_repository():
    pattern = re.compile(r"""ROOT\.parent|["'/]shared/domain|\.\./shared""")
    offenders = []
    for folder in ("portal", "plugins", "tests", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "test_standalone.py":
                continue
            if pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_demo_loads_the_whole_history(app, session):
    from portal.demo import load_demo
    from portal.events.models import Event

    load_demo(session)
    session.commit()
    numbers = set(session.scalars(sa.select(Event.number).where(Event.slug.like("study-group-%"))))
    assert set(range(1, 11)) | set(range(81, 95)) <= numbers  # 94: the next meeting


def test_create_admin_asks_for_the_password(app, runner):
    result = runner.invoke(
        args=["users", "create-admin", "Chief@Example.org"],
        input="a long password\na long password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created the administrator chief@example.org." in result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "chief@example.org"))
        assert user.is_admin and user.is_verified
    r = app.test_client().post(
        "/en/account/login", data={"email": "chief@example.org", "password": "a long password"}
    )
    assert r.status_code == 302


def test_create_admin_rejects_a_short_password(app, runner):
    result = runner.invoke(args=["users", "create-admin", "x@example.org"], input="short\nshort\n")
    assert result.exit_code == 1
    assert "The password must have 10 to 1000 characters." in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_create_admin_sends_a_set_password_link(app, runner):
    result = runner.invoke(args=["users", "create-admin", "boss@example.org", "--send-link"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "boss@example.org"))
        assert user.is_admin
        mails = db.session.scalars(sa.select(OutboxEmail)).all()
        assert [m.to_address for m in mails] == ["boss@example.org"]
        assert mails[0].template == "accounts/reset_password"
        assert "/ja/account/" in mails[0].body_text


def test_create_admin_promotes_an_existing_account(app, runner):
    from tests import factories as f

    with app.app_context():
        f.user(db.session, email="member@example.org")
        db.session.commit()
    result = runner.invoke(args=["users", "create-admin", "member@example.org", "--send-link"])
    assert result.exit_code == 0, result.output
    assert "Made the existing account an administrator: member@example.org." in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(User.is_admin).where(User.email == "member@example.org"))
