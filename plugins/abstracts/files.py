"""Attached PDFs: checked by content, stored under a random name, removed with the change.

An upload is accepted when it is at most ``MAX_PDF_BYTES``, starts with ``%PDF-`` and pypdf
can open it and count its pages (password-protected files are refused: reviewers could not
read them). Files live in ``UPLOAD_FOLDER/abstracts/``. A replaced file is removed once the
change is committed; a new file is removed again if the change is rolled back.
"""

from __future__ import annotations

import io
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal.errors import UserError

MAX_PDF_BYTES = 10 * 1024 * 1024
SUBFOLDER = "abstracts"
_REMOVE = "abstracts_pdf_remove"
_ADDED = "abstracts_pdf_added"


class PdfError(UserError):
    """A file that cannot be attached; ``message`` is translated for the form."""


@dataclass(frozen=True)
class PdfUpload:
    data: bytes
    filename: str
    pages: int


def folder() -> Path:
    path = Path(current_app.config["UPLOAD_FOLDER"]) / SUBFOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def path_of(name: str) -> Path:
    return folder() / Path(name).name


def check_pdf(data: bytes, filename: str = "") -> PdfUpload:
    """The upload if it is a readable PDF of at most 10 MB; PdfError otherwise."""
    if len(data) > MAX_PDF_BYTES:
        raise PdfError(_l("The PDF is too large. Please attach a file of at most 10 MB."))
    if not data:
        raise PdfError(_l("The file is empty."))
    if not data.startswith(b"%PDF-"):
        raise PdfError(_l("This file is not a PDF. Please attach a PDF file."))
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise PdfError(_l("The PDF is protected by a password. Please attach it unprotected."))
        pages = len(reader.pages)
    except PdfError:
        raise
    except (
        PyPdfError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OSError,
        RecursionError,
    ) as error:
        raise PdfError(
            _l("The PDF could not be read. Please check the file and attach it again.")
        ) from error
    if pages < 1:
        raise PdfError(_l("The PDF has no pages."))
    clean_name = Path(filename or "abstract.pdf").name[:200] or "abstract.pdf"
    return PdfUpload(data=data, filename=clean_name, pages=pages)


def read_upload(storage) -> PdfUpload | None:
    """The checked PDF from a form's file field (None when no file was chosen)."""
    if storage is None or not getattr(storage, "filename", ""):
        return None
    data = storage.stream.read(MAX_PDF_BYTES + 1)
    return check_pdf(data, storage.filename)


def store(session: Session, upload: PdfUpload) -> str:
    """Write the file under a random name; removed again if the change is rolled back."""
    name = f"{secrets.token_hex(16)}.pdf"
    path = path_of(name)
    path.write_bytes(upload.data)
    session.info.setdefault(_ADDED, []).append(path)
    return name


def remove_after_commit(session: Session, name: str | None) -> None:
    if name:
        session.info.setdefault(_REMOVE, []).append(path_of(name))


@sa.event.listens_for(Session, "after_commit")
def _committed(session):
    session.info.pop(_ADDED, None)
    for path in session.info.pop(_REMOVE, []):
        path.unlink(missing_ok=True)


@sa.event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session, _previous_transaction):
    session.info.pop(_REMOVE, None)
    for path in session.info.pop(_ADDED, []):
        path.unlink(missing_ok=True)
