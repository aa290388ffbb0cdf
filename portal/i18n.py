"""Languages: which one a visitor reads, bilingual text, and dates, money and names.

Fallback order for bilingual text (written down once, used everywhere):
the reader's language, then the given default (usually the series' default language),
then whichever language has a value. An empty string counts as missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import g, has_request_context, request
from flask_babel import get_locale

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"


def other_language(lang: str) -> str:
    return "en" if lang == "ja" else "ja"


def current_language() -> str:
    """The language of the page being rendered (or of an email being written)."""
    from flask.globals import _cv_app

    ctx = _cv_app.get(None)  # flask-babel's locale of the request, without its lookups
    babel_ctx = ctx.g.__dict__.get("_flask_babel") if ctx is not None else None
    locale = getattr(babel_ctx, "babel_locale", None) or get_locale()
    lang = locale.language if locale is not None else DEFAULT_LANGUAGE
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def select_locale() -> str:
    """flask-babel's locale selector: URL prefix, then the user's choice, then the browser."""
    if "lang_code" in g:
        return g.lang_code
    from flask_login import current_user

    if getattr(current_user, "is_authenticated", False):
        preferred = getattr(current_user, "preferred_language", None)
        if preferred in LANGUAGES:
            return preferred
    if has_request_context():
        return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class BilingualText:
    """One text in Japanese and English, as users enter it (titles, descriptions, bios)."""

    ja: str = ""
    en: str = ""

    def get(self, lang: str | None = None, default: str | None = None) -> str:
        return self.resolve(lang, default)[1]

    def resolve(self, lang: str | None = None, default: str | None = None) -> tuple[str, str]:
        """``(language, text)`` shown for a reader of ``lang``: their language, else
        ``default``, else the first language that has text (the language is ``lang`` when
        neither has any)."""
        lang = lang or current_language()
        for candidate in (lang, default, *LANGUAGES):
            if candidate in LANGUAGES and getattr(self, candidate):
                return candidate, getattr(self, candidate)
        return lang, ""

    def has(self, lang: str) -> bool:
        return bool(getattr(self, lang, ""))

    def __str__(self) -> str:
        return self.get()

    def __bool__(self) -> bool:
        return bool(self.ja or self.en)

    def as_dict(self) -> dict[str, str]:
        return {"ja": self.ja, "en": self.en}

    @classmethod
    def of(cls, value) -> BilingualText:
        if isinstance(value, BilingualText):
            return value
        if isinstance(value, dict):
            return cls(ja=value.get("ja") or "", en=value.get("en") or "")
        if value is None:
            return cls()
        return cls(ja=str(value), en=str(value))


class Bilingual(sa.TypeDecorator):
    """Column type storing a BilingualText as JSON ``{"ja": ..., "en": ...}``."""

    impl = sa.JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return BilingualText.of(value).as_dict()

    def process_result_value(self, value, dialect):
        return None if value is None else BilingualText.of(value)


# -- dates and times -------------------------------------------------------------------------
# The portal's dates and times use fixed patterns (Babel's "y年M月d日(E)" in Japanese, "EEEE d
# MMMM y" in British English, "HH:mm"), so they are written from the names below rather than
# through Babel: Babel's locale data (global.dat, root and ja: about 5 MB in every worker)
# then loads only where a page needs more (another zone's name, another currency).
# tests/test_i18n_formats.py checks every day and minute against Babel's output.

JA_WEEKDAYS = ("月", "火", "水", "木", "金", "土", "日")  # Babel's ja "E", Monday first
EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _locale(lang: str | None) -> str:
    return lang or current_language()


def _ja_date(value, weekday: bool = True) -> str:
    text = f"{value.year}年{value.month}月{value.day}日"
    return f"{text}({JA_WEEKDAYS[value.weekday()]})" if weekday else text


def _en_date(value, weekday: bool = True) -> str:
    text = f"{value.day} {EN_MONTHS[value.month - 1]} {value.year}"
    return f"{EN_WEEKDAYS[value.weekday()]} {text}" if weekday else text


def _hh_mm(value: datetime) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def format_date(value: datetime, tz: str | None = None, lang: str | None = None) -> str:
    """2020年11月6日(金) / Friday 6 November 2020, in the given time zone."""
    if value is None:
        return ""
    if tz and isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(tz))
    lang = _locale(lang)
    if lang == "ja":
        return _ja_date(value)
    return _en_date(value)


def format_short_date(value: datetime, tz: str | None = None, lang: str | None = None) -> str:
    """2020年11月6日 / 6 November 2020."""
    if value is None:
        return ""
    if tz and isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(tz))
    lang = _locale(lang)
    if lang == "ja":
        return _ja_date(value, weekday=False)
    return _en_date(value, weekday=False)


def format_time(value: datetime, tz: str | None = None, lang: str | None = None) -> str:
    """13:30 with the zone's abbreviation where it helps (JST, EST)."""
    if value is None:
        return ""
    zone = ZoneInfo(tz) if tz else None
    if zone:
        value = value.astimezone(zone)
    return _hh_mm(value)


