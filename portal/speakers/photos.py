"""Speaker photos: checked by content, re-encoded, stored under a random name.

The upload is opened with Pillow (not trusted by its name or type), must be JPEG, PNG or
WebP and at most ``MAX_PHOTO_BYTES``; it is turned the right way up, flattened onto white,
scaled to at most ``MAX_SIDE`` pixels, and saved as a fresh JPEG, which carries no metadata
(no EXIF, no GPS position, no comments). Files live under ``speakers/`` in the file storage
(``portal/storage.py``: the local ``UPLOAD_FOLDER`` or S3).
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from portal import storage
from portal.errors import UserError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_SIDE = 800
MAX_PIXELS = 40_000_000  # refuse "decompression bombs" before decoding them
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
SUBFOLDER = "speakers"


class PhotoError(UserError):
    """A photo that cannot be used; ``message`` is translated for the form's ``photo`` field."""

    default_field = "photo"


@dataclass(frozen=True)
class Photo:
    data: bytes
    width: int
    height: int


def read_upload(storage, limit: int = MAX_PHOTO_BYTES) -> bytes | None:
    """The bytes of an uploaded file (None when no file was chosen); too large → PhotoError."""
    if storage is None or not getattr(storage, "filename", ""):
        return None
    data = storage.stream.read(limit + 1)
    if len(data) > limit:
        raise PhotoError(
            _l("The photo is too large. Please choose a file of at most %(size)s MB.", size=5)
        )
    if not data:
        raise PhotoError(_l("The photo file is empty."))
    return data


def process(data: bytes) -> Photo:
    """Check the content and re-encode as a JPEG of at most MAX_SIDE pixels, no metadata."""
    # Pillow loads with the first photo (about 2.5 MB a worker serving pages never needs).
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoError(
            _l("The photo is too large. Please choose a file of at most %(size)s MB.", size=5)
        )
    not_an_image = PhotoError(_l("This file is not a JPEG, PNG or WebP image."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ALLOWED_FORMATS:
                raise not_an_image
            if probe.width * probe.height > MAX_PIXELS:
                raise PhotoError(_l("The photo has too many pixels."))
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except PhotoError:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise not_an_image from exc

    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    else:
        image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    # A new image holds pixels only: nothing of the original's metadata goes along.
    clean = Image.new("RGB", image.size)
    clean.paste(image)
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=85, optimize=True)
    return Photo(data=out.getvalue(), width=clean.width, height=clean.height)


def key_of(name: str | None) -> str | None:
    """The photo's key in the file storage (None for a name that is not one of ours)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    return f"{SUBFOLDER}/{name}"


def store(session, photo: Photo) -> str:
    """Write the photo under a random name (removed again on rollback); returns the name."""
    name = f"{secrets.token_hex(16)}.jpg"
    storage.save(session, key_of(name), photo.data, "image/jpeg")
    return name


def send(name: str | None, **kwargs):
    """The stored photo as a response, or None when there is none."""
    key = key_of(name)
    return storage.storage().send(key, "image/jpeg", **kwargs) if key else None


def remove_after_commit(session, name: str | None) -> None:
    key = key_of(name)
    if key:
        storage.remove_after_commit(session, key)
