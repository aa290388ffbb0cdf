"""CSV exports that Excel opens correctly with Japanese text, and that never run a formula.

UTF-8 with a byte-order mark (Excel reads UTF-8 only with it), CRLF line ends, and every text
cell that a spreadsheet would take for a formula (starting with = + - @ tab or CR) prefixed
with an apostrophe, so a name typed as ``=HYPERLINK(...)`` stays text.

``csv_response`` builds the file in memory (small tables); ``csv_stream_response`` sends the
rows as they come from a generator (``yield_per`` queries), in constant memory, for exports
whose size grows with the history (speakers, members, registrations).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from flask import Response, stream_with_context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A value as a CSV cell: None becomes empty, formula-like text is kept as text."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Iterable[Iterable]) -> str:
    """Rows (the header first) as CSV text with a BOM; every cell made safe."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue()


def csv_response(rows: Iterable[Iterable], filename: str) -> Response:
    """A download of the rows as ``filename`` (ASCII file names only)."""
    return Response(
        csv_text(rows).encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


STREAM_CHUNK = 64 * 1024  # characters gathered before a piece of the answer is sent


def csv_chunks(rows: Iterable[Iterable]) -> Iterator[str]:
    """The same text as ``csv_text``, in pieces of about ``STREAM_CHUNK`` characters."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        if out.tell() >= STREAM_CHUNK:
            yield out.getvalue()
            out.seek(0)
            out.truncate(0)
    rest = out.getvalue()
    if rest:
        yield rest


def csv_stream_response(rows: Iterable[Iterable], filename: str) -> Response:
    """A download streamed from ``rows`` (a generator: the header first), never held whole.

    The generator runs while the answer is sent, inside the request's context (its database
    session stays open until the last row).
    """
    body = (chunk.encode("utf-8") for chunk in csv_chunks(rows))
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
