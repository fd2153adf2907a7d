"""Liveness, readiness and metrics for the whole service."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from app.services.context import Services

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process is up."""
    return {"status": "ok"}


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    down: list[Literal["postgres", "redis"]] = Field(default=[], description="Only when unavailable.")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Names what is down."}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when Postgres and Redis answer, else 503 naming what is down."""
    services: Services = request.app.state.services
    down = []
    try:
        async with services.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        down.append("postgres")
    try:
        await services.redis.ping()
    except (RedisError, OSError):
        down.append("redis")
    if down:
        return JSONResponse({"status": "unavailable", "down": down}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        503: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Redis is down."},
    },
)
async def prometheus_metrics(request: Request) -> PlainTextResponse:
    """Prometheus text: requests, deliveries, runs, partner calls, rate-limit waits, queue depth."""
    services: Services = request.app.state.services
    try:
        body = await metrics.render(services.redis, services.redis.default_queue_name)
    except (RedisError, OSError):
        return PlainTextResponse("# metrics unavailable: Redis is down\n", status_code=503)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
