"""Fixed-window rate-limit counters: in this process (``memory://``) or in Redis, shared by
every worker and machine (``redis://``, ``rediss://``, ``unix://``).

``portal/security.py`` decides what is counted (log-ins, email-sending forms); this module only
counts. A count is one atomic increment that also answers whether the limit is passed, so
parallel requests cannot slip past it: the first hit of a window starts it (the key expires
after the window), like the "fixed-window" strategy of the ``limits`` library that
Flask-Limiter used here before. This module replaces Flask-Limiter, ``limits``, ``wrapt`` and
``deprecated`` (about 2 MB in every worker, docs/performance.md); redis-py is imported only
when a Redis storage is configured.

Limits are written as in the settings: ``"30 per 5 minutes"``, ``"10/hour"``, ``"5 per 300
seconds"``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

# As the ``limits`` library counts them (a month is 30 days, a year 12 months).
_UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "month": 30 * 86400,
    "year": 12 * 30 * 86400,
}
_LIMIT = re.compile(
    r"^\s*(\d+)\s*(?:/|\s+per\s+)\s*(\d+)?\s*(second|minute|hour|day|month|year)s?\s*$",
    re.IGNORECASE,
)
KEY_PREFIX = "portal:ratelimit"

logger = logging.getLogger("portal.security")


@dataclass(frozen=True)
class Limit:
    amount: int
    seconds: int

    def key(self, *identifiers: str) -> str:
        """The counter's key: the limit itself is part of it, so changing the setting starts
        new counts."""
        return "/".join((KEY_PREFIX, *identifiers, f"{self.amount}-per-{self.seconds}s"))


def parse(text: str) -> Limit:
    """``"30 per 5 minutes"`` → ``Limit(30, 300)``; a ValueError for anything else."""
    match = _LIMIT.match(text or "")
    if match is None:
        raise ValueError(f"not a rate limit: {text!r} (e.g. '30 per 5 minutes')")
    amount, multiple, unit = match.groups()
    seconds = int(multiple or 1) * _UNIT_SECONDS[unit.lower()]
    if seconds <= 0:
        raise ValueError(f"not a rate limit: {text!r} (an empty window)")
    return Limit(int(amount), seconds)


class MemoryCounts:
    """Counters of this process (``memory://``: ``make run``, tests, the fallback while Redis
    is down)."""

    PRUNE_AT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list] = {}  # key -> [count, expires at (monotonic)]
        self._prune_at = self.PRUNE_AT

    def incr(self, key: str, seconds: int) -> int:
        now = time.monotonic()
        with self._lock:
            entry = self._counts.get(key)
            if entry is None or entry[1] <= now:
                if len(self._counts) >= self._prune_at:
                    self._prune(now)
                entry = self._counts[key] = [0, now + seconds]
            entry[0] += 1
            return entry[0]

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def _prune(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        self._prune_at = max(self.PRUNE_AT, 2 * len(self._counts))


# Increment; the first increment of a window sets its expiry. One script: atomic.
_INCR = """
local count = redis.call('incr', KEYS[1])
if count == 1 then
    redis.call('expire', KEYS[1], ARGV[1])
end
return count
"""


class RedisCounts:
    """Counters in Redis, shared by every worker and machine. Connects on first use."""

    TIMEOUT_SECONDS = 2.0

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = None
        self._incr = None

    def _connect(self):
        if self._client is None:
            import redis

            client = redis.Redis.from_url(
                self.url,
                socket_connect_timeout=self.TIMEOUT_SECONDS,
                socket_timeout=self.TIMEOUT_SECONDS,
            )
            self._incr = client.register_script(_INCR)
            self._client = client
        return self._client

    def incr(self, key: str, seconds: int) -> int:
        self._connect()
        return int(self._incr(keys=[key], args=[seconds]))

    def clear(self, key: str) -> None:
        self._connect().delete(key)


def storage_for(url: str) -> MemoryCounts | RedisCounts:
    """The counters of a ``RATELIMIT_STORAGE_URL``; a ValueError for a kind not supported."""
    if not url or url.startswith("memory://"):
        return MemoryCounts()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounts(url)
    raise ValueError(
        f"PORTAL_RATELIMIT_STORAGE_URL: {url.split('://')[0]}:// is not supported "
        "(memory://, redis://, rediss://, unix://)"
    )


class RateLimits:
    """One app's counters: its storage, and counters in memory for the counts that carry on
    while the storage (Redis) is down (``hit(..., fallback=True)``)."""

    RETRY_SECONDS = 10.0  # after a storage error, the fallback counts this long before retrying

    def __init__(self, url: str) -> None:
        self.storage = storage_for(url)
        self.fallback = self.storage if isinstance(self.storage, MemoryCounts) else MemoryCounts()
        self._down_until = 0.0

    def hit(self, limit: Limit, *identifiers: str, fallback: bool = False) -> bool:
        """Count one hit; False when the limit is passed. When the storage fails, the error
        propagates, unless ``fallback``: then this process's memory counts meanwhile."""
        key = limit.key(*identifiers)
        if fallback and time.monotonic() < self._down_until:
            return self.fallback.incr(key, limit.seconds) <= limit.amount
        try:
            return self.storage.incr(key, limit.seconds) <= limit.amount
        except Exception:
            if not fallback:
                raise
            logger.warning("rate-limit storage unavailable; counting in memory meanwhile")
            self._down_until = time.monotonic() + self.RETRY_SECONDS
            return self.fallback.incr(key, limit.seconds) <= limit.amount

    def clear(self, limit: Limit, *identifiers: str) -> None:
        self.storage.clear(limit.key(*identifiers))
