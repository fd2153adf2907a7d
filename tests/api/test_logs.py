"""What the real processes write: one line per event, no traceback for normal requests, no secret, JSON on demand."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import TenantHandle, add_softgarden, create_tenant, hire_body
from tests.live_server import ROOT, LiveServer
from tests.sandbox_server import SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"
CARDS_TOKEN = "6f1c2a7e-5b3d-4c2a-9e8f-0a1b2c3d4e5f"
ARQ = str(Path(sys.executable).parent / "arq")


@pytest.fixture(scope="module")
def json_api(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A second `uvicorn app.main:app`, with LOG_FORMAT=json."""
    server = LiveServer(tmp_path_factory.mktemp("json-api") / "api.log", env={"LOG_FORMAT": "json"})
    server.start()
    yield server
    server.stop()


async def logged_after(server: LiveServer, start: int, marker: str) -> str:
    """What the server wrote since `start`, once `marker` is in it (the access line follows the answer closely)."""
    for _ in range(100):
        written = server.log()[start:]
        if marker in written:
            break
        await asyncio.sleep(0.05)
    return written


async def answer_webhooks(http: httpx.AsyncClient, tenant: TenantHandle, probe: str) -> None:
    """A hire (202), and a webhook whose path holds a token (a kind not served yet)."""
    answer = await http.post(f"{WEBHOOK}?probe={probe}", json=hire_body(), headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    await http.post(f"/integrations/webhooks/cards/{CARDS_TOKEN}?probe={probe}", json={})


def assert_no_secret(text: str, tenant: TenantHandle) -> None:
    assert tenant.webhook_token and tenant.key
    for secret in (tenant.webhook_token, tenant.key, CARDS_TOKEN, "test-operator-token"):
        assert secret not in text


async def test_a_webhook_answer_is_one_access_line_without_traceback_or_token(
    client: httpx.AsyncClient, live_api: LiveServer
) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    start, probe = len(live_api.log()), uuid.uuid4().hex
    await answer_webhooks(client, tenant, probe)
    written = await logged_after(live_api, start, f"/integrations/webhooks/cards/***?probe={probe}")
    access = [line for line in written.splitlines() if probe in line]
    assert len(access) == 2, written
    assert re.search(
        rf'Z INFO uvicorn\.access: 127\.0\.0\.1:\d+ - "POST {WEBHOOK}\?probe={probe} HTTP/1\.1" 202$', access[0]
    )
    assert f'"POST /integrations/webhooks/cards/***?probe={probe} HTTP/1.1"' in access[1]
    assert "Logging error" not in written and "Traceback" not in written
    assert_no_secret(written, tenant)


async def test_json_logs_are_one_object_per_line(client: httpx.AsyncClient, json_api: LiveServer) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    start, probe = len(json_api.log()), uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=json_api.url, timeout=30) as http:
        await answer_webhooks(http, tenant, probe)
    written = await logged_after(json_api, start, f"/integrations/webhooks/cards/***?probe={probe}")
    lines = [json.loads(line) for line in written.splitlines()]
    access = [line for line in lines if probe in line["message"]]
    assert [line["logger"] for line in access] == ["uvicorn.access", "uvicorn.access"]
    assert access[0]["message"].endswith(f'"POST {WEBHOOK}?probe={probe} HTTP/1.1" 202')
    assert f"/integrations/webhooks/cards/***?probe={probe}" in access[1]["message"]
    assert {"time", "level", "logger", "message"} <= set(access[0])
    assert_no_secret(written, tenant)


def run_worker(log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """A real `arq app.workers.WorkerSettings` process writing everything to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [ARQ, "app.workers.WorkerSettings"], cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log
        )


async def wait_until_finished(client: httpx.AsyncClient, tenant: TenantHandle, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}", headers=tenant.auth)
        run: dict[str, Any] = answer.json()
        if run["status"] in ("succeeded", "partial", "failed") or time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.2)


async def test_the_worker_writes_each_event_once_naming_the_run(
    client: httpx.AsyncClient, sandbox: SandboxServer, tmp_path: Path
) -> None:
    lucca = sandbox.new_lucca_account()
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    tenant = await add_softgarden(client, tenant)
    lucca.add_faults({"status": 503, "count": 1})
    answer = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    run_id = answer.json()["run_id"]
    log_path = tmp_path / "worker.log"
    worker = run_worker(log_path, LOG_FORMAT="json")
    try:
        assert (await wait_until_finished(client, tenant, run_id))["status"] == "succeeded"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    text = log_path.read_text()
    raw = text.splitlines()
    # arq writes its first lines ("Starting worker", Redis's version) before our start-up hook runs.
    first_ours = next(index for index, line in enumerate(raw) if line.startswith("{"))
    assert first_ours <= 2, text
    lines = [json.loads(line) for line in raw[first_ours:]]
    events = Counter((line["time"], line["logger"], line["message"]) for line in lines)
    assert [event for event, count in events.items() if count > 1] == [], text
    [retry] = [line for line in lines if "failed (503)" in line["message"]]
    assert (retry["logger"], retry["level"]) == ("app.clients.http", "WARNING")
    assert (retry["run"], retry["tenant"], retry["connector"]) == (run_id, "acme", "softgarden")
    assert "Traceback" not in text and "Logging error" not in text
    assert lucca.api_key not in text and tenant.key not in text
