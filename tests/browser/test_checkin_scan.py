"""The check-in scanner in Chromium: a ticket's QR code is shown to the fake camera (a .y4m
video made from the ticket's QR image); the page turns green, then amber on the next scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories as f
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, watch_context


def write_y4m(image, path: Path, frames: int = 2) -> None:
    """A still image as a short YUV4MPEG2 (4:2:0) video, which Chromium's fake camera loops."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    ycbcr = rgb.convert("YCbCr")
    y, cb, cr = ycbcr.split()
    half = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(planes)


def qr_frame(token: str):
    """The ticket's QR code (as on the PDF) centred on a 640×480 grey frame."""
    from io import BytesIO

    from PIL import Image

    from portal.tickets.pdf import qr_png

    code = Image.open(BytesIO(qr_png(token, scale=8))).convert("RGB")
    side = min(400, code.width)
    code = code.resize((side, side), Image.NEAREST)
    frame = Image.new("RGB", (640, 480), (200, 200, 200))
    frame.paste(code, ((640 - side) // 2, (480 - side) // 2))
    return frame


@pytest.fixture
def day(live_server):
    from portal.db import db
    from portal.registration import services as registrations
    from portal.tickets import services as tickets

    with live_server.app.app_context():
        s = db.session
        series = f.series(s)
        event = f.event(s, series)
        organiser = f.user(s, email="desk@example.org", roles=(("organiser", series),))
        person = f.person(s, family_name="佐藤", given_name="花子", romanized_name="Hanako Sato")
        registration = registrations.register(
            s, event, person, mode="onsite", privacy_accepted=True
        )
        s.commit()
        return {
            "slug": event.slug,
            "token": tickets.current_ticket(s, registration).token,
            "email": organiser.email,
        }


@pytest.fixture
def camera_page(playwright, live_server, day, tmp_path, axe_recorder):
    video = tmp_path / "ticket.y4m"
    write_y4m(qr_frame(day["token"]), video)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    watch_context(context, axe_recorder)
    context.grant_permissions(["camera"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
    browser.close()


def test_scan_from_the_camera_green_then_amber(camera_page, live_server, day):
    page = camera_page
    page.goto(f"{live_server.url}/en/account/login")
    page.get_by_label("Email").fill(day["email"])
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/en/organiser/events/{day['slug']}/check-in/")
    result = page.locator("#checkin-result")
    result.and_(page.locator('[data-colour="green"]')).wait_for()
    assert result.locator(".headline").inner_text() == "Checked in"
    assert result.locator(".name").inner_text().startswith("Hanako Sato")
    onsite = page.locator('#checkin-counts [data-count="checked_in"][data-mode="onsite"]')
    assert onsite.inner_text() == "1"
    # The code stays in front of the camera: a few seconds later it is read again → amber.
    result.and_(page.locator('[data-colour="amber"]')).wait_for()
    assert result.locator(".headline").inner_text() == "Already checked in"
    assert "Already checked in at" in result.locator(".detail").inner_text()
    assert onsite.inner_text() == "1"
