"""A web worker serving pages loads only what the pages need (issue 14: <= 80 MB RSS a worker).

Libraries used by a few actions load on first use, inside the function that needs them:
Celery and kombu (publishing a task, ``portal.tasks.celery_for``), Pillow (a speaker's photo),
Markdown and nh3 (announcements, abstracts), reportlab and segno (PDFs), icalendar, pygal (the
attendance chart), stripe, boto3 (S3 storage), statistics (review scores). A fresh interpreter
creates the app as gunicorn's worker does, serves the visitor pages and the load balancer's
``/healthz`` (with the SQLite-file broker of ``make run``), answers a log-in attempt and a
password-reset request, and none of them is loaded, nor Babel's locale data (about 5 MB;
``portal/i18n.py`` writes the portal's dates and amounts), nor Flask-Limiter, nor SQLAlchemy's
PostgreSQL dialect on SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.common import portal_env
from bench.seed import create_schema, seed_pages

LOADED_ON_FIRST_USE = (
    "celery",
    "kombu",
    "PIL",
    "markdown",
    "nh3",
    "reportlab",
    "segno",
    "icalendar",
    "pygal",
    "stripe",
    "boto3",
    "botocore",
    "statistics",
)
# Never loaded by the portal any more: Flask-Limiter and limits (with wrapt and deprecated,
# about 2 MB) gave way to portal/ratelimit.py. Log-ins and email forms count without them.
NOT_USED = ("flask_limiter", "limits", "ordered_set")
# On SQLite: the PostgreSQL dialect (2 MB), which ``postgresql_*`` options of an index load
# (portal.db.dialect_index keeps them out of the model until a table is created on PostgreSQL).
POSTGRESQL_DIALECT = "sqlalchemy.dialects.postgresql"

# Measured: 78.5 MB in this interpreter after these pages and the log-in (82 MB before
# Flask-Limiter and the PostgreSQL dialect left); Celery and kombu alone would add about
# 11 MB, Babel's locale data about 5 MB. The bound leaves 7.5 MB of room and still catches a
# library of Celery's size loaded at start again.
MAX_RSS_MB = 86

WORKER = """
import json, sys
from bench.ceiling import create_app

app = create_app()
client = app.test_client()
answers = {path: client.get(path).status_code for path in sys.argv[1:]}
# A log-in attempt (counted per address and per account) and an email form (per address).
app.config["WTF_CSRF_ENABLED"] = False
answers["log-in"] = client.post(
    "/en/account/login", data={"email": "nobody@example.org", "password": "wrong password"}
).status_code
answers["password reset"] = client.post(
    "/en/account/password/forgot", data={"email": "nobody@example.org"}
).status_code
with open("/proc/self/status") as status:
    rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
from babel import core, localedata

babel_data = sorted(localedata._cache) + (["global"] if core._global_data is not None else [])
print(json.dumps({"answers": answers, "modules": sorted(sys.modules), "rss_mb": rss_kb / 1024,
                  "babel_data": babel_data}))
"""


def test_a_worker_serving_pages_loads_no_library_it_does_not_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'pages.db'}"
    engine = create_schema(url)
    try:
        data = seed_pages(
            engine, registrations=10, past_events=3, upload_folder=str(tmp_path / "uploads")
        )
    finally:
        engine.dispose()
    paths = [
        "/healthz",
        "/ja/",
        f"/ja/events/{data.event_slug}/",
        f"/en/events/{data.event_slug}/",
        f"/ja/series/{data.series_slug}/",
        "/ja/speakers/",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(portal_env(url, tmp_path))
    env["PORTAL_BROKER_URL"] = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    result = subprocess.run(
        [sys.executable, "-c", WORKER, *paths],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answers"] == {**dict.fromkeys(paths, 200), "log-in": 400, "password reset": 200}
    loaded = {name.split(".")[0] for name in report["modules"]}
    assert sorted(loaded & set(LOADED_ON_FIRST_USE)) == []
    assert sorted(loaded & set(NOT_USED)) == []
    assert POSTGRESQL_DIALECT not in report["modules"]
    # Dates and yen amounts are written without Babel's locale data (portal/i18n.py).
    assert report["babel_data"] == []
    assert report["rss_mb"] < MAX_RSS_MB, report["rss_mb"]
