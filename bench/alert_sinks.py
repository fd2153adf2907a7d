"""Where the alerts benchmarks' alerts arrive: an SMTP sink (aiosmtpd) and an HTTP receiver of webhook, Slack and
Teams alerts, each in a thread of the benchmark's own process, recording when every alert arrived.

The receiver verifies each webhook alert's Standard Webhooks signature with the `standardwebhooks` package's own
verifier, using the secret its channel was given (shown once, in the answer to the PUT of the tenant's channels).
"""

import email
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks import Webhook, WebhookVerificationError

from bench.harness import (
    HOST,
    BenchError,
    Endpoint,
    Processes,
    Service,
    ServiceConfig,
    Tenant,
    errors_logged,
    expect,
    free_port,
    private_state,
    start_api,
    start_worker,
    worker_started,
)

# Alerts carry the console's address of the run (contract 14); nothing is served there.
PUBLIC_BASE_URL = "https://connectors.bench.example"


@dataclass(frozen=True)
class Arrival:
    """One alert as it arrived: when (`time.time()`), for which tenant, by which channel kind, and what it said."""

    at: float
    slug: str
    kind: str  # email | webhook | slack | teams
    alert_id: str  # the delivery's id: the e-mail's Message-ID, the webhook's `webhook-id`
    event: str  # the webhook's type (`problem.opened`…), or the e-mail's subject line
    verified: bool  # the signature of a webhook alert checked; True for the other kinds
    body: str


class Arrivals:
    """Every alert received so far, shared by the sinks' threads and the benchmark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Arrival] = []

    def add(self, arrival: Arrival) -> None:
        with self._lock:
            self._items.append(arrival)

    def all(self) -> list[Arrival]:
        with self._lock:
            return list(self._items)

    def of(self, slug: str, kind: str | None = None) -> list[Arrival]:
        return [one for one in self.all() if one.slug == slug and kind in (None, one.kind)]


# ----------------------------------------------------------------------------------------------------
# E-mail: recipients are `alerts+<tenant slug>@…`, which tells whose alert a message is.


def email_address(slug: str) -> str:
    return f"alerts+{slug}@acme.fr"


def slug_of_address(address: str) -> str:
    return address.split("@", 1)[0].removeprefix("alerts+")


class SmtpRecorder:
    """aiosmtpd's handler: takes every message and records its arrival for each recipient."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        at = time.time()
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        mail = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(mail, EmailMessage)
        # Decoded (not quoted-printable), so that what it says can be searched.
        parts = [mail.get_body((subtype,)) for subtype in ("plain", "html")]
        text = "\n".join(part.get_content() for part in parts if isinstance(part, EmailMessage))
        for recipient in envelope.rcpt_tos:
            self.arrivals.add(
                Arrival(
                    at=at,
                    slug=slug_of_address(recipient),
                    kind="email",
                    alert_id=str(mail.get("Message-ID", "")).strip(" <>").split("@", 1)[0],
                    event=str(mail.get("Subject", "")).strip(),
                    verified=True,
                    body=text,
                )
            )
        return "250 Message accepted"


@contextmanager
def smtp_sink(arrivals: Arrivals) -> Iterator[str]:
    """An SMTP server on 127.0.0.1 (no TLS, no authentication) for the block's duration; yields its SMTP_URL."""
    port = free_port()
    controller = Controller(SmtpRecorder(arrivals), hostname=HOST, port=port)
    controller.start()
    try:
        yield f"smtp://{HOST}:{port}?from=alerts@bench.example"
    finally:
        controller.stop()


# ----------------------------------------------------------------------------------------------------
# HTTP: alerts are posted to `/<kind>/<tenant slug>`; webhook alerts are verified with that tenant's secret.


