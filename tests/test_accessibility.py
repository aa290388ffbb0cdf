"""Accessibility in the rendered HTML (docs/accessibility.md): one <h1>, a skip link, errors
tied to their fields with one alert per page, no empty table header, lang="ja" on Japanese
text shown on an English page, and the colours' contrast. Chromium and axe-core check the
same pages in tests/browser/test_accessibility.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from portal.db import db
from portal.i18n import BilingualText
from portal.registration.models import FeeCategory
from tests import factories as f

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts + [c.text for c in self.children]).split()).strip()


class Page(HTMLParser):
    """The page as a tree of elements (enough for these checks)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.all: list[Node] = []
        self._open = self.root
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v or "") for k, v in attrs}, self._open)
        self._open.children.append(node)
        self.all.append(node)
        if tag not in VOID:
            self._open = node

    def handle_endtag(self, tag):
        node = self._open
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self._open = node.parent

    def handle_data(self, data):
        self._open.text_parts.append(data)

    def find(self, tag: str | None = None, **attrs) -> list[Node]:
        return [
            n
            for n in self.all
            if (tag is None or n.tag == tag)
            and all(n.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())
        ]

    def by_id(self, ident: str) -> Node | None:
        found = [n for n in self.all if n.attrs.get("id") == ident]
        return found[0] if found else None


def descendants(node: Node) -> list[Node]:
    found = []
    for child in node.children:
        found.append(child)
        found.extend(descendants(child))
    return found


def login(client, app, user_id: int) -> None:
    from portal.accounts.models import User

    with app.app_context():
        stamp = db.session.get(User, user_id).get_id()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = stamp
        flask_session["_fresh"] = True


@pytest.fixture
def world(app):
    with app.app_context():
        s = db.session
        series = f.series(s, "workshop")
        event = f.event(
            s,
            series,
            title=BilingualText(ja="反応性金属ワークショップ", en="Reactive Metal Workshop"),
        )
        f.talk(s, event, title=BilingualText(ja="チタン粉末の電解製錬"), language="ja")
        f.talk(s, event, title=BilingualText(en="Scandium recovery"), language="en", position=2)
        s.add(
            FeeCategory(
                event_id=event.id,
                code="general",
                name=BilingualText(ja="一般", en="General"),
                price_minor=25000,
            )
        )
        f.enable(s, event, "bank_transfer", bank_account="見本銀行 駒場支店 普通 1234567")
        organiser = f.user(s, email="office@example.org", roles=(("organiser", series),))
        member = f.user(s, email="member@example.org")
        s.commit()
        return {"slug": event.slug, "organiser": organiser.id, "member": member.id}


def test_every_page_has_one_h1_and_a_translated_skip_link(app, client, world):
    slug = world["slug"]
    public = ["/", f"/events/{slug}/", f"/events/{slug}/programme/", "/account/login"]
    for lang, skip in (("ja", "本文へ移動"), ("en", "Skip to main content")):
        for path in public:
            r = client.get(f"/{lang}{path}")
            assert r.status_code == 200, path
            page = Page(r.text)
            assert len(page.find("h1")) == 1, f"{lang}{path}: {[h.text for h in page.find('h1')]}"
            links = page.find("a", class_="skip-link")
            assert [(a.attrs["href"], a.text) for a in links] == [("#main", skip)]
            # The skip link is the first link of the page; its target is the <main>.
            assert page.find("a")[0] is links[0]
            assert page.by_id("main").tag == "main"
    login(client, app, world["organiser"])
    for path in (
        "/organiser/",
        f"/organiser/events/{slug}/",
        f"/organiser/events/{slug}/registrations/",
        f"/organiser/events/{slug}/payments/",
        f"/organiser/events/{slug}/registrations/fees/",
    ):
        for lang in ("ja", "en"):
            r = client.get(f"/{lang}{path}")
            assert r.status_code == 200, path
            page = Page(r.text)
            assert len(page.find("h1")) == 1, f"{lang}{path}"
            # No empty table header: every <th> has text (visually hidden where it must).
            assert [th for th in page.find("th") if not th.text] == [], f"{lang}{path}"
            if path.endswith(("/registrations/", "/payments/")):
                # The organiser lists turn into cards on phones (portal.css, portal.js).
                tables = [t for t in page.find("table") if "responsive" in t.attrs.get("class", "")]
                assert tables, f"{lang}{path}"


