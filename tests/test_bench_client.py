"""The rush's sender (bench/common.send_at_once) against a real HTTP server on 127.0.0.1.

Every request goes out on its own connection at the same moment; each answer's status,
headers, body and time are read from the bytes; a server that closes without answering or
never answers is an error (a str), not a response.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.common import Client, send_at_once


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if self.path == "/redirect":
            who = dict(pair.split("=") for pair in body.split("&"))["who"]
            self.send_response(302)
            self.send_header("Location", f"/my/registrations/{who}")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        if self.path == "/page":
            # A large body in several writes: the sender reads until Content-Length is in.
            payload = (self.headers["Cookie"] + "." * 200_000).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(0, len(payload), 7000):
                self.wfile.write(payload[i : i + 7000])
            return
        self.close_connection = True  # /drop: no answer at all

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.request_queue_size = 256
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_every_request_gets_its_own_answer(server):
    clients = {n: Client(server) for n in range(60)}
    for n, client in clients.items():
        client.cookies["session"] = f"s{n}"
    requests = {n: c.encoded("POST", "/redirect", [("who", str(n))]) for n, c in clients.items()}
    requests["page"] = clients[7].encoded("POST", "/page", [("x", "1")])

    answers = send_at_once(requests, timeout=30)

    assert set(answers) == set(requests)
    for n in clients:
        assert not isinstance(answers[n], str), answers[n]
        assert answers[n].status == 302
        assert answers[n].header("Location") == f"/my/registrations/{n}"
        assert 0 < answers[n].seconds < 30
    page = answers["page"]
    assert page.status == 200 and page.body == "session=s7" + "." * 200_000


def test_a_closed_connection_and_a_closed_port_are_errors(server):
    client = Client(server)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    answers = send_at_once({"drop": client.encoded("POST", "/drop", [("a", "b")])}, 10)
    assert answers["drop"].startswith("incomplete answer")

    refused = send_at_once({"x": Client(closed_port).encoded("GET", "/")}, 10)
    assert "Connection refused" in refused["x"]


def test_a_server_that_never_answers_runs_out_of_time():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, reads nothing, answers nothing
        port = silent.getsockname()[1]
        answers = send_at_once({"x": Client(port).encoded("POST", "/", [("a", "b")])}, 1.5)
    assert answers["x"] == "no answer in time"
