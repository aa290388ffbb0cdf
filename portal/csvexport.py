"""CSV exports that Excel opens correctly with Japanese text, and that never run a formula.

UTF-8 with a byte-order mark (Excel reads UTF-8 only with it), CRLF line ends, and every text
cell that a spreadsheet would take for a formula (starting with = + - @ tab or CR) prefixed
with an apostrophe, so a name typed as ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from flask import Response

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
