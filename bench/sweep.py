"""The page sweep: every page that could grow with the history, at 1×, 10× and 100× of it.

For each database (SQLite, PostgreSQL 15) and each scale, ``bench.history`` builds the history
in a new schema; then Flask's test client (page cache off) opens each page once to warm up and
``--repeat`` times to measure: the median server time and the number of SQL statements (a
``before_cursor_execute`` listener; BEGIN/COMMIT/ROLLBACK not counted). Exports are read to
the end (a streamed answer is consumed) and measured once more under ``tracemalloc`` for the
peak of Python memory they allocate (the answer consumed piece by piece, as a server sends
it, not kept). Two further rows time what the workers do with nothing to
do: the due-mail query of ``portal outbox send`` and the pending-payment query of
``portal payments reconcile``.

    .venv/bin/python bench/sweep.py --scales 1,10 --databases sqlite
    .venv/bin/python bench/sweep.py --scales 1,10,100 --databases postgresql --pg-port 55419
    .venv/bin/python bench/sweep.py --databases postgresql --pg-url postgresql+psycopg://...
    .venv/bin/python bench/sweep.py --reuse postgresql+psycopg://... --pages archive --repeat 7

Prints one table per database, the scales side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.common import SECRET_KEY, PostgresServer, PostgresUnavailable
from bench.history import HistoryData, build_history
from bench.seed import create_schema


@dataclass(frozen=True)
class Page:
    name: str
    path: str  # {event} and {series} are filled in
    who: str = "admin"  # admin, visitor or owner (the person with 50 registrations)
    export: bool = False


PAGES = (
    Page("event page", "/ja/events/{event}/", "visitor"),
    Page("series page", "/ja/series/{series}/", "visitor"),
    Page("home page", "/ja/", "visitor"),
    Page("membership year", "/ja/organiser/membership/{series}/"),
    Page("membership members", "/ja/organiser/membership/{series}/members"),
    Page("attendance statistics", "/ja/series/{series}/statistics"),
    Page("statistics chart", "/ja/series/{series}/statistics/chart.svg"),
    Page("registration list", "/ja/organiser/events/{event}/registrations/"),
    Page("registration search", "/ja/organiser/events/{event}/registrations/?q=%E4%BD%90%E8%97%A4"),
    Page("check-in search", "/ja/organiser/events/{event}/registrations/check-in?q=sato"),
    Page("people search (add)", "/ja/organiser/events/{event}/registrations/add?q=sato"),
    Page("organiser speaker search", "/ja/organiser/speakers/?q=sato"),
    Page("organiser speaker list", "/ja/organiser/speakers/"),
    Page("speakers directory", "/ja/speakers/", "visitor"),
    Page("abstracts management", "/ja/events/{event}/abstracts/manage/"),
    Page("archive index", "/ja/series/{series}/archive/"),
    Page("archive speakers", "/ja/series/{series}/archive/speakers"),
    Page("archive access log", "/ja/series/{series}/archive/log"),
    Page("data download (50 reg.)", "/ja/account/profile/data.json", "owner"),
    Page("members CSV", "/ja/organiser/membership/{series}/members.csv", export=True),
    Page("speakers CSV", "/ja/organiser/speakers/export.csv", export=True),
    Page("registrations CSV", "/ja/organiser/events/{event}/registrations/export.csv", export=True),
    Page("statistics CSV", "/ja/series/{series}/statistics.csv", export=True),
)
JOBS = ("outbox: due mails", "payments: reconcile")


@dataclass
class Measure:
    ms: float | None = None
    statements: int | None = None
    status: int | None = None
    peak_mb: float | None = None
    size_kb: float | None = None


@dataclass
class Run:
    database: str
    scale: float
    build_s: float
    counts: dict
    measures: dict[str, Measure] = field(default_factory=dict)


class _Counter:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.n = 0

    def __call__(self, conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.n += 1

    def __enter__(self):
        self.n = 0
        sa.event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self)


def make_app(url: str, upload_folder: str):
    from portal.app import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET_KEY,
            "PAGE_CACHE_SECONDS": 0,
            "UPLOAD_FOLDER": upload_folder,
            "RATELIMIT_ENABLED": False,
            "BASE_URL": "http://127.0.0.1",
            "LOG_REQUESTS": False,  # the access log would be measured (and printed) too
        }
    )


def clients(app, data: HistoryData) -> dict:
    """A test client per kind of visitor, the logged-in ones with their session set."""
    from portal.accounts.models import User
    from portal.db import db

    with app.app_context():
        stamps = {
            "admin": db.session.get(User, data.admin_id).get_id(),
            "owner": db.session.get(User, data.download_user_id).get_id(),
        }
    out = {"visitor": app.test_client()}
    for who, stamp in stamps.items():
        client = app.test_client()
        with client.session_transaction() as s:
            s["_user_id"] = stamp
            s["_fresh"] = True
        out[who] = client
    return out


def _get(client, path: str, keep: bool = True):
    """GET ``path``, running a streamed answer to its end; (status, body or its size)."""
    response = client.get(path, buffered=False)
    if keep:
        body = b"".join(response.response)
    else:  # as a server sends it: piece by piece, nothing kept
        body = sum(len(chunk) for chunk in response.response)
    response.close()
    return response.status_code, body


def measure_page(app, client, page: Page, path: str, repeat: int) -> Measure:
    engine = app.extensions["portal_db"]["engine"]
    _get(client, path)  # warm-up: templates compiled, caches filled
    times = []
    m = Measure()
    for i in range(repeat):
        with _Counter(engine) as counter:
            started = time.perf_counter()
            status, body = _get(client, path)
            times.append((time.perf_counter() - started) * 1000)
        if i == 0:
            m.statements, m.status = counter.n, status
            m.size_kb = len(body) / 1024
    m.ms = statistics.median(times)
    if page.export:
        tracemalloc.start()
        try:
            _get(client, path, keep=False)
            m.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    return m


def measure_jobs(app, repeat: int) -> dict[str, Measure]:
    from portal.db import db
    from portal.mail.services import send_due
    from portal.payments.reconcile import reconcile_candidates

    engine = app.extensions["portal_db"]["engine"]
    jobs = {
        "outbox: due mails": lambda s: send_due(s),
        "payments: reconcile": lambda s: reconcile_candidates(s),
    }
    out = {}
    for name, job in jobs.items():
        times = []
        m = Measure(status=200)
        for i in range(repeat + 1):
            with app.app_context(), _Counter(engine) as counter:
                started = time.perf_counter()
                job(db.session)
                elapsed = (time.perf_counter() - started) * 1000
                db.session.rollback()
            if i:
                times.append(elapsed)
            if i == 1:
                m.statements = counter.n
        m.ms = statistics.median(times)
        out[name] = m
    return out


def sweep_one(database: str, url: str, scale: float, repeat: int, pages=PAGES, log=print) -> Run:
    engine = create_schema(url)
    started = time.monotonic()
    try:
        data = build_history(engine, scale)
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(sa.text("ANALYZE"))
                conn.commit()
    finally:
        engine.dispose()
    run = Run(database, scale, time.monotonic() - started, data.counts)
    log(f"  {database} {scale:g}x: history built in {run.build_s:.1f} s")
    measure_all(run, url, data, repeat, pages, log)
    return run


def measure_all(
    run: Run, url: str, data: HistoryData, repeat: int, pages=PAGES, log=print, jobs: bool = True
):
    """Every page of ``pages`` (and the idle workers' jobs) on a built history."""
    with tempfile.TemporaryDirectory(prefix="portal-sweep-") as tmp:
        app = make_app(url, tmp)
        try:
            by_who = clients(app, data)
            for page in pages:
                path = page.path.format(event=data.event_slug, series=data.series_slug)
                run.measures[page.name] = measure_page(app, by_who[page.who], page, path, repeat)
                m = run.measures[page.name]
                log(f"    {page.name:28} {m.status} {m.ms:9.1f} ms {m.statements:4} statements")
            if jobs:
                run.measures.update(measure_jobs(app, repeat))
        finally:
            app.extensions["portal_db"]["engine"].dispose()


def run(
    scales=(1, 10, 100),
    databases=("sqlite", "postgresql"),
    repeat: int = 3,
    pg_port: int | None = None,
    pg_url: str | None = None,
    sqlite_max_scale: float = 10,
    log=print,
) -> list[Run]:
    runs: list[Run] = []
    for database in databases:
        if database == "sqlite":
            with tempfile.TemporaryDirectory(prefix="portal-history-") as tmp:
                for scale in scales:
                    if scale > sqlite_max_scale:
                        log(
                            f"  sqlite {scale:g}x skipped (--sqlite-max-scale {sqlite_max_scale:g})"
                        )
                        continue
                    url = f"sqlite:///{tmp}/history-{scale:g}.db"
                    runs.append(sweep_one("sqlite", url, scale, repeat, log=log))
                    Path(f"{tmp}/history-{scale:g}.db").unlink(missing_ok=True)
        elif pg_url:  # a server already running (its schema is replaced)
            for scale in scales:
                runs.append(sweep_one("postgresql", pg_url, scale, repeat, log=log))
        else:
            try:
                with PostgresServer(database="portal_history", port=pg_port) as server:
                    for scale in scales:
                        runs.append(sweep_one("postgresql", server.url, scale, repeat, log=log))
            except PostgresUnavailable as exc:
                log(f"  postgresql skipped: {exc}")
    return runs


def print_table(runs: list[Run]) -> None:
    for database in dict.fromkeys(r.database for r in runs):
        mine = [r for r in runs if r.database == database]
        print()
        print(
            f"History sweep on {database} (Flask test client, page cache off; "
            "median ms / SQL statements per request)"
        )
        head = f"{'page':30}" + "".join(f"{f'{r.scale:g}x':>18}" for r in mine)
        print(head)
        print("-" * len(head))
        names = [p.name for p in PAGES] + list(JOBS)
        for name in names:
            cells = []
            for r in mine:
                m = r.measures.get(name)
                if m is None or m.ms is None:
                    cells.append(f"{'-':>18}")
                    continue
                mark = "" if m.status == 200 else f" [{m.status}]"
                cells.append(f"{f'{m.ms:.1f} / {m.statements}{mark}':>18}")
            print(f"{name:30}" + "".join(cells))
        exports = [p.name for p in PAGES if p.export]
        print()
        print(
            f"{'export: peak Python memory':30}" + "".join(f"{f'{r.scale:g}x':>18}" for r in mine)
        )
        for name in exports:
            cells = []
            for r in mine:
                m = r.measures.get(name)
                cells.append(
                    f"{f'{m.peak_mb:.1f} MB ({m.size_kb / 1024:.1f} MB)':>18}"
                    if m and m.peak_mb is not None
                    else f"{'-':>18}"
                )
            print(f"{name:30}" + "".join(cells))
        print(f"{'history built in':30}" + "".join(f"{f'{r.build_s:.0f} s':>18}" for r in mine))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Pages at 1x, 10x, 100x of the history")
    parser.add_argument("--scales", default="1,10,100", help="comma-separated, e.g. 0.1,1")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-port", type=int, default=None, help="port of the server started")
    parser.add_argument("--pg-url", default=None, help="use this PostgreSQL database instead")
    parser.add_argument(
        "--sqlite-max-scale", type=float, default=10, help="larger scales only on PostgreSQL"
    )
    parser.add_argument(
        "--reuse",
        default=None,
        metavar="URL",
        help="measure a history database bench/history.py built before (nothing is rebuilt)",
    )
    parser.add_argument("--pages", default="", help="only the pages whose name contains this")
    args = parser.parse_args(argv)
    if args.reuse:
        from bench.history import history_data_of

        engine = sa.create_engine(args.reuse)
        try:
            database, data = engine.dialect.name, history_data_of(engine)
        finally:
            engine.dispose()
        pages = [p for p in PAGES if args.pages.lower() in p.name.lower()]
        reused = Run(database, data.scale, 0.0, data.counts)
        jobs = any(args.pages.lower() in job for job in JOBS)
        measure_all(reused, args.reuse, data, args.repeat, pages, jobs=jobs)
        print_table([reused])
        return 0
    runs = run(
        scales=[float(s) for s in args.scales.split(",") if s],
        databases=[d for d in args.databases.split(",") if d],
        repeat=args.repeat,
        pg_port=args.pg_port,
        pg_url=args.pg_url,
        sqlite_max_scale=args.sqlite_max_scale,
    )
    print_table(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
