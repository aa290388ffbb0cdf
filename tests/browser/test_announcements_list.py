"""The list in a real browser (CSRF on): join from the series page, confirm from the email,
receive an announcement, leave from the link in it without logging in."""

from __future__ import annotations

import re

from tests import factories as f


def test_join_confirm_receive_and_leave(page, live_server, smtp_server):
    import sqlalchemy as sa

    from portal.announcements import sending
    from portal.announcements.models import Announcement, Subscription, SubscriptionStatus
    from portal.db import db
    from portal.i18n import BilingualText
    from portal.mail.services import send_due

    app = live_server.app
    with app.app_context():
        f.series(db.session, slug="study")
        db.session.commit()
    page.goto(live_server.url + "/ja/series/study/")
    page.get_by_role("link", name="ご案内メールを受け取る").click()
    page.get_by_label("メールアドレス").fill("reader@example.org")
    page.get_by_label("英語").check()
    page.get_by_role("button", name="案内メールに登録する").click()
    assert "reader@example.org にメールをお送りしました" in page.content()
    with app.app_context():
        send_due(db.session)
    [mail] = smtp_server.messages
    link = re.search(
        r"http://\S+/announcements/confirm/\S+", mail.get_body(("plain",)).get_content()
    )
    page.goto(link.group(0))
    page.get_by_role("button", name="Confirm").click()
    assert "You are on the list" in page.content()

    with app.app_context():
        series_id = db.session.scalar(sa.select(Subscription.series_id))
        a = Announcement(
            series_id=series_id,
            subject=BilingualText(ja="第94回のご案内", en="The 94th meeting"),
            body=BilingualText(ja="ご案内", en="**Welcome** to the 94th meeting."),
        )
        db.session.add(a)
        db.session.commit()
        sending.queue(db.session, a, None)
        db.session.commit()
        sending.prepare_due(db.session)
        assert sending.send_due(db.session).sent == 1
    announcement = smtp_server.messages[-1]
    assert announcement["Subject"] == "The 94th meeting"
    view = re.search(
        r"http://\S+/announcements/view/\S+", announcement.get_body(("plain",)).get_content()
    )
    page.goto(view.group(0))
    assert page.locator("strong").filter(has_text="Welcome").count() == 1
    leave = announcement["List-Unsubscribe"].strip("<>")
    page.goto(leave)
    page.get_by_role("button", name="Leave the list").click()
    assert "You have left the list" in page.content()
    with app.app_context():
        sub = db.session.scalar(sa.select(Subscription))
        assert sub.status == SubscriptionStatus.left
