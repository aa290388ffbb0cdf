"""The page benchmark: requests per second, latency and SQL queries of the busiest pages.

Demo data scaled up on SQLite (``portal.demo.load_demo``; the upcoming study-group meeting
gets 4 talks, three fee categories, 300 registrations and the calendar, archive and attendance
plugins; the series gets 100 past meetings) is served by gunicorn with 2 sync workers
(``bench.ceiling:create_app()``: the portal plus ``/bench/ceiling``). wrk (Debian's ``wrk`` package)
measures, in interleaved rounds, the event page, the home page, the series page, the
registration form (logged in: wrk sends the session cookie) and the ceiling. Without wrk a
small Python load generator stands in (it says so; its figures are lower).

SQL queries per page are counted through Flask's test client with a ``before_cursor_execute``
listener, on the same data, and again on a database with 10 and one with 1,000 registrations:
the counts must not change.

Targets: visitor pages at least 60% of the ceiling's requests per second, the logged-in event
page 25%; equal query counts.

    .venv/bin/python bench/pages.py [--seconds 10] [--connections 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.common import SECRET_KEY, Client, Gunicorn, login, portal_env
from bench.seed import PagesData, create_schema, seed_pages

WRK = shutil.which("wrk")
# Shares of the ceiling (issue 14): visitor pages from the shared cache, the logged-in event
# page as the shared page plus its personal parts.
TARGETS = {
    "event page": 0.60,
    "home page": 0.60,
    "series page": 0.60,
    "speaker directory": 0.60,
    "timetable": 0.60,
    "event, logged in": 0.25,
}
MAX_WORKER_RSS_MB = 80  # issue 14: resident memory of one gunicorn worker

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local f = io.open(os.getenv("WRK_OUT"), "w")
  local e = summary.errors
  f:write(string.format("%d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout))
  for i = 1, #latency do
    local v, c = latency(i)
    f:write(string.format("%d %d\\n", v, c))
  end
  f:close()
end
"""


@dataclass
class Page:
    name: str
    path: str
    logged_in: bool = False


@dataclass
class Stats:
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    latency_us: dict = field(default_factory=dict)  # microseconds -> count

    def add(self, other: Stats) -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        self.errors += other.errors
        for value, count in other.latency_us.items():
            self.latency_us[value] = self.latency_us.get(value, 0) + count

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        total = sum(self.latency_us.values())
        if not total:
            return 0.0
        rank = max(1, -(-p * total // 100))
        seen = 0
        for value in sorted(self.latency_us):
            seen += self.latency_us[value]
            if seen >= rank:
                return value / 1000
        return max(self.latency_us) / 1000


def pages_for(data: PagesData) -> list[Page]:
    return [
        Page("event page", f"/ja/events/{data.event_slug}/"),
        Page("event, logged in", f"/ja/events/{data.event_slug}/", logged_in=True),
        Page("home page", "/ja/"),
        Page("series page", f"/ja/series/{data.series_slug}/"),
        Page("speaker directory", "/ja/speakers/"),
        Page("timetable", f"/ja/events/{data.event_slug}/programme/"),
        Page("registration form", f"/ja/events/{data.event_slug}/register", logged_in=True),
        Page("ceiling", "/bench/ceiling"),
    ]


# -- load generators -------------------------------------------------------------------------


def wrk(port: int, page: Page, cookie: str, seconds: float, connections: int, tmp: Path) -> Stats:
    script = tmp / "report.lua"
    script.write_text(WRK_SCRIPT)
    out = tmp / "wrk.out"
    out.unlink(missing_ok=True)
    cmd = [
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        "-H",
        "Accept-Language: ja",
    ]
    if page.logged_in:
        cmd += ["-H", f"Cookie: {cookie}"]
    cmd.append(f"http://127.0.0.1:{port}{page.path}")
    subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        timeout=seconds + 60,
        env=dict(os.environ, WRK_OUT=str(out)),
    )
    lines = out.read_text().split("\n")
    requests, duration_us, *errors = (int(x) for x in lines[0].split())
    latency = {}
    for line in lines[1:]:
        if line.strip():
            value, count = (int(x) for x in line.split())
            latency[value] = latency.get(value, 0) + count
    return Stats(requests, duration_us / 1e6, sum(errors), latency)


def python_load(port: int, page: Page, cookie: str, seconds: float, connections: int) -> Stats:
    """A small stand-in for wrk: ``connections`` threads, one request at a time each."""
    stats = Stats()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        client = Client(port, timeout=10)
        if page.logged_in:
            for part in cookie.split("; "):
                name, _, value = part.partition("=")
                client.cookies[name] = value
        local = Stats()
        while time.monotonic() < deadline:
            try:
                resp = client.get(page.path)
                local.requests += 1
                us = int(resp.seconds * 1e6)
                local.latency_us[us] = local.latency_us.get(us, 0) + 1
                if resp.status >= 400:
                    local.errors += 1
            except OSError:
                local.errors += 1
        with lock:
            stats.add(local)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    stats.seconds = time.monotonic() - started
    return stats


# -- SQL queries per page --------------------------------------------------------------------


def count_queries(url: str, data: PagesData, tmp: Path) -> dict[str, int]:
    """SQL statements per page, through Flask's test client (the second request of each)."""
    from bench.ceiling import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET_KEY,
            "WTF_CSRF_ENABLED": False,
            "PAGE_CACHE_SECONDS": 0,  # count the work of rendering, not a cache hit
            "UPLOAD_FOLDER": str(tmp / "uploads"),
        }
    )
    engine = app.extensions["portal_db"]["engine"]
    anonymous = app.test_client()
    member = app.test_client()
    resp = member.post(
        "/ja/account/login", data={"email": data.email, "password": data.password, "next": ""}
    )
    if resp.status_code != 302:
        raise RuntimeError(f"test-client log-in answered {resp.status_code}")
    counts: dict[str, int] = {}
    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    try:
        for page in pages_for(data):
            client = member if page.logged_in else anonymous
            client.get(page.path)  # warm: per-process caches are not what we measure
            statements.clear()
            sa.event.listen(engine, "before_cursor_execute", listener)
            try:
                resp = client.get(page.path)
            finally:
                sa.event.remove(engine, "before_cursor_execute", listener)
            if resp.status_code != 200:
                raise RuntimeError(f"{page.name} answered {resp.status_code} in the test client")
            counts[page.name] = len(statements)
    finally:
        engine.dispose()
    return counts


