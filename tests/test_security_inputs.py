"""No input makes a server error (issue #12).

A property-based walk (Hypothesis) over every route of ``app.url_map``: hostile path parts,
query strings and form bodies (Unicode digits, huge numbers, NUL, right-to-left marks, emoji,
half-width katakana, 100,000-character strings, lists and files where text is expected), as
a visitor, a participant and an organiser, on the demo data. Whatever comes in, the answer is
below 500. The examples are derandomised and bounded, so the walk is the same on every run
and takes about a minute.
"""

from __future__ import annotations

import io
import os
import re
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from portal.accounts.models import User
from portal.db import db
from portal.demo import load_demo
from portal.events.models import Event, Series, Talk
from portal.params import MAX_ID, int_or_none
from portal.registration.models import Registration, RegistrationState
from tests import factories as f

ROOT = Path(__file__).resolve().parent.parent
# Bounded for `make test`; PORTAL_FUZZ_EXAMPLES=50 walks further (about ten times longer).
EXAMPLES_PER_ROUTE = int(os.environ.get("PORTAL_FUZZ_EXAMPLES") or 6)

HOSTILE = [
    "²",
    "١٢",  # Arabic-Indic digits: int() takes them, the database does not expect them
    "９９",  # full-width digits
    "99999999999999999999999",
    str(2**31),
    str(2**63),
    "-1",
    "0",
    "1e5",
    "0x10",
    "1.5",
    "\x00",
    "1\x00",
    "\u202e1\u202c",  # right-to-left override
    "\u200f",
    "😀",
    "ｶﾀｶﾅ",
    "x" * 100_000,
    "",
    " ",
    "%",
    "'; drop table people; --",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "true",
    "null",
    "[]",
    "https://evil.example/",
    "//evil.example",
]


def _names_in_source() -> list[str]:
    """Query and form argument names the code reads, and the forms' field names."""
    names: set[str] = set()
    patterns = (
        re.compile(r"request\.(?:args|values|form|files)\.get(?:list)?\(\s*\"(\w+)\""),
        re.compile(r"int_arg\(\s*\"(\w+)\""),
        re.compile(r"page_number\(\s*\"(\w+)\""),
        re.compile(r"^\s+(\w+)\s*=\s*\w*(?:Field|FieldList)\(", re.MULTILINE),
    )
    for folder in ("portal", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in patterns:
                names.update(pattern.findall(text))
    return sorted(names | {"page", "next", "q", "action", "csrf_token"})


NAMES = _names_in_source()


def hostile_text():
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.text(max_size=12),
    )


def form_value():
    return st.one_of(
        hostile_text(),
        st.lists(hostile_text(), min_size=2, max_size=3),  # a list where one value is expected
        st.builds(lambda: (io.BytesIO(b"%PDF-1.4 not really"), "x.pdf")),  # a file
    )


@pytest.fixture
def walk_world(app):
    """The demo data, a participant with a registration, and the people to log in."""
    with app.app_context():
        load_demo(db.session)
        study = db.session.scalar(sa.select(Series).order_by(Series.id))
        event = db.session.scalar(
            sa.select(Event).where(Event.series_id == study.id).order_by(Event.id.desc())
        )
        participant = f.user(db.session, email="participant@example.org")
        db.session.add(
            Registration(
                event_id=event.id,
                person_id=participant.person_id,
                user_id=participant.id,
                state=RegistrationState.confirmed,
                attendance_mode=event.attendance_modes[0],
                currency=study.currency,
            )
        )
        db.session.commit()
        organiser = db.session.scalar(sa.select(User).where(User.email == "organiser@example.org"))
        values = {
            "slug": sorted(
                {s for s in db.session.scalars(sa.select(Event.slug))}
                | {s for s in db.session.scalars(sa.select(Series.slug))}
            ),
            "talk_id": [str(i) for i in db.session.scalars(sa.select(Talk.id).limit(3))],
        }
        logins = {
            "anonymous": None,
            "participant": participant.get_id(),
            "organiser": organiser.get_id(),
        }
    return logins, values


def _path(rule, drawn: dict) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: quote(drawn[m.group(1)], safe=""), rule.rule)


