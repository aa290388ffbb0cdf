"""Dates, times and money written without Babel's locale data read exactly as Babel writes them.

``portal/i18n.py`` formats its fixed patterns (and yen and dollar amounts) from a few names,
so a worker serving pages never loads Babel's locale data (about 5 MB); Babel is the
reference here, for every day of eleven years, every minute of a day and a range of amounts.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.dates import format_time as babel_time
from babel.numbers import format_currency, get_currency_precision

from portal import i18n

DAYS = [
    date(2020, 1, 1) + timedelta(days=n) for n in range((date(2031, 1, 1) - date(2020, 1, 1)).days)
]
TOKYO = ZoneInfo("Asia/Tokyo")


def test_every_day_reads_as_babel_writes_it():
    for day in DAYS:
        assert i18n.format_date(day, lang="ja") == babel_date(day, "y年M月d日(E)", locale="ja")
        assert i18n.format_date(day, lang="en") == babel_date(day, "EEEE d MMMM y", locale="en_GB")
        assert i18n.format_short_date(day, lang="ja") == babel_date(day, "y年M月d日", locale="ja")
        assert i18n.format_short_date(day, lang="en") == babel_date(day, "d MMMM y", locale="en_GB")


def test_every_minute_and_a_year_of_datetimes_read_as_babel_writes_them():
    start = datetime(2026, 1, 1, tzinfo=TOKYO)
    for minute in range(24 * 60):
        moment = start + timedelta(minutes=minute)
        for lang in ("ja", "en"):
            assert i18n.format_time(moment, lang=lang) == babel_time(moment, "HH:mm", locale=lang)
    for hours in range(0, 366 * 24, 7):
        moment = start + timedelta(hours=hours, minutes=hours % 60)
        assert i18n.format_datetime(moment, "Asia/Tokyo", "ja") == babel_datetime(
            moment, "y年M月d日(E) HH:mm", locale="ja"
        )
        assert i18n.format_datetime(moment, "Asia/Tokyo", "en") == (
            babel_datetime(moment, "d MMMM y, HH:mm", locale="en_GB") + " JST"
        )


def test_the_zone_of_a_datetime_is_applied_before_it_is_written():
    moment = datetime(2026, 12, 5, 6, 24, tzinfo=ZoneInfo("UTC"))
    assert i18n.format_datetime(moment, "Asia/Tokyo", "ja") == "2026年12月5日(土) 15:24"
    assert i18n.format_datetime(moment, "Asia/Tokyo", "en") == "5 December 2026, 15:24 JST"
    assert i18n.format_date(moment, "America/New_York", "en") == "Saturday 5 December 2026"
    assert i18n.format_time(moment, "America/New_York", "en") == "01:24"
    assert i18n.format_deadline(moment, "Asia/Tokyo", "ja") == "2026年12月5日(土) 15:24まで"


AMOUNTS = [0, 1, -1, 5, 99, 100, 101, 999, 1000, 5000, -5000, 123456, 1234567, -1234567, 10**10]


@pytest.mark.parametrize("currency", ["JPY", "USD"])
@pytest.mark.parametrize(("lang", "locale"), [("ja", "ja_JP"), ("en", "en_US")])
def test_yen_and_dollar_amounts_read_as_babel_writes_them(currency, lang, locale):
    assert i18n.minor_units(currency) == get_currency_precision(currency)
    assert i18n.minor_units(currency.lower()) == get_currency_precision(currency)
    for amount in AMOUNTS + list(range(-250, 250, 7)):
        value = i18n.from_minor(amount, currency)
        expected = format_currency(value, currency, locale=locale).replace("￥", "¥")
        assert i18n.format_money(amount, currency, lang) == expected


def test_other_currencies_still_go_through_babel():
    assert i18n.minor_units("EUR") == 2
    assert i18n.minor_units("KWD") == 3
    assert i18n.format_money(123456, "EUR", "en") == "€1,234.56"
    assert i18n.format_money(123456, "KWD", "ja") == format_currency(
        i18n.from_minor(123456, "KWD"), "KWD", locale="ja_JP"
    )
