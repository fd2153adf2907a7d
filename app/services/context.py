"""What the API and the jobs share in one process: database, Redis, partner HTTP, secrets, rate limiter."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clients.addresses import PartnerTransport
from app.clients.cards import CardsClient
from app.clients.http import NO_ANSWER, RateLimit, RetryPolicy
from app.clients.lucca import PARTNER, LuccaAccount, LuccaClient, LuccaRejected
from app.clients.lucca_directory import DirectoryReader, LegacyDirectory
from app.clients.lucca_oauth import DEFAULT_TOKEN_URL, LuccaTokens, OAuthClient
from app.clients.lucca_v5 import DIRECTORY_SCOPES, LuccaV5Client, V5Directory
from app.clients.ratelimit import SlidingWindowLimiter
from app.config import Settings
from app.crypto import SecretBox
from app.db import Sessionmaker, create_engine, create_sessionmaker
from app.models import Tenant
from app.schemas.cards import CardsSettings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: Sessionmaker
    # One connection pool serves the queue, the shared rate limits, caches and metrics. It connects lazily,
    # so the API starts and keeps taking webhooks while Redis is down.
    redis: ArqRedis
    http: httpx.AsyncClient
    box: SecretBox
    limiter: SlidingWindowLimiter
    retry: RetryPolicy

    @classmethod
    def start(cls, settings: Settings, pool_size: int = 10) -> "Services":
        engine = create_engine(settings.database_url, pool_size=pool_size)
        redis = ArqRedis(
            connection_pool=ConnectionPool.from_url(
                settings.redis_url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
            )
        )
        timeout = httpx.Timeout(settings.partner_timeout_seconds, connect=5.0)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            # Partner calls reach public addresses only, checked on each new connection (app.clients.addresses).
            http=httpx.AsyncClient(
                timeout=timeout,
                transport=PartnerTransport(
                    allow_private=settings.allow_http_upstreams, limits=httpx.Limits(max_connections=100)
                ),
            ),
            box=SecretBox(settings.secret_key.get_secret_value()),
            limiter=SlidingWindowLimiter(redis),
            retry=RetryPolicy(
                base_seconds=settings.retry_base_seconds,
                max_seconds=settings.retry_max_seconds,
                in_call_seconds=settings.retry_in_call_seconds,
                give_up_seconds=settings.give_up_after_seconds,
            ),
        )

    async def close(self, within_seconds: float = 10.0) -> None:
        """Close every connection; a part that does not close in time is left to the process's exit."""
        for closing in (self.http.aclose(), self.redis.aclose(), self.engine.dispose()):
            try:
                await asyncio.wait_for(closing, within_seconds)
            except TimeoutError:
                log.warning("a connection pool did not close within %.0f s", within_seconds)

    def lucca(self, tenant: Tenant) -> LuccaClient:
        """A client of the legacy API (the key) for the tenant's account, rate-limited with every other process.
        What needs it is refused earlier on a tenant without a key (422 naming `lucca.api_key`); a run queued
        before the key was removed fails here in plain words."""
        if tenant.lucca_api_key_encrypted is None:
            raise LuccaRejected(
                PARTNER, NO_ANSWER, "This tenant has no Lucca API key (lucca.api_key): Lucca was not called."
            )
        account = LuccaAccount(
            base_url=tenant.lucca_base_url,
            api_key=self.box.decrypt(tenant.lucca_api_key_encrypted),
            rate_limit=lucca_rate_limit(tenant),
        )
        return LuccaClient(
            self.http,
            account,
            limiter=self.limiter,
            retry=self.retry,
            cache=self.redis,
            cache_seconds=self.settings.structure_cache_seconds,
        )

    def lucca_v5(self, tenant: Tenant, scopes: Sequence[str] = DIRECTORY_SCOPES) -> LuccaV5Client:
        """A client of the OAuth API for the tenant's account, its token asked with `scopes` and shared by every
        process; its calls count in the same window as the legacy API's."""
        if tenant.lucca_oauth_encrypted is None:
            raise LuccaRejected(
                PARTNER, NO_ANSWER, "This tenant has no Lucca OAuth client (lucca.oauth): Lucca was not called."
            )
        stored = self.box.decrypt_json(tenant.lucca_oauth_encrypted)
        client = OAuthClient(
            client_id=stored["client_id"],
            client_secret=stored["client_secret"],
            token_url=stored.get("token_url") or DEFAULT_TOKEN_URL,
        )
        tokens = LuccaTokens(self.http, self.redis, self.box, client, tenant.lucca_base_url, scopes, self.retry)
        return LuccaV5Client(
            self.http,
            tenant.lucca_base_url,
            tokens,
            limiter=self.limiter,
            retry=self.retry,
            rate_limit=lucca_rate_limit(tenant),
        )

    def directory_reader(self, tenant: Tenant) -> DirectoryReader:
        """The tenant's directory through the key when it has one (1,000 people a call), else through OAuth (100)."""
        if tenant.lucca_api_key_encrypted is not None:
            return LegacyDirectory(self.lucca(tenant))
        return V5Directory(self.lucca_v5(tenant))

    def cards(self, settings: CardsSettings) -> CardsClient:
        """A Cards client for the connector's space (secrets decrypted), rate-limited with every other process."""
        return CardsClient(self.http, settings, limiter=self.limiter, retry=self.retry, cache=self.redis)


def lucca_rate_limit(tenant: Tenant) -> RateLimit:
    """The account's one window, shared by the legacy and the OAuth API's calls."""
    return RateLimit(requests=tenant.rate_limit_requests, per_seconds=tenant.rate_limit_per_seconds)
