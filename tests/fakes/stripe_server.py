"""A small Stripe-shaped HTTP server that the real ``stripe`` library talks to in tests.

It stands where the network would be: the portal is configured with
``STRIPE_API_BASE = fake.url`` and its ``StripeClient`` sends real HTTP requests here.

What it does, as Stripe does:
- ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/<id>``,
  ``POST /v1/checkout/sessions/<id>/expire``, ``POST /v1/refunds``;
  form-encoded parameters (``metadata[registration_id]=1``), the secret key as a bearer token,
  idempotency keys (the same key answers the same object; other parameters are an error; a
  second request while the first with that key is still running gets 409);
- a hosted "checkout" page ``/pay/<session_id>`` with a Pay button: paying marks the session
  complete, sends the signed ``checkout.session.completed`` webhook to ``webhook_url`` and
  redirects the browser to the session's ``success_url``;
- events signed with ``stripe.WebhookSignature.generate_signature_header``.

Knobs for failure tests: ``delay`` (seconds to wait before answering API requests, after doing
the work, like a slow network) and ``fail_with`` (an HTTP status to answer instead).

Without ``webhook_url`` the events are only collected in ``events`` so that a test can deliver
them itself (``signed(event)`` gives the body and headers to post).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import stripe

API_VERSION = "2025-01-27.acacia"


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def decode_params(pairs: list[tuple[str, str]]) -> dict:
    """``a[b][0][c]=x`` → ``{"a": {"b": [{"c": "x"}]}}`` (Stripe's form encoding)."""
    root: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


class FakeStripe:
    """The fake's state and its knobs; ``start()`` serves it on 127.0.0.1 and a free port."""

    def __init__(self, secret_key: str = "sk_test_fake", webhook_secret: str = "whsec_fake"):
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.webhook_url: str | None = None
        self.delay = 0.0
        self.fail_with: int | None = None
        self.sessions: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}  # by payment intent id
        self.refunds: dict[str, dict] = {}
        self.events: list[dict] = []
        self.deliveries: list[tuple[str, int]] = []  # (event id, HTTP status)
        self.requests: list[dict] = []
        self._idempotent: dict[str, tuple[dict, int, dict]] = {}
        self._in_flight: set[str] = set()  # idempotency keys of requests being answered
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- running ---------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        return self

    def stop(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- objects ---------------------------------------------------------------------------

    def create_session(self, params: dict) -> dict:
        items = params.get("line_items") or []
        amount = 0
        currency = None
        for item in items:
            data = item.get("price_data") or {}
            amount += int(data.get("unit_amount", 0)) * int(item.get("quantity", 1))
            currency = data.get("currency", currency)
        session_id = _new_id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "currency": (currency or "jpy").lower(),
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "created": int(time.time()),
            "expires_at": int(params.get("expires_at") or time.time() + 86400),
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": params.get("metadata") or {},
            "mode": params.get("mode", "payment"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"{self.url}/pay/{session_id}",
            "payment_intent_data": params.get("payment_intent_data") or {},
        }
        with self._lock:
            self.sessions[session_id] = session
        return session

    def public_session(self, session: dict) -> dict:
        out = {k: v for k, v in session.items() if k != "payment_intent_data"}
        return json.loads(json.dumps(out))

    def complete(self, session_id: str, *, amount_total: int | None = None, currency=None):
        """The customer pays: the session completes; returns ``checkout.session.completed``."""
        with self._lock:
            session = self.sessions[session_id]
            if amount_total is not None:
                session["amount_total"] = amount_total
            if currency is not None:
                session["currency"] = currency.lower()
            if session["status"] != "complete":
                payment_intent = _new_id("pi")
                session.update(status="complete", payment_status="paid")
                session["payment_intent"] = payment_intent
                self.charges[payment_intent] = {
                    "id": _new_id("ch"),
                    "object": "charge",
                    "amount": session["amount_total"],
                    "amount_captured": session["amount_total"],
                    "amount_refunded": 0,
                    "currency": session["currency"],
                    "paid": True,
                    "payment_intent": payment_intent,
                    "refunded": False,
                    "status": "succeeded",
                    "metadata": (session["payment_intent_data"] or {}).get("metadata") or {},
                }
            return self.event("checkout.session.completed", self.public_session(session))

    def expire(self, session_id: str) -> dict:
        """The session runs out; returns ``checkout.session.expired``."""
        with self._lock:
            session = self.sessions[session_id]
            session["status"] = "expired"
            return self.event("checkout.session.expired", self.public_session(session))

    def refund(self, params: dict) -> dict:
        payment_intent = params.get("payment_intent")
        with self._lock:
            charge = self.charges.get(payment_intent)
            if charge is None:
                raise _ApiError(
                    404, f"No such payment_intent: {payment_intent}", "resource_missing"
                )
            left = charge["amount"] - charge["amount_refunded"]
            amount = int(params.get("amount") or left)
            if amount <= 0 or amount > left:
                raise _ApiError(
                    400,
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                    "amount_too_large",
                )
            refund = {
                "id": _new_id("re"),
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": payment_intent,
                "status": "succeeded",
                "metadata": params.get("metadata") or {},
                "created": int(time.time()),
            }
            self.refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self.event("charge.refunded", json.loads(json.dumps(charge)))
            return refund

    def event(self, event_type: str, obj: dict) -> dict:
        event = {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
        with self._lock:
            self.events.append(event)
        return event

    def last_event(self, event_type: str) -> dict:
        return [e for e in self.events if e["type"] == event_type][-1]

    # -- webhooks --------------------------------------------------------------------------

    def signed(self, event: dict, *, timestamp: int | None = None, secret: str | None = None):
        """The body and headers of a webhook delivery, signed as Stripe signs them."""
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(
            payload, secret or self.webhook_secret, timestamp=timestamp
        )
        return payload.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}

    def deliver(self, event: dict) -> int:
        """POST the signed event to ``webhook_url``; returns the HTTP status."""
        body, headers = self.signed(event)
        request = urllib.request.Request(self.webhook_url, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        with self._lock:
            self.deliveries.append((event["id"], status))
        return status

    def deliver_later(self, event: dict) -> None:
        if not self.webhook_url:
            return
        thread = threading.Thread(target=self.deliver, args=(event,), daemon=True)
        self._threads.append(thread)
        thread.start()


class _ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = "", kind="invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "message": message, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    # -- plumbing --------------------------------------------------------------------------

    def _body_pairs(self) -> list[tuple[str, str]]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        return parse_qsl(raw, keep_blank_values=True)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (timeout tests)

    def _json(self, status: int, obj: dict):
        self._send(status, json.dumps(obj).encode(), "application/json", {"Request-Id": "req_fake"})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str):
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/pay/"):
            return self._hosted(method, path.removeprefix("/pay/"))
        pairs = self._body_pairs() if method == "POST" else parse_qsl(parts.query)
        params = decode_params(pairs)
        fake = self.fake
        key = self.headers.get("Idempotency-Key")
        with fake._lock:
            fake.requests.append(
                {"method": method, "path": path, "params": params, "idempotency_key": key}
            )
        if self.headers.get("Authorization") != f"Bearer {fake.secret_key}":
            return self._json(
                401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
            )
        if fake.fail_with:
            return self._json(
                fake.fail_with, {"error": {"type": "api_error", "message": "Fake failure"}}
            )
        try:
            status, body = self._api(method, path, params, key)
        except _ApiError as error:
            status, body = error.status, error.body
        if fake.delay:
            time.sleep(fake.delay)
        return self._json(status, body)

    def _api(self, method: str, path: str, params: dict, key: str | None):
        fake = self.fake
        if method == "POST" and key:
            with fake._lock:
                seen = fake._idempotent.get(key)
                busy = seen is None and key in fake._in_flight
                if seen is None and not busy:
                    fake._in_flight.add(key)
            if busy:
                # As Stripe does: a second request with a key whose first is still running.
                raise _ApiError(
                    409,
                    "There is currently another in-progress request using this Idempotency "
                    "Key. Please try again later.",
                    "idempotency_key_in_use",
                    kind="idempotency_error",
                )
            if seen is not None:
                old_params, status, body = seen
                if old_params != {"path": path, **params}:
                    raise _ApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters.",
                        "idempotency_key_in_use",
                        kind="idempotency_error",
                    )
                return status, body
        try:
            status, body = self._route(method, path, params)
        except _ApiError:
            if method == "POST" and key:
                with fake._lock:
                    fake._in_flight.discard(key)
            raise
        if method == "POST" and key:
            with fake._lock:
                fake._idempotent[key] = ({"path": path, **params}, status, body)
                fake._in_flight.discard(key)
        return status, body

    def _route(self, method: str, path: str, params: dict):
        fake = self.fake
        segments = [s for s in path.split("/") if s]
        if segments[:3] == ["v1", "checkout", "sessions"]:
            if len(segments) == 3 and method == "POST":
                return 200, fake.public_session(fake.create_session(params))
            session = fake.sessions.get(segments[3]) if len(segments) > 3 else None
            if session is None:
                raise _ApiError(404, "No such checkout.session", "resource_missing")
            if len(segments) == 4 and method == "GET":
                return 200, fake.public_session(session)
            if len(segments) == 5 and segments[4] == "expire" and method == "POST":
                if session["status"] != "open":
                    raise _ApiError(400, "Only open sessions can be expired.", "session_not_open")
                event = fake.expire(session["id"])
                fake.deliver_later(event)
                return 200, fake.public_session(session)
        if segments == ["v1", "refunds"] and method == "POST":
            refund = fake.refund(params)
            fake.deliver_later(fake.last_event("charge.refunded"))
            return 200, refund
        raise _ApiError(404, f"Unrecognized request URL ({method}: {path})")

    # -- the hosted checkout page ----------------------------------------------------------

    def _hosted(self, method: str, session_id: str):
        fake = self.fake
        session = fake.sessions.get(session_id)
        if session is None:
            return self._send(404, b"No such session", "text/plain")
        if method == "POST":
            self._body_pairs()
            if session["status"] == "open":
                event = fake.complete(session_id)
                if fake.webhook_url:
                    fake.deliver(event)
            location = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
            return self._send(303, b"", "text/plain", {"Location": location})
        amount = session["amount_total"]
        currency = session["currency"].upper()
        shown = f"{amount / 100:.2f}" if currency not in {"JPY", "KRW"} else f"{amount:,}"
        state = session["status"]
        html = f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Fake Checkout</title>
</head><body><h1>Fake Checkout</h1>
<p id="amount">{escape(currency)} {escape(shown)}</p><p id="status">{escape(state)}</p>
<form method="post" action="/pay/{escape(session_id)}">
<button type="submit" id="pay"{" disabled" if state != "open" else ""}>Pay</button></form>
<p><a id="cancel" href="{escape(session["cancel_url"] or "")}">Cancel</a></p>
</body></html>"""
        return self._send(200, html.encode(), "text/html; charset=utf-8")
