"""Two machines on one machine: two portal instances (gunicorn, each with its own Celery worker
and scheduler tick) on different loopback ports, sharing one PostgreSQL, one Redis and one S3
stand-in (moto's server), as two machines behind a load balancer would: the rush over both
gives 280 + 120, every mail is delivered once, a job ticked by both schedulers runs once, a
log-in limit counts across both, and a change and a file uploaded through one are seen
through the other on the next request.

Runs in the PostgreSQL leg of CI (PORTAL_TEST_DATABASE_URL and PORTAL_TEST_REDIS_URL set by
.ci/run); skipped on SQLite, which one machine cannot share with another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from bench.common import Client, Gunicorn, form_with, login, send_at_once
from bench.seed import RUSH_PASSWORD, seed_rush
from portal.accounts.models import User
from portal.config import ROOT
from portal.db import db, make_engine
from portal.mail.models import OutboxEmail
from portal.registration.models import Registration, RegistrationState
from portal.speakers.services import get_profile
from portal.tasks.models import JobRun
from tests.fakes import s3_server
from tests.test_speakers_organiser import FORM
from tests.test_speakers_support import image_bytes, organiser, speaker

s3_endpoint = s3_server.s3_endpoint  # fixtures
s3_bucket = s3_server.s3_bucket

pytestmark = pytest.mark.postgres_only

SECRET = "two-machines-test-secret-0123456789"


@pytest.fixture
def shared(database_url, tmp_path, smtp_server, s3_endpoint, s3_bucket):
    if not database_url.startswith("postgresql"):
        pytest.skip("two machines share PostgreSQL (PORTAL_TEST_DATABASE_URL)")
    redis_url = os.environ.get("PORTAL_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("two machines share Redis (PORTAL_TEST_REDIS_URL)")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_BASE_URL": "http://127.0.0.1",
        "PORTAL_MAIL_SERVER": "127.0.0.1",
        "PORTAL_MAIL_PORT": str(smtp_server.port),
        "PORTAL_REDIS_URL": redis_url,
        "PORTAL_STORAGE_URL": f"s3://{s3_bucket}/portal",
        "PORTAL_S3_ENDPOINT_URL": s3_endpoint,
        "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
        "PORTAL_UPLOAD_FOLDER": str(tmp_path / "not-used"),
        "PORTAL_LOG_REQUESTS": "0",
    }
    yield env, redis_url
    redis.Redis.from_url(redis_url).flushdb()
    engine = make_engine(database_url)
    from tests.conftest import _empty_all_tables

    engine.dispose()
    _empty_all_tables(database_url)


class Machine:
    """One machine: gunicorn (2 workers x 4 threads) and a Celery worker (2 threads)."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        self.name = name
        self.env = env
        self.log_dir = log_dir

    def __enter__(self):
        self.web = Gunicorn(
            "portal.app:create_app()", self.env, workers=2, threads=4, log_dir=self.log_dir
        ).__enter__()
        self.worker_log = (self.log_dir / f"worker-{self.name}.log").open("wb")
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portal.cli",
                "tasks",
                "worker",
                "--concurrency=2",
                "--pool=threads",
                f"--hostname={self.name}@%h",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self.worker_log,
            stderr=subprocess.STDOUT,
        )
        return self

    def worker_log_tail(self, lines: int = 40) -> str:
        self.worker_log.flush()
        text = (self.log_dir / f"worker-{self.name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __exit__(self, *exc):
        self.worker.terminate()
        try:
            self.worker.wait(20)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait(5)
        self.worker_log.close()
        self.web.stop()


def _session_cookie(app, user_stamp: str, csrf_raw: str) -> str:
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.dumps({"_user_id": user_stamp, "_fresh": True, "csrf_token": csrf_raw})


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_instances_share_registrations_mail_jobs_and_files(
    shared, database_url, smtp_server, tmp_path, app_config
):
    env, redis_url = shared
    engine = make_engine(database_url)
    data = seed_rush(engine, seats=280, people=400)
    from portal.app import create_app

    signer = create_app(dict(app_config, SECRET_KEY=SECRET))
    with signer.app_context():
        stamps = {u.person_id: u.get_id() for u in db.session.scalars(sa.select(User))}

    with Machine("a", env, tmp_path) as a, Machine("b", env, tmp_path) as b:
        ports = [a.web.port, b.web.port]

        # The confirmation step once, through machine A, for its form fields and CSRF token.
        first_pid, first_email = data.people[0]
        probe = Client(ports[0])
        login(probe, first_email, RUSH_PASSWORD)
        page = probe.get(f"/ja/events/{data.slug}/register")
        form = form_with(page.body, "/register")
        review = probe.post(form.path(), form.values(privacy="y"))
        confirm = form_with(review.body, "/register")
        fields = confirm.values(step="confirm")
        session = signer.session_interface.get_signing_serializer(signer).loads(
            probe.cookies["session"]
        )
        csrf_raw = session["csrf_token"]

        # The rush: 400 browsers, alternately on A and B, all at once, sent by one thread
        # (non-blocking sockets). 400 client threads here took the GIL from this process's
        # SMTP recorder; once in CI a mail was received twice (a sender that times out after
        # the recorder took the mail sends it again: SMTP delivers at least once).
        posts = {}
        for i, (pid, _) in enumerate(data.people):
            client = Client(ports[i % 2])
            client.cookies["session"] = _session_cookie(signer, stamps[pid], csrf_raw)
            posts[pid] = client.encoded("POST", f"/ja/events/{data.slug}/register", fields)
        answers = send_at_once(posts, 180)
        statuses = {pid: getattr(a, "status", a) for pid, a in answers.items()}
        assert sorted(set(statuses.values()), key=str) == [302], a.web.log_tail()
        with engine.connect() as conn:
            states = dict(
                conn.execute(
                    sa.select(Registration.state, sa.func.count())
                    .where(Registration.event_id == data.event_id)
                    .group_by(Registration.state)
                ).all()
            )
        assert states == {RegistrationState.confirmed: 280, RegistrationState.waitlisted: 120}

        # Mail: every mail the rush queued is delivered once, by whichever worker claimed it.
        def outbox_done():
            with engine.connect() as conn:
                return not conn.scalar(
                    sa.select(sa.func.count()).where(OutboxEmail.sent_at.is_(None))
                )

        _wait(outbox_done, 120, "the workers to send the rush's mail")
        with engine.connect() as conn:
            queued = list(conn.scalars(sa.select(OutboxEmail.message_id)))
        received = [m["Message-ID"] for m in smtp_server.messages]
        assert len(queued) >= 400
        assert sorted(received) == sorted(queued), (a.worker_log_tail(), b.worker_log_tail())

        # A scheduled job: a tick from each machine's scheduler runs the job once.
        publisher = create_app(dict(app_config, SECRET_KEY=SECRET, BROKER_URL=redis_url))
        with publisher.app_context():
            from portal.tasks import celery_for

            celery = celery_for(publisher)
            for _ in range(2):
                celery.send_task("portal.run_job", args=("expire-unpaid",))
        import redis

        broker = redis.Redis.from_url(redis_url)

        def job_settled():
            with engine.connect() as conn:
                row = conn.execute(
                    sa.select(JobRun.runs, JobRun.last_finished_at).where(
                        JobRun.name == "expire-unpaid"
                    )
                ).first()
            return row is not None and row.last_finished_at and broker.llen("celery") == 0

        _wait(job_settled, 30, "the expire-unpaid job")
        time.sleep(2)  # the second tick has been taken by a worker and skipped
        with engine.connect() as conn:
            assert conn.scalar(sa.select(JobRun.runs).where(JobRun.name == "expire-unpaid")) == 1
        # A log-in limit counts across both machines (Redis): 5 wrong passwords, then 429.
        csrf_token = URLSafeTimedSerializer(SECRET, salt="wtf-csrf-token").dumps(csrf_raw)
        anonymous = signer.session_interface.get_signing_serializer(signer).dumps(
            {"csrf_token": csrf_raw}
        )
        codes = []
        for n in range(8):
            browser = Client(ports[n % 2])
            browser.cookies["session"] = anonymous
            codes.append(
                browser.post(
                    "/en/account/login",
                    {"csrf_token": csrf_token, "email": first_email, "password": "wrong"},
                ).status
            )
        assert codes == [400] * 5 + [429] * 3

        # A change and a file through A are seen through B on the next request, also by
        # visitors whose page B had cached.
        with signer.app_context():
            editor = organiser(db.session, email="office@example.org")
            profile = speaker(db.session, consent=True)
            db.session.commit()
            editor_stamp, person_id = editor.get_id(), profile.person_id
        public = f"/en/speakers/{person_id}/"
        before = Client(ports[1]).get(public)
        assert before.status == 200 and "Updated through machine A" not in before.body
        assert Client(ports[1]).get(public).body == before.body  # kept for visitors
        web = requests.Session()
        web.cookies.set("session", _session_cookie(signer, editor_stamp, csrf_raw))
        upload = web.post(
            f"http://127.0.0.1:{ports[0]}/en/organiser/speakers/{person_id}/edit",
            data=dict(FORM, csrf_token=csrf_token, biography_en="Updated through machine A"),
            files={"photo": ("me.png", image_bytes("PNG"), "image/png")},
            allow_redirects=False,
            timeout=60,
        )
        assert upload.status_code == 302, upload.text[:2000]
        after = Client(ports[1]).get(public)
        assert "Updated through machine A" in after.body
        served_b = requests.get(
            f"http://127.0.0.1:{ports[1]}/en/speakers/{person_id}/photo", timeout=30
        )
        served_a = requests.get(
            f"http://127.0.0.1:{ports[0]}/en/speakers/{person_id}/photo", timeout=30
        )
        assert served_b.status_code == 200 and served_b.headers["Content-Type"] == "image/jpeg"
        assert served_b.content == served_a.content and served_b.content[:2] == b"\xff\xd8"
        with signer.app_context():
            name = get_profile(db.session, person_id).photo_filename
        bucket = env["PORTAL_STORAGE_URL"][len("s3://") :].split("/")[0]
        s3 = boto3.client("s3", endpoint_url=env["PORTAL_S3_ENDPOINT_URL"], region_name="us-east-1")
        stored = s3.get_object(Bucket=bucket, Key=f"portal/speakers/{name}")["Body"].read()
        assert stored == served_b.content
        assert not Path(env["PORTAL_UPLOAD_FOLDER"]).exists()  # nothing on a local disk

        from portal.tasks.worker import init_app

        init_app(signer)
    engine.dispose()
