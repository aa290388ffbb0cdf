"""Archive files: checked by content, their text read for search, stored under random names.

- The type comes from the first bytes, never from the name: ``%PDF-`` (PDF), a ZIP holding
  ``[Content_Types].xml`` and ``ppt/`` parts (PowerPoint .pptx), the PNG signature, or a JPEG
  start of image. A text file renamed ``.pdf`` is refused.
- The size limit is the event's plugin setting ``max_file_mb`` (default 50).
- Text: pypdf reads the text of a PDF's pages; a .pptx's slides are read from their XML
  (``<a:t>`` runs). The text is folded for search by ``fold``: NFKC (full-width letters become
  ordinary ones), lower case, and no white space at all (so that a Japanese word broken across
  lines is still found); a query is folded the same way, piece by piece.
- Files live in ``UPLOAD_FOLDER/archive/`` under a random name with the type's extension and
  are only ever served through the checked view.
"""

from __future__ import annotations

import html
import io
import logging
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l

from plugins.archive.models import FileType
from portal.errors import UserError

SUBFOLDER = "archive"
MAX_TEXT = 500_000  # characters of slide text kept per file
MAX_PAGES = 500

MIMETYPES = {
    FileType.pdf: "application/pdf",
    FileType.pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    FileType.png: "image/png",
    FileType.jpeg: "image/jpeg",
}
EXTENSIONS = {FileType.pdf: "pdf", FileType.pptx: "pptx", FileType.png: "png", FileType.jpeg: "jpg"}

log = logging.getLogger(__name__)


class FileCheckError(UserError):
    """A file that cannot be archived; ``message`` is translated for the form."""


@dataclass(frozen=True)
class CheckedFile:
    data: bytes
    file_type: FileType
    text: str


def fold(text: str | None) -> str:
    """NFKC, lower case, no white space: how slide text is stored and queries are compared."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return "".join(text.split())


def too_large(limit_mb: float):
    return FileCheckError(
        _l(
            "The file is too large. Please choose a file of at most %(size)s MB.",
            size=f"{limit_mb:g}",
        )
    )


def read_upload(storage, limit_bytes: int, limit_mb: float) -> bytes:
    """The uploaded bytes; too large or empty → FileCheckError."""
    data = storage.stream.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise too_large(limit_mb)
    if not data:
        raise FileCheckError(_l("The file is empty."))
    return data


def _is_pptx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("ppt/") for n in names)


def detect(data: bytes) -> FileType | None:
    if data.startswith(b"%PDF-"):
        return FileType.pdf
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType.png
    if data.startswith(b"\xff\xd8\xff"):
        return FileType.jpeg
    if data.startswith(b"PK\x03\x04") and _is_pptx(data):
        return FileType.pptx
    return None


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:  # noqa: BLE001 - an encrypted PDF we cannot read: no text
                return ""
        parts: list[str] = []
        length = 0
        for page in reader.pages[:MAX_PAGES]:
            try:
                text = page.extract_text() or ""
            except Exception as exc:  # noqa: BLE001 - one bad page does not spoil the rest
                log.info("archive: no text from a PDF page: %s", exc)
                continue
            parts.append(text)
            length += len(text)
            if length > MAX_TEXT:
                break
        return "\n".join(parts)[:MAX_TEXT]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FileCheckError(_l("This PDF file is damaged and cannot be read.")) from exc


_RUN = re.compile(rb"<a:t>([^<]*)</a:t>")
_SLIDE = re.compile(r"^ppt/slides/slide(\d+)\.xml$")


def pptx_text(data: bytes) -> str:
    parts: list[str] = []
    length = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        slides = sorted(
            (int(m[1]), name) for name in archive.namelist() if (m := _SLIDE.match(name))
        )
        for _number, name in slides[:MAX_PAGES]:
            info = archive.getinfo(name)
            if info.file_size > 20 * 1024 * 1024:
                continue
            xml = archive.read(name)
            text = " ".join(
                html.unescape(run.decode("utf-8", "replace")) for run in _RUN.findall(xml)
            )
            parts.append(text)
            length += len(text)
            if length > MAX_TEXT:
                break
    return "\n".join(parts)[:MAX_TEXT]


def check(data: bytes) -> CheckedFile:
    file_type = detect(data)
    if file_type is None:
        raise FileCheckError(
            _l(
                "This file is not a PDF, PowerPoint (.pptx), PNG or JPEG file. Please check the file."
            )
        )
    text = ""
    if file_type == FileType.pdf:
        text = pdf_text(data)
    elif file_type == FileType.pptx:
        text = pptx_text(data)
    return CheckedFile(data=data, file_type=file_type, text=text)


def folder() -> Path:
    path = Path(current_app.config["UPLOAD_FOLDER"]) / SUBFOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def store(checked: CheckedFile) -> str:
    """Write the file under a fresh random name; returns the name."""
    name = f"{secrets.token_hex(16)}.{EXTENSIONS[checked.file_type]}"
    target = folder() / name
    tmp = target.with_suffix(".part")
    tmp.write_bytes(checked.data)
    tmp.replace(target)
    return name


def path_of(stored_name: str) -> Path:
    return folder() / Path(stored_name).name


def remove(stored_name: str | None) -> None:
    if stored_name:
        path_of(stored_name).unlink(missing_ok=True)
