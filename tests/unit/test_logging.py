"""Log lines: precise redaction, the text and JSON formats, the run's context, and one line per event."""

import asyncio
import contextvars
import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from arq.logs import default_log_config
from pydantic import BaseModel, ValidationError
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from app.clients.http import PartnerAuthFailed, PartnerHTTP, RetryPolicy
from app.logging import JsonFormatter, TextFormatter, bind_log_context, configure_logging, redact
from app.schemas.common import RequestBody
from app.schemas.connector import ConnectorRead
from app.schemas.tenant import TenantCreate
from app.services.connectors import KINDS

GUID = "6f1c2a7e-5b3d-4c2a-9e8f-0a1b2c3d4e5f"
LUCCA_KEY = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
PEM = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBK\nMCkGCSqGSIb3==\n-----END ENCRYPTED PRIVATE KEY-----\n"
PEM_IN_JSON = PEM.replace("\n", "\\n")  # as a JSON string or a repr writes it
FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.02, in_call_seconds=0.05)


ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'  # how uvicorn logs an answer


def access_args(path: str) -> tuple[str, str, str, str, int]:
    return ("127.0.0.1:50000", "POST", path, "1.1", 202)


def access_record(path: str) -> logging.LogRecord:
    """A record as uvicorn's access logger makes it: args is a tuple its formatter unpacks."""
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, ACCESS_FORMAT, access_args(path), None)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"POST /integrations/webhooks/cards/{GUID} HTTP/1.1", "POST /integrations/webhooks/cards/*** HTTP/1.1"),
        (f"/integrations/webhooks/cards/{GUID}?x=1", "/integrations/webhooks/cards/***?x=1"),
        (f"/integrations/webhooks/{GUID}", "/integrations/webhooks/***"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
        (f"Authorization: lucca application={LUCCA_KEY}", "Authorization: lucca application=***"),
        ("tenant key lct_Zx9-q_Y2aBcD created", "tenant key lct_*** created"),
        ("X-taleez-api-secret: taleez-secret-value", "X-taleez-api-secret: ***"),
        ('{"api_secret": "s3cr3t-value", "api_key_set": true}', '{"api_secret": "***", "api_key_set": true}'),
        ("GET /hook?token=abc123&page=2", "GET /hook?token=***&page=2"),
        ("{'passphrase': 'open sesame', 'port': 22}", "{'passphrase': '***', 'port': 22}"),
        ('password="two words" then', 'password="***" then'),
        (f'"private_key": "{PEM_IN_JSON}", "port": 22', '"private_key": "***", "port": 22'),
        (f"the key:\n{PEM}read", "the key:\n***\nread"),
        (f"cut short: {PEM[:80]}", "cut short: ***"),
    ],
)
def test_the_secret_itself_is_masked_and_nothing_else(line: str, expected: str) -> None:
    assert redact(line) == expected


def secret_field_names() -> set[str]:
    """Every secret the schemas define: connectors' secret settings, SecretStr fields, webhook tokens."""
    names = {field.rsplit(".", 1)[-1] for kind in KINDS.values() for field in kind.secret_fields}
    bodies: list[type[BaseModel]] = [RequestBody]
    while bodies:
        body = bodies.pop()
        bodies += body.__subclasses__()
        names |= {name for name, info in body.model_fields.items() if "SecretStr" in str(info.annotation)}
    return names | {name for name in ConnectorRead.model_fields if name.endswith("token")}


def test_every_secret_field_of_the_schemas_is_masked_whatever_its_quoting() -> None:
    names = secret_field_names()
    assert {"api_key", "client_secret", "api_secret", "api_token", "password", "private_key", "passphrase",
            "webhook_token"} <= names  # fmt: skip
    for name in names:
        for line in (f"{name}=s3cr3t", f'"{name}": "s3cr3t value"', f"'{name}': 's3cr3t value'", f"{name}: s3cr3t"):
            assert "s3cr3t" not in redact(line), line


@pytest.mark.parametrize("name", KINDS)
def test_settings_errors_never_quote_what_was_given(name: str) -> None:
    """A stored secret that stops validating must not reach a log line through its error's text."""
    values: dict[str, Any] = {}
    for field in [*KINDS[name].secret_fields, "unknown"]:
        *parents, key = field.split(".")
        holder = values
        for parent in parents:
            holder = holder.setdefault(parent, {})
        holder[key] = "s3cr3t\x00 value"  # refused by every secret's rules (and an unknown field too)
    with pytest.raises(ValidationError) as refused:
        KINDS[name].settings_model.model_validate(values)
    assert "s3cr3t" not in str(refused.value) and "input_value" not in str(refused.value)
    with pytest.raises(ValidationError) as refused:
        TenantCreate.model_validate({"slug": "acme", "name": "A", "lucca": {"base_url": "x", "api_key": "s3cr3t\x01"}})
    assert "s3cr3t" not in str(refused.value)


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:1 - "POST /integrations/webhooks/softgarden/candidate-hired HTTP/1.1" 202',
        "Lucca refused the credentials (HTTP 401): send 'Authorization: lucca application=<key>'",
        "the bearer token was refused; check the Authorization header",
        "Establishment 'Headquarters-Lyon' matches nothing in application settings",
        "run 1b4e28ba-2fa1-11d2-883f-0016d3cca427 postponed by 5.0 s: Lucca is unavailable (HTTP 503)",
    ],
)
def test_ordinary_words_route_names_and_run_ids_stay_readable(line: str) -> None:
    assert redact(line) == line