def format_datetime(value: datetime, tz: str | None = None, lang: str | None = None) -> str:
    """2026年12月5日(土) 15:24 / 5 December 2026, 15:24 JST, in the given zone.

    Japanese text names the zone only when it is not Japan's (e.g. （米国東部時間））."""
    if value is None:
        return ""
    zone = ZoneInfo(tz) if tz else None
    if zone:
        value = value.astimezone(zone)
    lang = _locale(lang)
    if lang == "ja":
        text = f"{_ja_date(value)} {_hh_mm(value)}"
        if zone and tz not in JAPAN_ZONES:
            text += f"（{format_zone(tz, 'ja', value)}）"
        return text
    text = f"{_en_date(value, weekday=False)}, {_hh_mm(value)}"
    if zone:
        text += " " + format_zone(tz, "en", value)
    return text


def format_deadline(value: datetime, tz: str | None = None, lang: str | None = None) -> str:
    """A deadline on its own: 2026年12月5日(土) 15:24まで / until 5 December 2026, 15:24 JST."""
    if value is None:
        return ""
    lang = _locale(lang)
    text = format_datetime(value, tz, lang)
    return f"{text}まで" if lang == "ja" else f"until {text}"


JAPAN_ZONES = {"Asia/Tokyo", "Japan"}


def zone_suffix(tz: str | None, at: datetime | None = None, lang: str | None = None) -> str:
    """The zone after a time: （日本時間） in Japanese, " (JST)" in English."""
    if not tz:
        return ""
    lang = _locale(lang)
    name = format_zone(tz, lang, at)
    return f"（{name}）" if lang == "ja" else f" ({name})"


def label(text) -> str:
    """A label before its value: 「会場：」 in Japanese (full-width colon), "Venue: " in English."""
    return f"{text}：" if current_language() == "ja" else f"{text}: "


def format_zone(tz: str | None, lang: str | None = None, at: datetime | None = None) -> str:
    """The zone as people say it: 日本時間 / JST; elsewhere the zone's name in Japanese
    (アメリカ東部標準時) or its abbreviation in English (EST), never "Asia/Tokyo"."""
    if not tz:
        return ""
    lang = _locale(lang)
    if tz in JAPAN_ZONES:
        return "日本時間" if lang == "ja" else "JST"
    from babel.dates import get_timezone_name

    moment = (at or datetime.now(ZoneInfo(tz))).astimezone(ZoneInfo(tz))
    if lang == "ja":
        return get_timezone_name(moment, width="long", locale="ja")
    return moment.tzname() or tz


# -- money -----------------------------------------------------------------------------------


# The portal's currencies without Babel's global data; any other one asks Babel.
MINOR_UNITS = {"JPY": 0, "USD": 2}
SYMBOLS = {"JPY": "¥", "USD": "$"}  # Babel's in ja_JP and en_US (its ja_JP "￥" written "¥")


def minor_units(currency: str) -> int:
    """Digits after the decimal point: JPY 0, USD 2."""
    currency = currency.upper()
    if currency in MINOR_UNITS:
        return MINOR_UNITS[currency]
    from babel.numbers import get_currency_precision

    return get_currency_precision(currency)


def to_minor(amount: Decimal | int | str, currency: str) -> int:
    return int((Decimal(str(amount)) * (10 ** minor_units(currency))).to_integral_value())


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount) / (10 ** minor_units(currency))


def format_money(amount_minor: int, currency: str, lang: str | None = None) -> str:
    """¥5,000 / $250.00 — amounts are integer minor units (JPY has none)."""
    return _money(amount_minor, currency.upper(), _locale(lang))


@lru_cache(maxsize=4096)
def _money(amount_minor: int, currency: str, lang: str) -> str:
    # Babel parses the currency pattern on every call; lists repeat the same few amounts.
    if currency in SYMBOLS:  # Babel's "¤#,##0.00" in ja_JP and en_US, "-" before the sign
        sign = "-" if amount_minor < 0 else ""
        digits = MINOR_UNITS[currency]
        whole, cents = divmod(abs(amount_minor), 10**digits)
        text = f"{sign}{SYMBOLS[currency]}{whole:,}"
        return f"{text}.{cents:0{digits}d}" if digits else text
    from babel.numbers import format_currency

    value = from_minor(amount_minor, currency)
    locale = "ja_JP" if lang == "ja" else "en_US"
    text = format_currency(value, currency, locale=locale)
    return text.replace("￥", "¥")


# -- personal names --------------------------------------------------------------------------


def format_person_name(person, lang: str | None = None) -> str:
    """Family name first in Japanese (山田 太郎); the romanised name in English (Taro Yamada)."""
    if person is None:
        return ""
    lang = _locale(lang)
    native = " ".join(p for p in (person.family_name, person.given_name) if p)
    if lang == "ja" and _is_japanese_script(native):
        return native
    return person.romanized_name or native


def _is_japanese_script(text: str) -> bool:
    """Kanji or kana in the name: written family name first; otherwise the romanised form."""
    return any(
        "\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"
        for ch in text
    )
