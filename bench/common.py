"""What both benchmarks need: a browser-like HTTP client, gunicorn and a private PostgreSQL.

Everything listens on 127.0.0.1 only, every request has a timeout, and every process started
here is stopped by its own id when the benchmark ends (also on Ctrl-C or an error).
"""

from __future__ import annotations

import html
import http.client
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET_KEY = "bench-only-secret-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a list; 0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


# -- HTTP ------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: str
    seconds: float

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Client:
    """One browser: its own cookies, one request at a time, a fresh connection per request."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _headers_and_body(self, fields: list | dict | None) -> tuple[dict, bytes | None]:
        headers = {"Host": f"{HOST}:{self.port}", "Accept-Language": "ja", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        body = None
        if fields is not None:
            body = urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return headers, body

    def encoded(self, method: str, path: str, fields: list | dict | None = None) -> Outgoing:
        """The request ``request`` would send, as bytes for its port (for ``send_at_once``)."""
        headers, body = self._headers_and_body(fields)
        if body is not None:
            headers["Content-Length"] = str(len(body))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        data = f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + (body or b"")
        return Outgoing(self.port, data)

    def request(self, method: str, path: str, fields: list | dict | None = None) -> Response:
        headers, body = self._headers_and_body(fields)
        conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            elapsed = time.perf_counter() - started
            result = Response(
                resp.status, resp.getheaders(), data.decode("utf-8", "replace"), elapsed
            )
        finally:
            conn.close()
        for key, value in result.headers:
            if key.lower() == "set-cookie":
                self._store_cookie(value)
        return result

    def _store_cookie(self, header: str) -> None:
        first, _, attributes = header.partition(";")
        name, _, value = first.strip().partition("=")
        attrs = attributes.lower()
        if "max-age=0" in attrs or "expires=thu, 01 jan 1970" in attrs:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, fields) -> Response:
        return self.request("POST", path, fields)


@dataclass(frozen=True)
class Outgoing:
    """One request's bytes and the port on 127.0.0.1 they go to (``Client.encoded``)."""

    port: int
    data: bytes


class _Exchange:
    def __init__(self, request: bytes):
        self.out = memoryview(request)
        self.sent = 0
        self.data = bytearray()
        self.body_at = -1  # where the body starts, once the head is in
        self.length: int | None = None
        self.started = 0.0

    def head_done(self) -> bool:
        if self.body_at < 0:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                return False
            self.body_at = end + 4
            for line in bytes(self.data[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    self.length = int(value.strip())
        return True

    def complete(self) -> bool:
        return (
            self.head_done()
            and self.length is not None
            and len(self.data) - self.body_at >= self.length
        )

    def response(self, seconds: float) -> Response | str:
        """The answer as a ``Response``, or what went wrong (a str)."""
        if not self.head_done():
            return f"incomplete answer: {bytes(self.data[:80])!r}"
        lines = bytes(self.data[: self.body_at - 4]).decode("latin-1").split("\r\n")
        headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:])]
        body = bytes(self.data[self.body_at :]).decode("utf-8", "replace")
        return Response(int(lines[0].split()[1]), headers, body, seconds)


def send_at_once(requests: dict, timeout: float) -> dict:
    """Send every request (``{key: Client.encoded(...)}``) at the same moment, each on its own
    connection, from one thread with non-blocking sockets, and return ``{key: answer}``: its
    ``Response``, or what went wrong as a str (no answer in time, a refused connection…).

    The seconds of an answer run from the connection's start to the last byte of the answer.
    One thread costs the machine far less CPU than a thread per browser would: the server the
    benchmark measures keeps the cores, as it would with browsers on other machines.
    """
    selector = selectors.DefaultSelector()
    exchanges: dict[socket.socket, tuple[object, _Exchange]] = {}
    answers: dict = {}
    for key, request in requests.items():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        exchange = _Exchange(request.data)
        exchange.started = time.perf_counter()
        sock.connect_ex((HOST, request.port))
        selector.register(sock, selectors.EVENT_WRITE)
        exchanges[sock] = (key, exchange)

    def finish(sock: socket.socket, answer: Response | str) -> None:
        key, _ = exchanges.pop(sock)
        selector.unregister(sock)
        sock.close()
        answers[key] = answer

    deadline = time.monotonic() + timeout
    while exchanges:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            for sock in list(exchanges):
                finish(sock, "no answer in time")
            break
        for selected, mask in selector.select(timeout=min(remaining, 1.0)):
            sock = selected.fileobj
            _key, exchange = exchanges[sock]
            try:
                if mask & selectors.EVENT_WRITE:
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        raise OSError(error, os.strerror(error))
                    exchange.sent += sock.send(exchange.out[exchange.sent :])
                    if exchange.sent == len(exchange.out):
                        selector.modify(sock, selectors.EVENT_READ)
                    continue
                chunk = sock.recv(65536)
            except OSError as exc:
                finish(sock, repr(exc))
                continue
            if chunk:
                exchange.data += chunk
            if not chunk or exchange.complete():
                finish(sock, exchange.response(time.perf_counter() - exchange.started))
    selector.close()
    return answers