def test_the_text_formatter_redacts_the_line_without_breaking_the_record() -> None:
    record = access_record(f"/integrations/webhooks/cards/{GUID}")
    line = TextFormatter().format(record)
    assert line.endswith('INFO uvicorn.access: 127.0.0.1:50000 - "POST /integrations/webhooks/cards/*** HTTP/1.1" 202')
    assert GUID not in line
    # uvicorn's own access formatter, as another handler would run it next, still unpacks the record.
    assert record.args is not None and len(record.args) == 5
    assert "202 Accepted" in AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"]).format(record)


def test_an_exception_is_redacted_too() -> None:
    try:
        raise RuntimeError("Lucca said no to Bearer abc.def-123")
    except RuntimeError:
        record = logging.LogRecord("app.test", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    assert "abc.def" not in TextFormatter().format(record)
    assert "abc.def" not in JsonFormatter().format(record)
    assert "Bearer ***" in json.loads(JsonFormatter().format(record))["exception"]


def test_json_lines_carry_time_level_logger_message_and_the_bound_context() -> None:
    def log_inside_a_run() -> tuple[str, str]:
        bind_log_context(run="run-1", tenant="acme", connector="softgarden")
        record = logging.LogRecord(
            "app.clients.http", logging.WARNING, __file__, 1, "lucca %s", ("Bearer t0k3n",), None
        )
        return JsonFormatter().format(record), TextFormatter().format(record)

    json_line, text_line = contextvars.copy_context().run(log_inside_a_run)
    fields = json.loads(json_line)
    assert "\n" not in json_line
    assert datetime.fromisoformat(fields["time"]).utcoffset() == UTC.utcoffset(None)
    assert {key: value for key, value in fields.items() if key != "time"} == {
        "level": "WARNING",
        "logger": "app.clients.http",
        "message": "lucca Bearer ***",
        "run": "run-1",
        "tenant": "acme",
        "connector": "softgarden",
    }
    assert " WARNING app.clients.http [run=run-1 tenant=acme connector=softgarden]: lucca Bearer ***" in text_line
    # Outside that task nothing is bound.
    assert "run" not in json.loads(JsonFormatter().format(access_record("/healthz")))


@contextmanager
def fresh_process_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Logging as a new process finds it (no handler anywhere), writing to one stream; pytest's is put back after.

    Entered in the test body: pytest gives root its capture handlers when the test itself starts.
    """
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr("sys.stdout", stream)
    loggers = [logging.getLogger(name) for name in ("", "arq", "uvicorn", "uvicorn.access", "uvicorn.error")]
    saved = [(logger.handlers[:], logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.handlers = []
    try:
        yield stream
    finally:
        for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)


def test_under_arqs_logging_config_each_event_is_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_process_logging(monkeypatch) as stream:
        logging.config.dictConfig(default_log_config(verbose=False))  # what `arq` does before our start-up
        configure_logging("json")
        configure_logging("json")  # start-up may run again: still one handler
        logging.getLogger("arq.worker").info("Starting worker for %d functions", 1)
        logging.getLogger("app.workers.tasks").info("sweep queued %d run(s)", 2)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("arq.worker", "Starting worker for 1 functions"),
        ("app.workers.tasks", "sweep queued 2 run(s)"),
    ]


def test_under_uvicorns_logging_config_each_event_is_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_process_logging(monkeypatch) as stream:
        logging.config.dictConfig(LOGGING_CONFIG)  # what `uvicorn` does before it imports the app
        configure_logging("text")
        logging.getLogger("uvicorn.error").info("Application startup complete.")
        logging.getLogger("uvicorn.access").info(ACCESS_FORMAT, *access_args(f"/integrations/webhooks/cards/{GUID}"))
        logging.getLogger("app.services.execution").info("run postponed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("INFO uvicorn.error: Application startup complete.")
    assert lines[1].endswith(
        'INFO uvicorn.access: 127.0.0.1:50000 - "POST /integrations/webhooks/cards/*** HTTP/1.1" 202'
    )
    assert lines[2].endswith("INFO app.services.execution: run postponed")


@respx.mock
async def test_partner_messages_lose_only_the_credential() -> None:
    said = f"Unauthorized: send 'Authorization: lucca application=<key>' (got {LUCCA_KEY}); see application/json docs"
    respx.get("https://acme.ilucca.test/api/v3/users").mock(return_value=httpx.Response(401, json={"Message": said}))
    headers = {"Authorization": f"lucca application={LUCCA_KEY}", "Accept": "application/json"}
    async with httpx.AsyncClient() as http:
        lucca = PartnerHTTP(http, partner="lucca", base_url="https://acme.ilucca.test", headers=headers, retry=FAST)
        with pytest.raises(PartnerAuthFailed) as caught:
            await lucca.request("GET", "/api/v3/users")
    message = caught.value.message
    assert LUCCA_KEY not in message
    assert "send 'Authorization: lucca application=<key>' (got ***); see application/json docs" in message


@respx.mock
async def test_the_retry_line_names_the_tenant_and_the_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.clients.http")
    respx.get("https://acme.ilucca.test/api/v3/users").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={})]
    )

    async def call_inside_a_run() -> str:
        # Its own task, as each arq job is: the context bound here stays here.
        bind_log_context(run="1b4e28ba-2fa1-11d2-883f-0016d3cca427", tenant="acme", connector="softgarden")
        async with httpx.AsyncClient() as http:
            lucca = PartnerHTTP(http, partner="lucca", base_url="https://acme.ilucca.test", headers={}, retry=FAST)
            await lucca.request("GET", "/api/v3/users")
        [record] = caplog.records
        return TextFormatter().format(record)

    line = await asyncio.create_task(call_inside_a_run())
    assert "[run=1b4e28ba-2fa1-11d2-883f-0016d3cca427 tenant=acme connector=softgarden]" in line
    assert "lucca GET /api/v3/users failed (503)" in line
