"""The rate-limit counters (portal/ratelimit.py): the settings' strings, fixed windows in
memory and in Redis, and the email forms counted in memory while Redis is down."""

from __future__ import annotations

import pytest
import redis

from portal import ratelimit
from portal.app import create_app
from portal.ratelimit import Limit, MemoryCounts, RateLimits, RedisCounts, parse
from tests.conftest import free_port
from tests.test_security_limits import redis_url  # noqa: F401  (the module's Redis server)


@pytest.mark.parametrize(
    "text, limit",
    [
        ("30 per 5 minutes", Limit(30, 300)),
        ("10 per 15 minutes", Limit(10, 900)),
        ("100000 per 1 minute", Limit(100000, 60)),
        ("5 per 300 seconds", Limit(5, 300)),
        ("10/hour", Limit(10, 3600)),
        ("2 per day", Limit(2, 86400)),
        ("1 per month", Limit(1, 30 * 86400)),
        ("7 per 2 years", Limit(7, 2 * 360 * 86400)),
        ("4 PER 3 Hours", Limit(4, 10800)),
    ],
)
def test_limits_are_read_as_the_limits_library_reads_them(text, limit):
    assert parse(text) == limit


@pytest.mark.parametrize("text", ["", "30", "thirty per minute", "5 per 0 minutes", "5 per week"])
def test_a_string_that_is_no_limit_is_refused(text):
    with pytest.raises(ValueError):
        parse(text)


def test_a_mistyped_limit_setting_stops_the_start(app_config):
    with pytest.raises(ValueError, match="PORTAL_LOGIN_ADDRESS_RATE_LIMIT"):
        create_app(dict(app_config, LOGIN_ADDRESS_RATE_LIMIT="30 a minute"))


def test_an_unsupported_storage_stops_the_start(app_config):
    with pytest.raises(ValueError, match="memcached:// is not supported"):
        create_app(dict(app_config, RATELIMIT_STORAGE_URL="memcached://127.0.0.1:11211"))


def test_a_window_in_memory_starts_at_its_first_hit_and_ends_after_its_length(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    limits = RateLimits("memory://")
    two = Limit(2, 60)
    assert [limits.hit(two, "a") for _ in range(3)] == [True, True, False]
    assert limits.hit(two, "b")  # another key has its own count
    now[0] += 59.9
    assert not limits.hit(two, "a")
    now[0] += 0.2  # 60.1 s after the first hit
    assert [limits.hit(two, "a") for _ in range(3)] == [True, True, False]
    limits.clear(two, "a")
    assert limits.hit(two, "a")


def test_expired_counts_in_memory_are_dropped(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    counts = MemoryCounts()
    counts.PRUNE_AT = 3
    counts._prune_at = 3
    for key in "abc":
        counts.incr(key, 10)
    now[0] = 11.0
    counts.incr("d", 10)
    assert sorted(counts._counts) == ["d"]


def test_counts_in_redis_expire_with_their_window(redis_url):  # noqa: F811
    limits = RateLimits(redis_url)
    three = Limit(3, 60)
    identifiers = ("test", f"window-{free_port()}")
    assert [limits.hit(three, *identifiers) for _ in range(4)] == [True, True, True, False]
    client = redis.Redis.from_url(redis_url)
    key = three.key(*identifiers)
    assert int(client.get(key)) == 4
    assert 58 <= client.ttl(key) <= 60  # set by the first hit, not moved by the others
    limits.clear(three, *identifiers)
    assert client.exists(key) == 0
    client.close()


def test_log_in_counts_let_through_and_form_counts_fall_back_while_redis_is_down(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    limits = RateLimits(f"redis://127.0.0.1:{free_port()}/0")
    assert isinstance(limits.storage, RedisCounts)
    one = Limit(1, 900)
    with pytest.raises(redis.ConnectionError):
        limits.hit(one, "login-account", "a@example.org")
    assert [limits.hit(one, "form", fallback=True) for _ in range(2)] == [True, False]
    now[0] += RateLimits.RETRY_SECONDS + 1  # Redis is tried again, still down: memory counts
    assert not limits.hit(one, "form", fallback=True)


def test_email_forms_count_in_memory_while_redis_is_down(app_config, app):
    config = dict(
        app_config,
        RATELIMIT_STORAGE_URL=f"redis://127.0.0.1:{free_port()}/0",
        EMAIL_FORM_RATE_LIMIT="2 per 15 minutes",
    )
    down = create_app(config)
    try:
        client = down.test_client()
        codes = [
            client.post("/en/account/password/forgot", data={"email": f"z{n}@example.org"})
            for n in range(3)
        ]
    finally:
        down.extensions["portal_db"]["engine"].dispose()
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert "Too many attempts. Please wait a few minutes and try again." in codes[2].text


def test_the_email_form_limit_is_counted_before_log_in_is_required(app, client):
    app.config.update(EMAIL_FORM_RATE_LIMIT="1 per 15 minutes")
    first = client.post("/en/account/verify/resend")
    assert first.status_code == 302  # to the log-in page
    assert client.post("/en/account/verify/resend").status_code == 429


def test_rate_limits_off_count_nothing(app, client):
    app.config.update(EMAIL_FORM_RATE_LIMIT="1 per 15 minutes", RATELIMIT_ENABLED=False)
    codes = [
        client.post("/en/account/password/forgot", data={"email": "q@example.org"}).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 200]
