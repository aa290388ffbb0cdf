"""The real SMTP server of the suite (aiosmtpd) in a process of its own, for tests that send
thousands of messages.

The ``smtp_server`` fixture (tests/conftest.py) runs aiosmtpd in a thread of the test
process: fine for a few messages, but for thousands the sender and the server take turns on
the one GIL at every SMTP reply, and the test measures that rather than the portal. Here the
server is another process, as production's is: it appends every message it accepted to a
spool file *before* answering 250, and ``messages`` reads the spool (so a message the portal
saw accepted is always there). Same interface: ``port`` and ``messages`` (parsed with
``email.policy.default``, in the order received).

Run as a script: ``python tests/smtp_process.py PORT SPOOL``; prints ``ready`` once listening.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from email import message_from_bytes, policy
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

_LENGTH = struct.Struct(">I")


class ProcessSMTPRecorder:
    def __init__(self, port: int, spool: Path):
        self.port = port
        self.spool = spool
        self._offset = 0
        self._raw: list[bytes] = []
        self._messages: list = []
        self._process: subprocess.Popen | None = None

    def start(self) -> ProcessSMTPRecorder:
        self.spool.write_bytes(b"")
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(self.port), str(self.spool)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        line = self._process.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError(f"the SMTP server process did not start: {line!r}")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process.stdout.close()
            self._process = None

    @property
    def raw_messages(self) -> list[bytes]:
        """The messages as received (bytes), in order."""
        with self.spool.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        at = 0
        while at + _LENGTH.size <= len(data):
            (n,) = _LENGTH.unpack_from(data, at)
            if at + _LENGTH.size + n > len(data):
                break  # being written: the sender has not had its 250 for it yet
            self._raw.append(data[at + _LENGTH.size : at + _LENGTH.size + n])
            at += _LENGTH.size + n
        self._offset += at
        return self._raw

    @property
    def messages(self) -> list:
        """The messages parsed with ``email.policy.default``, in order."""
        raw = self.raw_messages
        self._messages.extend(
            message_from_bytes(m, policy=policy.default) for m in raw[len(self._messages) :]
        )
        return self._messages

    def header(self, name: str) -> list[str]:
        """One header of every message as its raw text (unfolded), in order: for thousands of
        messages, without parsing their MIME parts."""
        parser = BytesHeaderParser(policy=compat32)
        return [str(parser.parsebytes(m)[name]) for m in self.raw_messages]


def _serve(port: int, spool: str) -> None:
    import signal
    import threading

    from aiosmtpd.controller import Controller

    out = open(spool, "ab", buffering=0)  # noqa: SIM115 (open for the process's life)

    class Spool:
        async def handle_DATA(self, server, session, envelope):
            content = envelope.content
            out.write(_LENGTH.pack(len(content)) + content)  # one write, before the 250
            return "250 OK"

    controller = Controller(Spool(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    while not stop.wait(0.5):
        pass
    controller.stop()
    out.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2])