@dataclass
class Form:
    action: str
    inputs: list[dict] = field(default_factory=list)
    buttons: list[dict] = field(default_factory=list)

    def values(self, **extra) -> list[tuple[str, str]]:
        """What a browser sends: hidden and text inputs, checked radios and checkboxes."""
        out = []
        for i in self.inputs:
            kind = i.get("type", "text")
            if kind in ("radio", "checkbox") and "checked" not in i:
                continue
            if kind in ("submit", "button") or not i.get("name"):
                continue
            if i["name"] in extra:
                continue
            out.append((i["name"], i.get("value") or ("on" if kind == "checkbox" else "")))
        out.extend((k, v) for k, v in extra.items())
        return out

    def path(self) -> str:
        parts = urlsplit(self.action)
        return parts.path + (f"?{parts.query}" if parts.query else "")


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        a = {k: html.unescape(v) if v is not None else "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", "")))
        elif not self.forms:
            return
        elif tag == "input":
            self.forms[-1].inputs.append(a)
        elif tag == "button":
            self.forms[-1].buttons.append(a)


def parse_forms(page: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def form_with(page: str, action_part: str) -> Form:
    for form in parse_forms(page):
        if action_part in form.action:
            return form
    raise LookupError(f"no form posting to {action_part!r} on the page")


def login(client: Client, email: str, password: str, lang: str = "ja") -> None:
    """Log in as a browser does: GET the form (CSRF token), POST it, keep the session cookie."""
    page = client.get(f"/{lang}/account/login")
    if page.status != 200:
        raise RuntimeError(f"GET /{lang}/account/login answered {page.status}")
    form = form_with(page.body, "/login")
    resp = client.post(form.path(), form.values(email=email, password=password))
    if resp.status != 302:
        raise RuntimeError(f"log-in of {email} answered {resp.status}, not a redirect")


# -- gunicorn --------------------------------------------------------------------------------


class Gunicorn:
    """``gunicorn APP`` on 127.0.0.1:<free port>, stopped (by its pid) on exit."""

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        workers: int = 2,
        threads: int = 1,
        log_dir: Path | None = None,
        start_timeout: float = 60.0,
    ):
        self.app = app
        self.port = free_port()
        self.workers = workers
        self.threads = threads
        self.env = env
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="portal-bench-log-"))
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def worker_class(self) -> str:
        return "gthread" if self.threads > 1 else "sync"

    def describe(self) -> str:
        if self.threads > 1:
            return f"gunicorn {self.worker_class}, {self.workers} workers x {self.threads} threads"
        return f"gunicorn {self.worker_class}, {self.workers} workers"

    def __enter__(self) -> Gunicorn:
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        log = (self.log_dir / f"gunicorn-{self.port}.log").open("wb")
        self.log_path = log.name
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--timeout",
            "120",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            self.app,
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.log_tail()}")
            try:
                if Client(self.port, timeout=5).get("/healthz").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz in time:\n{self.log_tail()}")

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker process (children of the master), from /proc."""
        if self.proc is None:
            return []
        sizes = []
        for proc_dir, _fields in children(self.proc.pid):
            status = (proc_dir / "status").read_text()
            rss_kb = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
            sizes.append(round(rss_kb / 1024, 1))
        return sorted(sizes)

    def worker_cpu_seconds(self) -> float:
        """CPU time (user + system) the workers have used so far."""
        return children_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: master and workers
            self.proc.wait(timeout=10)

    def __exit__(self, *exc) -> None:
        self.stop()


# -- PostgreSQL ------------------------------------------------------------------------------

PG_BIN = Path(os.environ.get("PORTAL_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def children(parent_pid: int):
    """(/proc/<pid>, fields of its stat after the command name) of each child of a process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent_pid:
            yield stat.parent, fields


