"""The HTTP API: `uvicorn app.main:app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.logging import configure_logging
from app.metrics import Flusher, metrics
from app.routers import connectors, operations, runs, taleez, tenants, webhooks
from app.services.context import Services

DESCRIPTION = """Connects Lucca to Softgarden, Taleez, Cards and Elevo for many tenants.

Operator calls use `Authorization: Bearer <ADMIN_TOKEN>`; tenant calls `Authorization: Bearer <tenant key>`;
webhooks the connector's own token. Errors are JSON `{"detail": ...}`."""


class RequestMetrics:
    """Counts every answer by method, route template (never the raw path, which may hold a token) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.inc("http_requests_total", method=scope["method"], route=route, status=str(status))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_format)
        services = Services.start(settings, pool_size=settings.api_database_pool_size)
        app.state.services = services
        app.state.sessionmaker = services.sessionmaker
        flusher = Flusher(services.redis)
        try:
            yield
        finally:
            await flusher.stop()
            await services.close()

    app = FastAPI(title="lucca-connectors", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    for module in (tenants, connectors, runs, taleez, webhooks, operations):
        app.include_router(module.router)
    app.add_middleware(RequestMetrics)
    return app


app = create_app()