class WebhookSecrets:
    """The signing secret of each tenant's webhook channel, as the PUT of its channels showed it (once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}

    def set(self, slug: str, secret: str) -> None:
        with self._lock:
            self._secrets[slug] = secret

    def get(self, slug: str) -> str | None:
        with self._lock:
            return self._secrets.get(slug)


def verified(secrets: WebhookSecrets, slug: str, body: bytes, headers: dict[str, str]) -> bool:
    secret = secrets.get(slug)
    if secret is None:
        return False
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def alert_fields(kind: str, body: bytes, headers: dict[str, str]) -> tuple[str, str]:
    """The alert's id and event as a receiver sees them: Standard Webhooks' headers and type for a webhook;
    Slack and Teams carry only words, so their whole text stands for both."""
    if kind == "webhook":
        try:
            event = str(json.loads(body).get("type", ""))
        except (ValueError, AttributeError):
            event = ""
        return headers.get("webhook-id", ""), event
    return "", body.decode(errors="replace")[:200]


def receiver_handler(arrivals: Arrivals, secrets: WebhookSecrets) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            at = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.strip("/").split("/")
            if len(parts) != 2:
                self.send_response(404)
                self.end_headers()
                return
            kind, slug = parts
            headers = {name.lower(): value for name, value in self.headers.items()}
            alert_id, event = alert_fields(kind, body, headers)
            is_verified = verified(secrets, slug, body, headers) if kind == "webhook" else True
            arrivals.add(Arrival(at, slug, kind, alert_id, event, is_verified, body.decode(errors="replace")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the benchmark reports what arrived."""

    return Receiver


@contextmanager
def http_receiver(arrivals: Arrivals, secrets: WebhookSecrets) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 taking alerts at `/<kind>/<slug>` for the block's duration; yields its base URL."""
    server = ThreadingHTTPServer((HOST, free_port()), receiver_handler(arrivals, secrets))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="alert-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ----------------------------------------------------------------------------------------------------
# A tenant's channels pointing at these sinks, and a hire that fails at once.


def sink_channels(slug: str, receiver_url: str, kinds: Sequence[str]) -> list[dict[str, Any]]:
    """The tenant's channels of these kinds, each delivering to the sinks under the tenant's slug."""
    return [
        {"kind": "email", "to": [email_address(slug)]}
        if kind == "email"
        else {"kind": kind, "url": f"{receiver_url}/{kind}/{slug}"}
        for kind in kinds
    ]


def put_sink_channels(
    api: httpx.Client, tenant: Tenant, receiver_url: str, secrets: WebhookSecrets, kinds: Sequence[str]
) -> None:
    """PUT the tenant's channels; keep its webhook channel's signing secret (shown this once) for the receiver."""
    body = {"channels": sink_channels(tenant.slug, receiver_url, kinds)}
    answer = expect(api.put(f"/api/v1/tenants/{tenant.slug}/alerts", json=body, headers=tenant.auth), 200, "put alerts")
    for channel in answer["channels"]:
        if channel["kind"] == "webhook":
            if not str(channel.get("secret") or "").startswith("whsec_"):
                raise BenchError(f"the webhook channel of {tenant.slug} came back without its secret: {channel}")
            secrets.set(tenant.slug, channel["secret"])


def failing_hire(application_id: str) -> dict[str, Any]:
    """A Softgarden hire whose run fails at once, before any call to Lucca: a first name without a letter or digit
    gives no address and matches no one (app/services/hire.py `check_names`)."""
    return {
        "applicationId": application_id,
        "firstName": "***",
        "lastName": "Bench",
        "email": f"{application_id}@personal.example",
        "company": "Acme Berlin",
        "startDate": "2026-12-01",
    }


@dataclass(frozen=True)
class AlertedService:
    """The service's API and workers, started with their alerts going to this process's sinks."""

    processes: Processes
    config: ServiceConfig
    api: Endpoint
    workers: list[Service]
    receiver: str
    arrivals: Arrivals
    webhook_secrets: WebhookSecrets

    def errors_logged(self) -> int:
        """The errors the API and the workers logged."""
        return sum(errors_logged(service) for service in (self.api.service, *self.workers))


@contextmanager
def alerted_service(bench: str, database: str, workers: int) -> Iterator[AlertedService]:
    arrivals, webhook_secrets = Arrivals(), WebhookSecrets()
    with (
        smtp_sink(arrivals) as smtp_url,
        http_receiver(arrivals, webhook_secrets) as receiver,
        Processes(bench) as processes,
    ):
        config = private_state(processes, database, {"SMTP_URL": smtp_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL})
        api = start_api(processes, config)
        started = [start_worker(processes, config, name=f"worker-{number}") for number in range(workers)]
        for worker in started:
            worker_started(worker)
        yield AlertedService(processes, config, api, started, receiver, arrivals, webhook_secrets)