def flatness(tmp: Path, scales=((10, 10), (1000, 100))) -> list[tuple[int, int, dict]]:
    """Query counts on fresh databases with few and many registrations and past meetings."""
    out = []
    for registrations, past in scales:
        url = f"sqlite:///{tmp / f'flat-{registrations}.db'}"
        engine = create_schema(url)
        try:
            data = seed_pages(
                engine,
                registrations=registrations,
                past_events=past,
                upload_folder=str(tmp / "uploads"),
            )
        finally:
            engine.dispose()
        out.append((registrations, data.past_events, count_queries(url, data, tmp)))
    return out


# -- the run ---------------------------------------------------------------------------------


@dataclass
class PagesResult:
    generator: str
    server: str
    data: PagesData
    stats: dict[str, Stats]
    queries: dict[str, int]
    flat: list
    page_cache_seconds: str = "5"
    worker_rss: list[float] = field(default_factory=list)  # MB, after every page was served

    def ratio(self, name: str) -> float:
        ceiling = self.stats["ceiling"].rps
        return self.stats[name].rps / ceiling if ceiling else 0.0

    @property
    def flat_ok(self) -> bool:
        counts = [q for _r, _p, q in self.flat]
        return all(c == counts[0] for c in counts)

    @property
    def ok(self) -> bool:
        return (
            all(self.ratio(name) >= target for name, target in TARGETS.items())
            and self.flat_ok
            and all(s.errors == 0 for s in self.stats.values())
            and self.memory_ok
        )

    @property
    def memory_ok(self) -> bool:
        return bool(self.worker_rss) and max(self.worker_rss) <= MAX_WORKER_RSS_MB


