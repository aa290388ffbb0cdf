"""Small text rules shared by every area: folding for search, LIKE patterns, yes/no words.

- ``fold(text)``: NFKC (full-width letters and half-width kana become ordinary ones), lower
  case, katakana folded to hiragana, accents dropped from Latin letters (Ō → o).
- ``compact(text)``: ``fold`` without white space (山田 太郎 → 山田太郎).
- ``like_pattern(term)``: ``%term%`` with ``%``, ``_`` and ``\\`` escaped; use it with
  ``column.like(pattern, escape=LIKE_ESCAPE)`` (or ``ilike``), never an f-string.
- ``truthy(value)``: a checkbox, a CSV cell, a setting or an environment variable read as
  yes/no: ``True``, 1 and "1", "y", "yes", "on", "true" (any case, spaces around) are yes.
"""

from __future__ import annotations

import unicodedata

LIKE_ESCAPE = "\\"
TRUE_WORDS = frozenset({"1", "y", "yes", "on", "true"})


def _fold_char(ch: str) -> str:
    code = ord(ch)
    if 0x30A1 <= code <= 0x30F6:  # katakana ァ..ヶ → hiragana ぁ..ゖ
        return chr(code - 0x60)
    if 0x80 <= code < 0x250:  # Latin letters with accents: keep the base letter
        return "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return ch


def fold(text: str | None) -> str:
    """NFKC, lower case, katakana → hiragana, Latin accents dropped."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(_fold_char(ch) for ch in text)


def compact(text: str | None) -> str:
    """``fold`` without any white space: 山田 太郎 → 山田太郎, Taro Yamada → taroyamada."""
    return "".join(fold(text).split())


def escape_like(term: str) -> str:
    """``term`` with the LIKE wildcards and the escape character escaped."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_pattern(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere, wildcards in it taken literally."""
    return f"%{escape_like(term)}%"


def truthy(value) -> bool:
    """Yes or no from a form, a CSV cell, stored settings or the environment."""
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    if value is None:
        return False
    return value is True or str(value).strip().lower() in TRUE_WORDS