def _walker(rule, clients, values):
    """The Hypothesis test of one route."""
    methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})

    def argument(name: str, converter) -> st.SearchStrategy:
        if name == "lang_code":
            return st.sampled_from(["ja", "en", "ja", "xx", "😀"])
        known = values.get(name, [])
        if type(converter).__name__ == "BoundedIntConverter":
            known = known or ["1", "2", "3"]
            return st.one_of(
                st.sampled_from(known),
                st.sampled_from(["0", str(MAX_ID), str(2**31), "9" * 30]),
            )
        if known:
            return st.one_of(st.sampled_from(known), hostile_text())
        return hostile_text()

    path_args = st.fixed_dictionaries(
        {name: argument(name, conv) for name, conv in rule._converters.items()}
    )

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        derandomize=True,
        deadline=None,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(
        role=st.sampled_from(sorted(clients)),
        method=st.sampled_from(methods),
        drawn=path_args,
        query=st.dictionaries(st.sampled_from(NAMES), hostile_text(), max_size=4),
        form=st.dictionaries(st.sampled_from(NAMES), form_value(), max_size=5),
    )
    def walk(role, method, drawn, query, form):
        path = _path(rule, drawn)
        body = form if method in ("POST", "PUT", "PATCH", "DELETE") else None
        response = clients[role].open(path, method=method, query_string=query, data=body)
        assert response.status_code < 500, (role, method, path, query, body)

    return walk


def test_every_route_answers_hostile_input_without_a_server_error(app, walk_world):
    logins, values = walk_world
    clients = {}
    for role, stamp in logins.items():
        client = app.test_client()
        if stamp is not None:
            with client.session_transaction() as flask_session:
                flask_session["_user_id"] = stamp
                flask_session["_fresh"] = True
        clients[role] = client
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
    failures: list[str] = []

    for rule in rules:
        walk = _walker(rule, clients, values)
        try:
            walk()
        except AssertionError as error:
            failures.append(f"{rule.rule}: {str(error)[:600]}")
        except Exception as error:  # an exception escaping the app is a server error too
            where = traceback.format_exc(limit=-3).replace("\n", " | ")[-900:]
            failures.append(f"{rule.rule}: {type(error).__name__}: {str(error)[:300]} at {where}")
    assert not failures, "\n".join(failures)


# -- the values the issue names, one by one ---------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "١٢", "９", "99999999999999999999999", "-1", "1.0", "\x00"])
def test_int_or_none_takes_only_plain_digits_in_range(raw):
    assert int_or_none(raw) is None


def test_int_or_none_takes_plain_numbers():
    assert [int_or_none(v) for v in ("0", " 42 ", str(MAX_ID), 7)] == [0, 42, MAX_ID, 7]
    assert int_or_none("5", minimum=6) is None


@pytest.mark.parametrize(
    "url, code",
    [
        ("/en/my/registrations/?page=²", 400),
        ("/en/my/registrations/?page=99999999999999999999999", 400),
        ("/en/my/registrations/?page=0", 400),
        ("/en/my/registrations/99999999999999999999999/", 404),
        ("/en/my/registrations/²/", 404),
        (f"/en/speakers/{2**31}/", 404),
        ("/en/speakers/%D9%A1/", 404),  # an Arabic-Indic digit in the path
    ],
)
def test_bad_numbers_are_400_or_404_with_a_message(app, client, url, code):
    with app.app_context():
        user = f.user(db.session)
        db.session.commit()
        stamp = user.get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
    response = client.get(url)
    assert response.status_code == code
    if code == 400:
        assert "“page” must be a whole number in the allowed range." in response.text


def test_bad_query_numbers_of_the_issue_answer_a_clear_400(app, client):
    with app.app_context():
        load_demo(db.session)
        db.session.commit()
        slug = db.session.scalar(sa.select(Series.slug).order_by(Series.id))
    for url, name in (
        (f"/ja/series/{slug}/archive/?speaker=²", "speaker"),
        (f"/ja/series/{slug}/archive/?speaker=99999999999999999999999", "speaker"),
        (f"/ja/series/{slug}/archive/?page=²", "page"),
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert (
            f"「{name}」には、許される範囲の整数（半角数字）を指定してください。" in response.text
        )
    # An out-of-range year is ignored: the archive as a whole.
    assert client.get(f"/ja/series/{slug}/archive/?year=²").status_code == 200


@pytest.mark.parametrize(
    "method,path,query,form",
    [
        ("GET", "/en/events/1%00/register", {}, None),
        ("GET", "/en/speakers/", {"q": "yamada\x00"}, None),
        ("POST", "/en/account/login", {}, {"email": "a@example.org\x00", "password": "x"}),
    ],
)
def test_a_nul_character_is_refused_with_a_translated_400(app, method, path, query, form):
    """PostgreSQL refuses U+0000 in any text parameter: it never reaches a query."""
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    response = client.open(path, method=method, query_string=query, data=form)
    assert response.status_code == 400
    assert "NUL character" in response.text
    japanese = client.open(
        path.replace("/en/", "/ja/"), method=method, query_string=query, data=form
    )
    assert japanese.status_code == 400
    assert "NUL文字" in japanese.text
