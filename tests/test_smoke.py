from tests import factories as f


def test_home_lists_upcoming_event_in_both_languages(app, client):
    with app.app_context():
        from portal.db import db

        e = f.event(db.session)
        db.session.commit()
        slug = e.slug
    ja = client.get("/ja/")
    en = client.get("/en/")
    assert ja.status_code == 200 and en.status_code == 200
    assert f"/ja/events/{slug}/" in ja.text
    assert "研究会" in ja.text
    assert "Meeting" in en.text


def test_root_redirects_to_browser_language(client):
    r = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/en/")
    r = client.get("/", headers={"Accept-Language": "ja,en;q=0.5"})
    assert r.headers["Location"].endswith("/ja/")
