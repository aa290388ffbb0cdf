"""The outbox kick: after a commit that queued email, ask a worker to send it now.

A kick publishes the Celery task ``portal.send_outbox_now``. Publishing is off the request's
path: ``kick_outbox`` hands the kick to one background thread per process, which imports
Celery and kombu on its first kick (about 10 MB and 0.1–0.3 s of CPU a web worker serving
pages never pays) and publishes. A registration commits, answers, and goes on; under a rush
the thread publishes while the worker waits for the event's lock.

A kick makes a worker send *every* due mail, so a process publishes at most one kick at once
and one at the end of each second (``KICK_WINDOW``): 400 confirmations in a few seconds make
a handful of kicks, and the mail queued meanwhile still leaves within about a second. The
scheduled ``send-outbox`` run sends anything a kick missed (the broker down, the process
gone before its thread published).

With ``TASKS_EAGER`` (tests) the task runs in the caller, at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time

from flask import Flask, current_app, has_app_context

log = logging.getLogger("portal.tasks")

KICK_WINDOW = 1.0  # seconds: at most one kick now and one at the window's end per process
DRAIN_SECONDS = 5.0  # at exit, how long a process waits for the kicks it has not published
_kicks = {"window_end": 0.0, "trailing": False}
_kicks_lock = threading.Lock()
_clock = time.monotonic


def _kick_delay(now: float) -> float | None:
    """0 to kick now, a delay for one kick at the end of the current window, None when that
    kick is already on its way."""
    with _kicks_lock:
        if now >= _kicks["window_end"]:
            _kicks["window_end"] = now + KICK_WINDOW
            _kicks["trailing"] = False
            return 0.0
        if _kicks["trailing"]:
            return None
        _kicks["trailing"] = True
        return _kicks["window_end"] - now


def publish(app: Flask, delay: float) -> bool:
    """Publish one kick for ``app``; never raises (the schedule sends the mail anyway)."""
    try:
        from portal.tasks import celery_for
        from portal.tasks.worker import send_outbox_now

        with app.app_context():
            celery_for(app)
            send_outbox_now.apply_async(countdown=delay or None)
        return True
    except Exception:  # the broker is down: the scheduled run will send it
        log.warning("could not ask a worker to send email now", exc_info=True)
        return False


class _Publisher:
    """One daemon thread per process publishing the kicks handed to it, in order."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="portal-outbox-kick", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            app, delay = self.queue.get()
            try:
                publish(app, delay)
            finally:
                self.queue.task_done()

    def drain(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the kicks handed over so far; True when all are out."""
        deadline = time.monotonic() + seconds
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.queue.unfinished_tasks


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _background() -> _Publisher:
    """This process's publisher (a new one after a fork: threads do not survive it)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = _Publisher()
        return _publisher


def drain(seconds: float = DRAIN_SECONDS) -> bool:
    """Publish what this process has not yet (at exit, and in tests)."""
    publisher = _publisher
    if publisher is None or publisher.pid != os.getpid():
        return True
    return publisher.drain(seconds)


atexit.register(drain)


def kick_outbox() -> None:
    """Ask a worker to send due mail now; returns at once and never fails the caller."""
    if not has_app_context() or not current_app.config.get("TASKS_KICK_OUTBOX"):
        return
    delay = _kick_delay(_clock())
    if delay is None:
        return
    app = current_app._get_current_object()
    if app.config.get("TASKS_EAGER"):
        publish(app, delay)  # the task runs here: the caller sees the mail sent
        return
    _background().queue.put((app, delay))
