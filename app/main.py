"""The HTTP API: `uvicorn app.main:app`."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import WEBHOOK_SCHEME, WEBHOOK_SECURITY_SCHEME
from app.config import Settings, get_settings
from app.db import create_driver_pool
from app.direct_routes import DirectRoutes
from app.errors import install_error_handlers
from app.json_body import BODY_READ_SECONDS, MAX_BODY_BYTES, MAX_DEPTH, MAX_NUMBER_CHARS
from app.logging import configure_logging
from app.metrics import Flusher, metrics
from app.query_params import refuse_unknown_query_parameters
from app.routers import (
    alert_problems,
    alerts,
    cards,
    cards_stats,
    connector_checks,
    connectors,
    console,
    directory,
    elevo,
    operations,
    runs,
    taleez,
    tenants,
    webhooks,
)
from app.schemas.alerts import ALERT_URL_MARKS, NEEDS_SMTP_MARK
from app.schemas.common import PARTNER_URL_MARK, alert_url_pattern, partner_url_pattern
from app.services.context import Services

DESCRIPTION = f"""Connects Lucca to Softgarden, Taleez, Cards and Elevo for many tenants.

Operator calls use `Authorization: Bearer <ADMIN_TOKEN>`; tenant calls `Authorization: Bearer <tenant key>`;
webhooks the connector's own token ("Authorize" above takes each). Errors are JSON `{{"detail": ...}}`: a 422
lists one error per field, each naming it in `loc` (e.g. `["body", "settings", "default_department_id"]`).
A request body field that the schema does not define is refused; webhooks ignore the keys they do not use.

Bodies are JSON in UTF-8, at most {MAX_BODY_BYTES // 1024 // 1024} MiB, sent within {BODY_READ_SECONDS:g} seconds (408 otherwise, after the
credentials are checked), nested at most {MAX_DEPTH} levels deep, with numbers of at most {MAX_NUMBER_CHARS} characters (no NaN
or Infinity); no string holds the NUL character (U+0000) or a lone surrogate: each is a 422 naming its field."""


REQUEST_WAIT_SECONDS = 5.0


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
        # Partner calls made here (listings, previews, checks) have someone waiting on the answer: a short wait for
        # the shared rate limit and for retries, then a plain 503, instead of holding the request for a minute.
        services.retry = replace(
            services.retry,
            in_call_seconds=min(services.retry.in_call_seconds, REQUEST_WAIT_SECONDS),
            rate_wait_seconds=REQUEST_WAIT_SECONDS,
        )
        app.state.services = services
        app.state.sessionmaker = services.sessionmaker
        app.state.driver_pool = await create_driver_pool(settings.database_url, settings.api_webhook_pool_size)
        flusher = Flusher(services.redis)
        # What start-up made lives as long as the process: kept out of the collector's full passes, so an answer
        # made of many objects (a listing of 20,000 people) does not pay ~90 ms to walk them all again.
        gc.freeze()
        try:
            yield
        finally:
            await flusher.stop()
            await app.state.driver_pool.close()
            await services.close()

    # Swagger UI and ReDoc from the installed fastapi-offline package's assets: /docs works without internet.
    app = FastAPIOffline(
        title="lucca-connectors",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.settings = settings
    install_error_handlers(app)
    # The JSON API refuses query parameters it does not define (contract 3). Webhooks take partners' payloads as
    # they come; the probes, metrics and the console's page take none.
    api = (
        tenants, connectors, connector_checks, runs, taleez, cards, cards_stats, elevo, directory, alert_problems, alerts
    )  # fmt: skip
    for module in api:
        app.include_router(module.router, dependencies=[Depends(refuse_unknown_query_parameters)])
    for module in (webhooks, operations, console):
        app.include_router(module.router)
    # The webhooks are answered before FastAPI's own request handling (app.direct_routes).
    app.add_middleware(DirectRoutes, routes=webhooks.router.routes)
    app.add_middleware(RequestMetrics)
    app.openapi = lambda: openapi_document(app, settings)  # type: ignore[method-assign]
    return app


def openapi_document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's document, plus what it cannot see: the webhook's scheme, this deployment's partner URL rule, and
    whether it sends e-mail alerts."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[WEBHOOK_SCHEME] = WEBHOOK_SECURITY_SCHEME
        app.openapi_schema = _for_configuration(document, settings)
    return app.openapi_schema


def _for_configuration(node: Any, settings: Settings) -> Any:
    allow_http = settings.allow_http_upstreams
    if isinstance(node, dict):
        node = {key: _for_configuration(value, settings) for key, value in node.items()}
        mark = node.pop(PARTNER_URL_MARK, None)
        if mark:
            scheme = "https or http" if allow_http else "https"
            if mark in ALERT_URL_MARKS:
                masked = mark == ALERT_URL_MARKS[1]
                node["pattern"] = alert_url_pattern(allow_http, masked)
                node["description"] = f"An {scheme} URL: a host name, no credentials or fragment." + (
                    " Or the masked form GET shows of this kind's stored URL (its host and `…`): it keeps that URL."
                    if masked
                    else ""
                )
            else:
                node["pattern"] = partner_url_pattern(allow_http)
                node["description"] = f"An {scheme} URL: a host name, no credentials, query or fragment."
        node.pop(NEEDS_SMTP_MARK, None)
        return node
    if isinstance(node, list):
        # Without SMTP_URL, e-mail channels are refused: the document does not offer them.
        kept = [item for item in node if settings.smtp_url is not None or not _needs_smtp(item)]
        return [_for_configuration(item, settings) for item in kept]
    return node


def _needs_smtp(node: Any) -> bool:
    return isinstance(node, dict) and bool(node.get(NEEDS_SMTP_MARK))


app = create_app()