def children_cpu_seconds(parent_pid: int) -> float:
    """CPU time (user + system) the living children of a process have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum((int(f[11]) + int(f[12])) / ticks for _dir, f in children(parent_pid))


class RedisServer:
    """A throw-away Redis on 127.0.0.1 (Debian's ``redis-server``; nothing saved to disk), as
    production shares one between its machines (docs/operations.md). ``url`` is None when
    ``redis-server`` is not installed: the caller then uses ``make run``'s file cache."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str | None:
        return f"redis://{HOST}:{self.port}/0" if self.proc is not None else None

    def __enter__(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            return self
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("redis-server did not start")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class PostgresUnavailable(RuntimeError):
    pass


class PostgresServer:
    """A throw-away PostgreSQL 15 in a temporary folder on 127.0.0.1 (fsync off: a benchmark).

    As root the server runs as the ``postgres`` user (``su postgres``), as .ci/run does.
    """

    def __init__(
        self, database: str = "portal_bench", max_connections: int = 200, port: int | None = None
    ):
        self.database = database
        self.max_connections = max_connections
        self.port = port or free_port()
        self.datadir: Path | None = None
        self.started = False

    def _run(self, command: str, timeout: float = 120) -> None:
        if os.geteuid() == 0:
            args = ["su", "postgres", "-s", "/bin/sh", "-c", command]
        else:
            args = ["/bin/sh", "-c", command]
        subprocess.run(args, check=True, timeout=timeout, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://portal@{HOST}:{self.port}/{self.database}"

    def __enter__(self) -> PostgresServer:
        if not (PG_BIN / "postgres").exists():
            raise PostgresUnavailable(
                f"PostgreSQL 15 is not installed ({PG_BIN}/postgres is missing); "
                "install it with: apt-get install postgresql-15"
            )
        self.datadir = Path(tempfile.mkdtemp(prefix="portal-bench-pg-"))
        try:
            if os.geteuid() == 0:
                shutil.chown(self.datadir, user="postgres")
            data = self.datadir / "data"
            self._run(
                f"{PG_BIN}/initdb -D {data} -U portal --auth=trust -E UTF8 --locale=C.UTF-8"
                " >/dev/null"
            )
            options = (
                f"-p {self.port} -k {self.datadir} -c listen_addresses={HOST} -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off"
                f" -c max_connections={self.max_connections}"
            )
            self._run(
                f"{PG_BIN}/pg_ctl -D {data} -o '{options}' -l {self.datadir}/server.log -w start"
                " >/dev/null",
                timeout=60,
            )
            self.started = True
            self._run(f"{PG_BIN}/createdb -h {HOST} -p {self.port} -U portal {self.database}")
        except BaseException:
            self.stop()
            raise
        return self

    def backends_cpu_seconds(self) -> float:
        """CPU time the server's processes (its connections' backends) have used so far."""
        try:
            pid = int((self.datadir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, TypeError):
            return 0.0
        return children_cpu_seconds(pid)

    def stop(self) -> None:
        if self.datadir is None:
            return
        if self.started:
            try:
                self._run(f"{PG_BIN}/pg_ctl -D {self.datadir / 'data'} -m fast stop >/dev/null")
            except (subprocess.SubprocessError, OSError) as exc:
                print(f"  (could not stop PostgreSQL cleanly: {exc})", file=sys.stderr)
            self.started = False
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.datadir = None

    def __exit__(self, *exc) -> None:
        self.stop()


def portal_env(database_url: str, tmp: Path) -> dict[str, str]:
    """PORTAL_* settings for a benchmark server (nothing leaves 127.0.0.1)."""
    return {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET_KEY,
        "PORTAL_BASE_URL": "http://127.0.0.1",
        "PORTAL_MAIL_SERVER": HOST,
        "PORTAL_MAIL_PORT": "1",
        "PORTAL_UPLOAD_FOLDER": str(tmp / "uploads"),
        # The shared page cache in the run's folder, shared by the server's workers.
        "PORTAL_CACHE_URL": f"file://{tmp / 'cache'}",
        # Every simulated browser logs in from 127.0.0.1: without this the per-address log-in
        # limit (30 in 5 minutes per worker) answers the rush's log-ins with 429.
        "PORTAL_LOGIN_ADDRESS_RATE_LIMIT": "100000 per 1 minute",
    }
