"""The floor of webhook ingestion: a bare ASGI endpoint doing only what a stored hire must cost.

    uvicorn bench.floor_app:app --host 127.0.0.1 --port P     (DATABASE_URL and REDIS_URL as for the service)

Token lookup, the idempotent insert of delivery and run (the service's own statement), commit, enqueue, 202: with
raw asyncpg, arq's enqueue and plain uvicorn, no framework, no validation beyond what the insert needs. What the real
route costs above this is what FastAPI, validation and our own code add.
"""

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from arq.connections import ArqRedis, RedisSettings, create_pool

from app.crypto import hash_token
from app.queue import EXECUTE_RUN, run_job_id
from app.services.softgarden import CLAIM_AND_QUEUE

WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
TARGET = "SELECT tenant_id FROM connectors WHERE kind = 'softgarden' AND enabled AND webhook_token_hash = $1"
state: dict[str, Any] = {}


async def start() -> None:
    dsn = os.environ["DATABASE_URL"].replace("+asyncpg", "")
    state["db"] = await asyncpg.create_pool(dsn, min_size=10, max_size=50)
    state["redis"] = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))


async def stop() -> None:
    await state["db"].close()
    await state["redis"].aclose()


async def store_hire(token: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """The hire's delivery and run stored at once; the answer's status and body."""
    candidate = json.loads(body)
    db: asyncpg.Pool = state["db"]
    redis: ArqRedis = state["redis"]
    async with db.acquire() as connection:
        tenant_id = await connection.fetchval(TARGET, hash_token(token))
        if tenant_id is None:
            return 401, {"detail": "Missing or invalid credentials."}
        now = datetime.now(UTC)
        run_id = await connection.fetchval(
            CLAIM_AND_QUEUE,
            uuid.uuid4(), tenant_id, "softgarden", candidate["applicationId"], uuid.uuid4(), json.dumps(candidate),
            now, "candidate_hired", "queued", '{"total": 1}', json.dumps({"candidate": candidate}), None,
        )  # fmt: skip
    if run_id is None:
        return 200, {"duplicate": True}
    await redis.enqueue_job(EXECUTE_RUN, str(run_id), _job_id=run_job_id(run_id))
    return 202, {"run_id": str(run_id), "duplicate": False}


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] != WEBHOOK_PATH:  # readiness probe
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    headers = dict(scope["headers"])
    token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
    status, answer = await store_hire(token, await read_body(receive))
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