def run(seconds: float = 10, connections: int = 4, rounds: int = 2, warmup: float = 2):
    tmp = Path(tempfile.mkdtemp(prefix="portal-pages-"))
    try:
        url = f"sqlite:///{tmp / 'pages.db'}"
        print("pages: seeding demo data scaled up ...", flush=True)
        engine = create_schema(url)
        try:
            data = seed_pages(engine, upload_folder=str(tmp / "uploads"))
        finally:
            engine.dispose()
        pages = pages_for(data)
        generator = f"wrk -t1 -c{connections}" if WRK else f"python threads x{connections}"
        if not WRK:
            print(
                "wrk is not installed (apt-get install wrk); using a small Python load generator,"
                " whose figures are lower than wrk's."
            )
        with Gunicorn(
            "bench.ceiling:create_app()", portal_env(url, tmp), workers=2, log_dir=tmp
        ) as server:
            client = Client(server.port, timeout=30)
            login(client, data.email, data.password)
            cookie = client.cookie_header()
            for page in pages:
                check = client if page.logged_in else Client(server.port, timeout=30)
                resp = check.get(page.path)
                if resp.status != 200 or (page.logged_in and 'name="csrf_token"' not in resp.body):
                    raise RuntimeError(f"{page.name} ({page.path}) answered {resp.status}")
            cookie = client.cookie_header()

            def measure(page: Page, secs: float) -> Stats:
                if WRK:
                    return wrk(server.port, page, cookie, secs, connections, tmp)
                return python_load(server.port, page, cookie, secs, connections)

            print(f"pages: warming up, then {rounds} rounds of {seconds / rounds:.0f} s per page")
            for page in pages:
                measure(page, warmup)
            stats = {page.name: Stats() for page in pages}
            for _ in range(rounds):
                for page in pages:
                    stats[page.name].add(measure(page, seconds / rounds))
            describe = server.describe()
            worker_rss = server.worker_rss_mb()
        print("pages: counting SQL queries ...", flush=True)
        queries = count_queries(url, data, tmp)
        flat = flatness(tmp)
        cache = os.environ.get("PORTAL_PAGE_CACHE_SECONDS") or "300 (default)"
        return PagesResult(generator, describe, data, stats, queries, flat, cache, worker_rss)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def print_table(result: PagesResult) -> None:
    d = result.data
    print()
    print(
        f"Pages: SQLite, {result.server}, {result.generator}, PAGE_CACHE_SECONDS="
        f"{result.page_cache_seconds}; event with {d.registrations} registrations and 4 talks,"
        f" {d.past_events} past meetings"
    )
    head = (
        f"{'page':<19}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'queries':>9}{'errors':>8}"
    )
    print(head)
    print("-" * len(head))
    for name, s in result.stats.items():
        ratio = "1.00" if name == "ceiling" else f"{result.ratio(name):.2f}"
        queries = result.queries.get(name, 0)
        print(
            f"{name:<19}{s.rps:>8.0f}{s.percentile_ms(50):>9.1f}{s.percentile_ms(99):>9.1f}"
            f"{ratio:>8}{queries:>9}{s.errors:>8}"
        )
    if result.page_cache_seconds.split()[0] in ("0", "0.0"):
        print("(page cache off: every page is rendered for every request)")
    else:
        print(
            "(visitor pages and the logged-in event page come from the shared page cache, kept"
            " under content versions; bench/cpu.py gives cached and uncached CPU per request)"
        )
    print("(queries: SQL statements of one rendering, counted with the page cache off)")
    for name, target in TARGETS.items():
        ratio = result.ratio(name)
        print(
            f"target: {name} >= {target:.0%} of the ceiling: {ratio:.0%}"
            f" -> {'ok' if ratio >= target else 'BELOW TARGET'}"
        )
    print()
    print("SQL queries per page as data grows (Flask test client, page cache off):")
    scales = [f"{r} reg. / {p} past" for r, p, _q in result.flat]
    head = f"{'page':<19}" + "".join(f"{label:>22}" for label in scales)
    print(head)
    print("-" * len(head))
    for name in result.flat[0][2]:
        print(f"{name:<19}" + "".join(f"{q[name]:>22}" for _r, _p, q in result.flat))
    print(f"target: equal counts -> {'ok' if result.flat_ok else 'NOT FLAT'}")
    print()
    sizes = ", ".join(f"{mb:.1f}" for mb in result.worker_rss) or "not measured"
    print(
        f"worker memory (RSS after serving every page, MB): {sizes}; target <= "
        f"{MAX_WORKER_RSS_MB} -> {'ok' if result.memory_ok else 'ABOVE TARGET'}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per page")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.connections, args.rounds)
    print_table(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
