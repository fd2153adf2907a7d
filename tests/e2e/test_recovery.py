"""Nothing is lost or done twice when Redis goes away or a worker dies (contract section 1, Recovery)."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from tests.e2e.conftest import WEBHOOK, HiringTenant, run_of
from tests.factories import TenantHandle, add_softgarden, create_tenant, hire_body
from tests.sandbox_server import LuccaAccount, free_port

pytestmark = pytest.mark.usefixtures("clean_state")
ROOT = Path(__file__).resolve().parents[2]
ARQ = str(Path(sys.executable).parent / "arq")


@contextmanager
def worker_process(**env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real `arq app.workers.WorkerSettings` process, as production runs it."""
    process = subprocess.Popen(
        [ARQ, "app.workers.WorkerSettings"], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


async def wait_for_run(client: httpx.AsyncClient, tenant: TenantHandle, run_id: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        run = await run_of(client, tenant, run_id)
        if run["status"] in ("succeeded", "partial", "failed") or time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.25)


@pytest.fixture
async def own_redis_client(clean_state: None) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, int]]:
    """The API wired to a Redis of its own, which the test can stop and start."""
    port = free_port()
    app = create_app(Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
    with redis_server(port):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                yield client, app, port


async def test_redis_down_when_the_webhook_arrives(
    own_redis_client: tuple[httpx.AsyncClient, FastAPI, int], lucca: LuccaAccount
) -> None:
    client, _, port = own_redis_client
    tenant = await add_softgarden(client, await create_tenant(client, "acme", base_url=lucca.base_url,
                                                               api_key=lucca.api_key))  # fmt: skip
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["down"] == ["redis"]
    accepted = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]
    assert (await run_of(client, tenant, run_id))["status"] == "queued"

    with redis_server(port), worker_process(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        run = await wait_for_run(client, tenant, run_id, seconds=60)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1
    assert len([user for user in lucca.users() if user["id"] > 102]) == 1


async def test_a_worker_killed_mid_job_finishes_once_after_restart(
    client: httpx.AsyncClient, hiring_tenant: HiringTenant, lucca: LuccaAccount
) -> None:
    tenant = await hiring_tenant()
    # Lucca creates the user, then the answer hangs: the worker dies before it learns the user exists.
    lucca.add_faults({"status": 503, "match": "POST /api/v3/users", "after": True, "delay_seconds": 20})
    accepted = await client.post(WEBHOOK, json=hire_body(), headers=tenant.webhook_auth)
    run_id = accepted.json()["run_id"]
    with worker_process() as first_worker:
        deadline = time.monotonic() + 30
        while not [user for user in lucca.users() if user["id"] > 102]:
            assert time.monotonic() < deadline, "the worker never reached Lucca"
            await asyncio.sleep(0.1)
        first_worker.send_signal(signal.SIGKILL)
    with worker_process():
        # arq takes the job up again once its in-progress mark expires (job timeout + 10 s).
        run = await wait_for_run(client, tenant, run_id, seconds=90)
    assert run["status"] == "succeeded"
    assert run["counts"]["created"] == 1 and run["counts"]["linked"] == 0
    assert len([user for user in lucca.users() if user["id"] > 102]) == 1
