"""Speaker photos: checked by content, size-limited, re-encoded without metadata, served safely."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from portal.speakers import photos, services
from tests import test_speakers_support as support
from tests.test_speakers_organiser import FORM
from tests.test_speakers_support import (
    ctx,
    image_bytes,
    login,
    organiser,
    speaker,
)


@pytest.fixture
def dbs(app):
    """A database session outside the app context (see tests/test_speakers_support.py)."""
    yield from support.open_session(app)


def _exif_with_gps() -> bytes:
    image = Image.new("RGB", (1600, 1200), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCamera"  # Make
    exif[0x8825] = {1: "N", 2: (35.0, 39.0, 0.0)}  # GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"private comment")
    return out.getvalue()


def test_process_reencodes_scales_and_strips_metadata():
    original = _exif_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get(0x010F) == "SecretCamera"
    photo = photos.process(original)
    result = Image.open(io.BytesIO(photo.data))
    assert result.format == "JPEG"
    assert (photo.width, photo.height) == (800, 600) == result.size
    assert dict(result.getexif()) == {}
    assert "comment" not in result.info and "exif" not in result.info
    assert b"SecretCamera" not in photo.data and b"private comment" not in photo.data


def test_process_accepts_png_with_transparency_and_webp():
    png = photos.process(image_bytes("PNG", (300, 200), mode="RGBA"))
    assert (png.width, png.height) == (300, 200)
    assert Image.open(io.BytesIO(png.data)).mode == "RGB"
    webp = photos.process(image_bytes("WEBP", (1000, 2000)))
    assert (webp.width, webp.height) == (400, 800)


def test_process_refuses_other_content():
    cases = [
        b"This is a text file renamed photo.jpg\n",
        image_bytes("GIF", (10, 10)),
        image_bytes("PNG")[:200],  # a broken image
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
    ]
    for data in cases:
        try:
            photos.process(data)
        except photos.PhotoError as exc:
            assert str(exc) == "This file is not a JPEG, PNG or WebP image."
        else:
            raise AssertionError(data[:20])
    try:
        photos.process(b"\xff" * (photos.MAX_PHOTO_BYTES + 1))
    except photos.PhotoError as exc:
        assert str(exc) == "The photo is too large. Please choose a file of at most 5 MB."
    else:
        raise AssertionError("too large")


def test_upload_stores_under_random_name_and_serves_safely(app, client, dbs):
    profile = speaker(dbs, consent=True)
    login(client, organiser(dbs))
    dbs.commit()
    data = dict(FORM, photo=(io.BytesIO(image_bytes("PNG")), "me.png"))
    response = client.post(
        f"/en/organiser/speakers/{profile.person_id}/edit",
        data=data,
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    dbs.commit()
    saved = services.get_profile(dbs, profile.person_id)
    assert saved.photo_filename.endswith(".jpg") and len(saved.photo_filename) == 36
    assert (saved.photo_width, saved.photo_height) == (800, 600)
    stored = Path(app.config["UPLOAD_FOLDER"]) / "speakers" / saved.photo_filename
    assert stored.is_file()
    assert saved.photo_size == stored.stat().st_size

    served = app.test_client().get(f"/en/speakers/{profile.person_id}/photo")  # the public
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.data == stored.read_bytes()


def test_unpublished_photo_only_for_organisers_and_the_speaker(app, client, dbs):
    profile = speaker(dbs, consent=False)
    with ctx(app):
        services.update_speaker(
            dbs, profile.person, {}, organiser(dbs), photo=image_bytes("JPEG", (100, 100))
        )
    admin = organiser(dbs)
    dbs.commit()
    url = f"/ja/speakers/{profile.person_id}/photo"
    assert client.get(url).status_code == 404
    assert "/photo" not in client.get(f"/ja/speakers/{profile.person_id}/").text
    login(client, admin)
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"


def test_bad_file_gets_a_translated_message_and_the_form_is_kept(app, client, dbs):
    profile = speaker(dbs)
    login(client, organiser(dbs))
    dbs.commit()
    for lang, message in (
        ("en", "This file is not a JPEG, PNG or WebP image."),
        ("ja", "JPEG、PNG、WebP の画像ではありません。"),
    ):
        data = dict(FORM, photo=(io.BytesIO(b"just text"), "photo.jpg"))
        response = client.post(
            f"/{lang}/organiser/speakers/{profile.person_id}/edit",
            data=data,
            content_type="multipart/form-data",
        )
        assert response.status_code == 400
        assert message in response.text
        assert 'value="Ken Sato"' in response.text
        assert "A self-introduction." in response.text
    dbs.commit()
    assert services.get_profile(dbs, profile.person_id).photo_filename is None
    assert profile.person.romanized_name != "Ken Sato"  # nothing was saved


def test_too_large_file_gets_a_message(app, client, dbs):
    profile = speaker(dbs)
    login(client, organiser(dbs))
    dbs.commit()
    big = io.BytesIO(b"\x89PNG" + b"\0" * (photos.MAX_PHOTO_BYTES + 10))
    response = client.post(
        f"/en/organiser/speakers/{profile.person_id}/edit",
        data=dict(FORM, photo=(big, "big.png")),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "The photo is too large. Please choose a file of at most 5 MB." in response.text
    assert 'value="Ken Sato"' in response.text


def test_replaced_photo_file_is_removed_after_commit(app, dbs):
    profile = speaker(dbs)
    admin = organiser(dbs)
    folder = Path(app.config["UPLOAD_FOLDER"]) / "speakers"
    with ctx(app):
        services.update_speaker(dbs, profile.person, {}, admin, photo=image_bytes("PNG"))
    dbs.commit()
    first = folder / profile.photo_filename
    assert first.is_file()
    with ctx(app):
        services.update_speaker(dbs, profile.person, {}, admin, photo=image_bytes("JPEG"))
    assert first.is_file()  # still there until the change is committed
    dbs.commit()
    assert not first.exists()
    second = folder / profile.photo_filename
    assert second.is_file()
    with ctx(app):
        services.update_speaker(dbs, profile.person, {}, admin, photo=image_bytes("PNG"))
    third = sorted(folder.iterdir())
    dbs.rollback()
    assert sorted(folder.iterdir()) == [second]
    assert len(third) == 2
