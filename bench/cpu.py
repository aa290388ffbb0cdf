"""CPU per request of every measured page, in one process: cached, uncached, and the ceiling.

On a shared machine, requests per second move with the load of everything else; the CPU
time one request costs in the worker (``time.process_time`` around Flask's test client) does
not, or much less. Each page is requested ``--requests`` times in a row (after two warm-up
requests) in three interleaved rounds; the figure is the median of the rounds, in
milliseconds of CPU per request, and the ratio is the ceiling's figure divided by the page's
(the share of the ceiling's throughput the page would reach on an idle machine; gunicorn adds
the same cost to both, about 0.3–0.5 ms, so real ratios for fast pages are higher).

- *cached*: ``PAGE_CACHE_SECONDS=300`` and the shared cache (``--cache-url``, default a file
  folder as in ``make run``); for a visitor, the page comes from the cache; logged in, the
  page is rendered (with what the cache keeps of its parts).
- *uncached*: the page cache off (``PAGE_CACHE_SECONDS=0``): every request is rendered, as on
  a cache miss.

    .venv/bin/python bench/cpu.py [--requests 200] [--cache-url simple] [--pages "event page"]

``--pages`` measures only the pages whose name contains one of the comma-separated words (and
the ceiling); the targets of the pages left out are not checked.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SECRET_KEY
from bench.seed import create_schema, seed_pages

ORGANISER = ("organiser@example.org", "demo-organiser-pass")

# Targets as shares of the ceiling (issue 14).
TARGETS = {
    ("event page", "cached"): 0.60,
    ("home page", "cached"): 0.60,
    ("series page", "cached"): 0.60,
    ("speaker directory", "cached"): 0.60,
    ("timetable", "cached"): 0.60,
    ("event, logged in", "cached"): 0.25,
}
# Targets in milliseconds of CPU per request.
MS_TARGETS = {
    ("event page", "uncached"): 3.0,
    ("registration list", "uncached"): 5.0,
    ("organiser dashboard", "uncached"): 5.0,
    ("payments list", "uncached"): 5.0,
    ("statistics page", "uncached"): 5.0,
}


@dataclass
class CpuPage:
    name: str
    path: str
    who: str = "visitor"  # visitor | member | organiser


def cpu_pages(event_slug: str, series_slug: str) -> list[CpuPage]:
    org = f"/ja/organiser/events/{event_slug}"
    return [
        CpuPage("ceiling", "/bench/ceiling"),
        CpuPage("event page", f"/ja/events/{event_slug}/"),
        CpuPage("event, logged in", f"/ja/events/{event_slug}/", "member"),
        CpuPage("home page", "/ja/"),
        CpuPage("series page", f"/ja/series/{series_slug}/"),
        CpuPage("speaker directory", "/ja/speakers/"),
        CpuPage("timetable", f"/ja/events/{event_slug}/programme/"),
        CpuPage("registration form", f"/ja/events/{event_slug}/register", "member"),
        CpuPage("registration list", f"{org}/registrations/", "organiser"),
        CpuPage("organiser dashboard", f"{org}/", "organiser"),
        CpuPage("payments list", f"{org}/payments/", "organiser"),
        CpuPage("statistics page", f"/ja/series/{series_slug}/statistics", "organiser"),
    ]


def _quiet_request_log() -> None:
    """The JSON request log stays on (as in production, so its cost is measured) but is
    written to /dev/null instead of the terminal."""
    for handler in logging.getLogger("portal.request").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115


def _app(url: str, tmp: Path, cache_seconds: int, cache_url: str):
    from bench.ceiling import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET_KEY,
            "WTF_CSRF_ENABLED": False,
            "PAGE_CACHE_SECONDS": cache_seconds,
            "CACHE_URL": cache_url,
            "UPLOAD_FOLDER": str(tmp / "uploads"),
        }
    )
    _quiet_request_log()
    return app


def _login(app, email: str, password: str):
    client = app.test_client()
    resp = client.post("/ja/account/login", data={"email": email, "password": password})
    if resp.status_code != 302:
        raise RuntimeError(f"log-in of {email} answered {resp.status_code}")
    return client


def _cpu_ms(client, path: str, n: int) -> float:
    gc.collect()
    started = time.process_time()
    for _ in range(n):
        client.get(path)
    return (time.process_time() - started) * 1000 / n


def measure(url: str, data, tmp: Path, mode: str, requests: int, cache_url: str, only: tuple = ()):
    app = _app(url, tmp, 300 if mode == "cached" else 0, cache_url)
    clients = {
        "visitor": app.test_client(),
        "member": _login(app, data.email, data.password),
        "organiser": _login(app, *ORGANISER),
    }
    pages = [
        p
        for p in cpu_pages(data.event_slug, data.series_slug)
        if not only or p.name == "ceiling" or any(word in p.name for word in only)
    ]
    try:
        for page in pages:
            client = clients[page.who]
            for _ in range(2):
                resp = client.get(page.path)
            if resp.status_code != 200:
                raise RuntimeError(f"{page.name} ({page.path}) answered {resp.status_code}")
        rounds: dict[str, list[float]] = {p.name: [] for p in pages}
        for _ in range(3):
            for page in pages:
                rounds[page.name].append(_cpu_ms(clients[page.who], page.path, requests))
    finally:
        app.extensions["portal_db"]["engine"].dispose()
    return {name: statistics.median(values) for name, values in rounds.items()}


def run(requests: int = 100, cache_url: str = "", only: tuple = ()):
    tmp = Path(tempfile.mkdtemp(prefix="portal-cpu-"))
    try:
        url = f"sqlite:///{tmp / 'cpu.db'}"
        print("cpu: seeding demo data scaled up ...", flush=True)
        engine = create_schema(url)
        try:
            data = seed_pages(engine, upload_folder=str(tmp / "uploads"))
        finally:
            engine.dispose()
        cache_url = cache_url or f"file://{tmp / 'cache'}"
        print(f"cpu: {requests} requests per page and round, 3 rounds", flush=True)
        cached = measure(url, data, tmp, "cached", requests, cache_url, only)
        uncached = measure(url, data, tmp, "uncached", requests, cache_url, only)
        return {"cached": cached, "uncached": uncached, "cache_url": cache_url.split(":")[0]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(result) -> list[str]:
    missed = []
    for (page, mode), target in TARGETS.items():
        if page not in result[mode]:
            continue
        ratio = result[mode]["ceiling"] / result[mode][page]
        if ratio < target:
            missed.append(f"{page} ({mode}) {ratio:.0%} < {target:.0%} of the ceiling")
    for (page, mode), target in MS_TARGETS.items():
        if page in result[mode] and result[mode][page] > target:
            missed.append(f"{page} ({mode}) {result[mode][page]:.2f} ms > {target} ms")
    return missed


def print_table(result) -> None:
    print()
    print(
        "CPU per request in one process (Flask test client, time.process_time; median of 3"
        f" rounds; shared cache: {result['cache_url']})"
    )
    head = f"{'page':<21}{'cached ms':>10}{'ratio':>7}{'uncached ms':>13}{'ratio':>7}  target"
    print(head)
    print("-" * (len(head) + 16))
    for name in result["cached"]:
        cells = []
        for mode in ("cached", "uncached"):
            ms = result[mode][name]
            cells.append((ms, result[mode]["ceiling"] / ms if ms else 0))
        target = []
        if (name, "cached") in TARGETS:
            target.append(f">= {TARGETS[(name, 'cached')]:.0%}")
        if (name, "uncached") in MS_TARGETS:
            target.append(f"<= {MS_TARGETS[(name, 'uncached')]} ms")
        print(
            f"{name:<21}{cells[0][0]:>10.2f}{cells[0][1]:>7.0%}{cells[1][0]:>13.2f}"
            f"{cells[1][1]:>7.0%}  {', '.join(target)}"
        )
    missed = check(result)
    print("targets: " + ("ok" if not missed else "MISSED: " + "; ".join(missed)))
    print("(final throughput figures need an idle machine: see docs/performance.md)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--cache-url", default="")
    parser.add_argument("--pages", default="", help="comma-separated words of page names")
    args = parser.parse_args(argv)
    only = tuple(w.strip() for w in args.pages.split(",") if w.strip())
    result = run(args.requests, args.cache_url, only)
    print_table(result)
    return 0 if not check(result) else 1


if __name__ == "__main__":
    sys.exit(main())