def test_invalid_fields_name_their_errors_and_the_page_has_one_alert(client):
    r = client.post(
        "/ja/account/signup",
        data={"email": "not-an-address", "password": "short", "family_name": "佐藤"},
    )
    assert r.status_code == 400
    page = Page(r.text)
    alerts = page.find(role="alert")
    assert len(alerts) == 1
    summary = alerts[0]
    assert summary.attrs["id"] == "error-summary"
    assert summary.text.startswith("下記の印の付いた項目を修正してください。")
    email = page.by_id("email")
    assert email.attrs["aria-invalid"] == "true"
    assert email.attrs["aria-describedby"] == "email-error"
    assert "メールアドレス" in page.by_id("email-error").text
    assert page.by_id("email-error").attrs.get("role") is None  # not an alert of its own
    # The summary links to each invalid field.
    targets = [n.attrs["href"] for n in descendants(summary) if n.tag == "a"]
    assert "#email" in targets and "#given_name" in targets
    assert all(page.by_id(t[1:]) is not None for t in targets)
    # A valid field is not marked.
    family = page.by_id("family_name")
    assert "aria-invalid" not in family.attrs
    assert family.attrs["value"] == "佐藤"
    # The radio group's inputs name the group's error text.
    sector = [n for n in page.find("input") if n.attrs.get("name") == "sector"]
    assert sector and all(n.attrs.get("aria-invalid") == "true" for n in sector)
    assert page.by_id(sector[0].attrs["aria-describedby"]).text


def test_help_text_and_error_are_both_described(app, client, world):
    login(client, app, world["member"])
    r = client.post(f"/en/events/{world['slug']}/register", data={"attendance_mode": "onsite"})
    assert r.status_code == 400
    page = Page(r.text)
    assert len(page.find(role="alert")) == 1
    invalid = [n for n in page.all if n.attrs.get("aria-invalid") == "true"]
    assert invalid
    for node in invalid:
        for ident in node.attrs["aria-describedby"].split():
            assert page.by_id(ident) is not None and page.by_id(ident).text


def test_text_in_the_other_language_is_marked(client, world):
    en = Page(client.get(f"/en/events/{world['slug']}/").text)
    titles = {n.text: n for n in en.find("strong", class_="talk-title")}
    japanese = titles["チタン粉末の電解製錬"]
    assert [(c.tag, c.attrs) for c in japanese.children] == [("span", {"lang": "ja"})]
    assert titles["Scandium recovery"].children == []  # in the page's language: no mark
    ja = Page(client.get(f"/ja/events/{world['slug']}/").text)
    titles = {n.text: n for n in ja.find("strong", class_="talk-title")}
    assert [(c.tag, c.attrs) for c in titles["Scandium recovery"].children] == [
        ("span", {"lang": "en"})
    ]
    assert titles["チタン粉末の電解製錬"].children == []


def test_tr_lang_filter(app):
    from flask_babel import force_locale

    from portal.templating import tr_lang

    with app.test_request_context("/en/"), force_locale("en"):
        assert str(tr_lang(BilingualText(ja="研究会", en="Meeting"))) == "Meeting"
        assert str(tr_lang(BilingualText(ja="研究会<"))) == '<span lang="ja">研究会&lt;</span>'
        # The written fallback order: the series' language before the other one.
        assert str(tr_lang(BilingualText(ja="", en=""), "ja")) == ""
        assert str(tr_lang(None)) == ""
    with app.test_request_context("/ja/"), force_locale("ja"):
        assert str(tr_lang(BilingualText(en="Meeting"))) == '<span lang="en">Meeting</span>'
        assert str(tr_lang(BilingualText(ja="研究会", en="Meeting"))) == "研究会"


# -- colours --------------------------------------------------------------------------------

CSS = Path(__file__).resolve().parent.parent / "portal" / "static" / "portal.css"


def _luminance(colour: str) -> float:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)
    channels = [int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _rules() -> dict[str, dict[str, str]]:
    css = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    variables = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", css))
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        props = {}
        for name, value in re.findall(r"([\w-]+)\s*:\s*([^;]+)", body):
            value = re.sub(
                r"var\(--([\w-]+)\)", lambda m: variables.get(m.group(1), m.group(0)), value
            )
            props[name] = value.strip()
        for selector in selectors.split(","):
            rules.setdefault(selector.strip(), {}).update(props)
    return rules


def test_badges_text_and_input_borders_have_enough_contrast():
    rules = _rules()
    badge = rules[".badge"]
    assert contrast(badge["color"], badge["background"]) >= 4.5
    for selector, props in rules.items():
        if "badge" in selector and "color" in props:
            background = props.get("background", badge["background"])
            assert contrast(props["color"], background) >= 4.5, selector
    # Form controls: the border against the white field and the page background.
    border = re.search(r"#[0-9a-fA-F]{6}", rules["select"]["border-color"] + " ")
    assert border is None or contrast(border.group(0), "#ffffff") >= 3
    root = rules[":root"]
    assert contrast(root["--control"], "#ffffff") >= 3
    assert contrast(root["--control"], root["--bg"]) >= 3
    assert contrast(root["--muted"], "#ffffff") >= 4.5
    assert contrast(root["--muted"], root["--bg"]) >= 4.5
    field = next(v for k, v in rules.items() if k.startswith(".field input[type=text]"))
    assert field["border"].endswith(root["--control"])
    # Focus is visible.
    assert rules[":focus-visible"]["outline"].startswith("3px solid")
