"""Real Postgres (migrated with Alembic), real Redis, the partner sandbox over HTTP, and a real arq worker."""

import os
import socket

# The `smtp_sink` fixture's port, chosen now so that every process started later (the live API, workers) gets
# SMTP_URL from the environment.
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    SMTP_PORT = int(probe.getsockname()[1])
# Settings are read when the app and worker modules are imported: set the test environment first.
# Overridable so that several checkouts (or people) can run the suite at once on one machine.
TEST_DATABASE = os.environ.get("TEST_DATABASE_NAME", "lucca_connectors_test")
os.environ.update(
    {
        "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{TEST_DATABASE}",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1"),
        "APP_ENV": "test",
        "ADMIN_TOKEN": "test-operator-token",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ALLOW_HTTP_UPSTREAMS": "true",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "2",
        "RETRY_IN_CALL_SECONDS": "1",
        "JOB_TIMEOUT_SECONDS": "15",
        "SWEEP_EVERY_SECONDS": "1",
        "SMTP_URL": f"smtp://127.0.0.1:{SMTP_PORT}?from=alerts@connectors.test",
    }
)

import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402
from tests.sandbox_server import SandboxServer  # noqa: E402
from tests.smtp_sink import SmtpSink  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": "Bearer test-operator-token"}


@pytest.fixture(scope="session")
def migrated_database() -> str:
    """A fresh test database, migrated by the real Alembic migrations."""
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", TEST_DATABASE], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", TEST_DATABASE], check=True)
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, check=True, env=os.environ.copy())
    return os.environ["DATABASE_URL"]


@pytest.fixture
async def clean_state(migrated_database: str) -> None:
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("TRUNCATE tenants CASCADE")
    finally:
        await connection.close()
    redis = Redis.from_url(os.environ["REDIS_URL"])
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
async def app(clean_state: None) -> AsyncIterator[FastAPI]:
    application = create_app(Settings())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def live_api(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The API as production runs it: a `uvicorn app.main:app` process, reached over TCP."""
    server = LiveServer(tmp_path_factory.mktemp("live-api") / "api.log")
    server.start()
    yield server
    server.stop()


# What the live server logs for an answer of 500 or an exception nothing handled: either fails the test.
SERVER_ERROR = re.compile(r'" 500\b|Exception in ASGI application|Traceback \(most recent call last\)')


@pytest.fixture(scope="session")
def live_api_log_checked() -> dict[str, int]:
    """How far the live server's log has been checked for server errors (shared by the tests of a session)."""
    return {"offset": 0}


@pytest.fixture(autouse=True)
def no_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any 500 the live server gives fails the test that caused it: bad input must always get a 4xx."""
    if "live_api" not in request.fixturenames:
        yield
        return
    live_api: LiveServer = request.getfixturevalue("live_api")
    checked: dict[str, int] = request.getfixturevalue("live_api_log_checked")
    yield
    time.sleep(0.05)  # the server writes its access line just after the answer has left
    with live_api.log_path.open("rb") as log:
        log.seek(checked["offset"])
        new = log.read().decode(errors="replace")
        checked["offset"] = log.tell()
    errors = [line for line in new.splitlines() if SERVER_ERROR.search(line)]
    assert not errors, "the live server answered 500 or failed:\n" + "\n".join(errors[:20]) + "\n" + new[-5000:]


@pytest.fixture
async def client(live_api: LiveServer, clean_state: None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the real server: what it sees is what the service's clients see (when answers leave, too)."""
    async with httpx.AsyncClient(base_url=live_api.url, timeout=30) as http:
        yield http


@pytest.fixture
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an in-process app, for tests that change or read the app's own state."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The partner sandbox, served over real HTTP so workers in other processes reach it too."""
    server = SandboxServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    """A real SMTP server at SMTP_URL, for the whole session."""
    sink = SmtpSink(SMTP_PORT)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink(smtp_server: SmtpSink) -> SmtpSink:
    """The SMTP server at SMTP_URL, holding only what this test sent it."""
    smtp_server.clear()
    return smtp_server
