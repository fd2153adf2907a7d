"""Creating, reading, changing and deleting tenants; credentials encrypted, the tenant key hashed.

Deleting is two steps, so that the request answers at once whatever the tenant's size: the DELETE marks the tenant
deleted (from then on it is invisible everywhere) and a worker job (`purge_tenant`) removes its rows in small
batches, each its own short transaction, so that neither the request nor other tenants' work waits behind it.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi.exceptions import RequestValidationError
from sqlalchemy import ColumnElement, Table, delete, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.crypto import SecretBox, hash_token, new_tenant_key
from app.db import Sessionmaker
from app.errors import Conflict, NotFound, invalid_field
from app.models import Base, Run, RunEvent, RunItem, Schedule, Tenant
from app.models.base import utcnow
from app.schemas.common import partner_url_problem
from app.schemas.tenant import (
    LuccaPatch,
    LuccaRead,
    OAuthPatch,
    RateLimitRead,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
)
from app.services.console_links import end_console_links
from app.services.lucca_key import connectors_needing_key, key_missing


def check_upstream_url(url: str, allow_http: bool, loc: tuple[str, ...]) -> str:
    """A partner URL leads to the partner's public host (any host over http too with ALLOW_HTTP_UPSTREAMS, for
    sandboxes and tests); the 422 never repeats the URL, which may carry a password."""
    problem = partner_url_problem(url, allow_http)
    if problem is not None:
        raise invalid_field(loc, problem)
    return url.rstrip("/")


def secret_again(loc: tuple[str, ...], url_field: str) -> RequestValidationError:
    """The 422 of a changed partner URL without its secret: a stored secret never follows a URL to a new host."""
    return invalid_field(
        loc, f"give it again when {url_field} changes: a stored secret is only sent where it was given", kind="missing"
    )


async def list_tenants(session: AsyncSession, limit: int, after: str | None) -> tuple[list[TenantRead], str | None]:
    """A page of tenants by slug, and the slug to pass as `after` for the next page (None on the last one)."""
    query = select(Tenant).where(Tenant.deleted_at.is_(None)).order_by(Tenant.slug).limit(limit + 1)
    if after is not None:
        query = query.where(Tenant.slug > after)
    found = list(await session.scalars(query))
    page = [read_tenant(tenant) for tenant in found[:limit]]
    return page, page[-1].slug if len(found) > limit else None


async def find_tenant(session: AsyncSession, where: ColumnElement[bool]) -> Tenant | None:
    """The tenant that `where` picks, unless it is deleted."""
    return await session.scalar(select(Tenant).where(where, Tenant.deleted_at.is_(None)))


def read_tenant(tenant: Tenant) -> TenantRead:
    return TenantRead(
        slug=tenant.slug,
        name=tenant.name,
        timezone=tenant.timezone,
        lucca=LuccaRead(
            base_url=tenant.lucca_base_url,
            api_key_set=tenant.lucca_api_key_encrypted is not None,
            oauth_set=tenant.lucca_oauth_encrypted is not None,
            rate_limit=RateLimitRead(requests=tenant.rate_limit_requests, per_seconds=tenant.rate_limit_per_seconds),
            poll_seconds=tenant.poll_seconds,
        ),
        created_at=tenant.created_at,
    )


async def create_tenant(session: AsyncSession, box: SecretBox, body: TenantCreate, allow_http: bool) -> TenantCreated:
    """Create a tenant and return its key, this once."""
    key = new_tenant_key()
    lucca = body.lucca
    tenant = Tenant(
        slug=body.slug,
        name=body.name,
        timezone=body.timezone,
        key_hash=hash_token(key),
        lucca_base_url=check_upstream_url(lucca.base_url, allow_http, ("lucca", "base_url")),
        lucca_api_key_encrypted=box.encrypt(lucca.api_key.get_secret_value()) if lucca.api_key else None,
        lucca_oauth_encrypted=None,
        rate_limit_requests=lucca.rate_limit.requests,
        rate_limit_per_seconds=lucca.rate_limit.per_seconds,
        poll_seconds=lucca.poll_seconds,
    )
    if lucca.oauth is not None:
        given = OAuthPatch.model_validate(lucca.oauth.model_dump())
        tenant.lucca_oauth_encrypted = merge_oauth(tenant, box, given, allow_http)
    if await find_tenant(session, Tenant.slug == body.slug) is not None:
        raise Conflict(f"A tenant with slug {body.slug!r} already exists.")
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A tenant with slug {body.slug!r} already exists.") from None
    return TenantCreated(**read_tenant(tenant).model_dump(), api_key=key)


async def rotate_key(session: AsyncSession, tenant: Tenant) -> str:
    """A new tenant key, returned this once. The old one is refused from this commit on, by every process (each
    request looks its key up), and so are the console links the tenant key made: a leaked key may have made some."""
    key = new_tenant_key()
    # Only over the key this request read: of two rotations at once, one hands out a key that works, the other none.
    rotated = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant.id, Tenant.key_hash == tenant.key_hash, Tenant.deleted_at.is_(None))
        .values(key_hash=hash_token(key))
        .returning(Tenant.id)
    )
    if rotated.first() is None:
        raise Conflict(
            "Another request rotated the key or deleted the tenant at the same moment: nothing changed here."
        )
    await end_console_links(session, tenant, minted_by="tenant_key")
    return key


async def update_tenant(
    session: AsyncSession, tenant: Tenant, box: SecretBox, body: TenantUpdate, allow_http: bool
) -> TenantRead:
    """Apply any subset; nested objects are merged and a secret is replaced only when given (`null` removes the
    key or OAuth, as long as the other stays)."""
    if body.name is not None:
        tenant.name = body.name
    if body.timezone is not None:
        tenant.timezone = body.timezone
    if body.lucca is not None:
        await update_lucca(session, tenant, box, body.lucca, allow_http)
    return read_tenant(tenant)


async def update_lucca(
    session: AsyncSession, tenant: Tenant, box: SecretBox, lucca: LuccaPatch, allow_http: bool
) -> None:
    """The Lucca part of a PATCH: a tenant keeps at least one credential, and the key while a connector needs it."""
    given = lucca.model_fields_set
    removes_key = "api_key" in given and lucca.api_key is None
    removes_oauth = "oauth" in given and lucca.oauth is None
    keeps_key = lucca.api_key is not None or (tenant.lucca_api_key_encrypted is not None and not removes_key)
    keeps_oauth = lucca.oauth is not None or (tenant.lucca_oauth_encrypted is not None and not removes_oauth)
    if not keeps_key and not keeps_oauth:
        raise invalid_field(("lucca",), "a tenant keeps api_key, oauth or both: give one before removing the other")
    if lucca.base_url is not None:
        base_url = check_upstream_url(lucca.base_url, allow_http, ("lucca", "base_url"))
        if base_url != tenant.lucca_base_url:
            require_lucca_secrets(lucca, keeps_key, keeps_oauth)
        tenant.lucca_base_url = base_url
    if removes_key:
        if needing := await connectors_needing_key(session, tenant):
            raise key_missing(" and ".join(needing) + ": disable it first, or keep the key")
        tenant.lucca_api_key_encrypted = None
    elif lucca.api_key is not None:
        tenant.lucca_api_key_encrypted = box.encrypt(lucca.api_key.get_secret_value())
    if lucca.rate_limit is not None:
        tenant.rate_limit_requests = lucca.rate_limit.requests or tenant.rate_limit_requests
        tenant.rate_limit_per_seconds = lucca.rate_limit.per_seconds or tenant.rate_limit_per_seconds
    if lucca.poll_seconds is not None:
        tenant.poll_seconds = lucca.poll_seconds
    if removes_oauth:
        tenant.lucca_oauth_encrypted = None
    elif lucca.oauth is not None:
        tenant.lucca_oauth_encrypted = merge_oauth(tenant, box, lucca.oauth, allow_http)


def require_lucca_secrets(lucca: LuccaPatch, keeps_key: bool, keeps_oauth: bool) -> None:
    """A new Lucca URL needs the API key again when the tenant keeps one, and the OAuth client secret when it
    keeps OAuth."""
    missing = []
    if keeps_key and lucca.api_key is None:
        missing.append(secret_again(("lucca", "api_key"), "base_url"))
    if keeps_oauth and (lucca.oauth is None or lucca.oauth.client_secret is None):
        missing.append(secret_again(("lucca", "oauth", "client_secret"), "base_url"))
    if missing:
        raise RequestValidationError([error for exc in missing for error in exc.errors()])


def merge_oauth(tenant: Tenant, box: SecretBox, patch: OAuthPatch, allow_http: bool) -> str:
    """The stored OAuth client with the given fields; a new token URL needs the client secret again."""
    stored = box.decrypt_json(tenant.lucca_oauth_encrypted)
    merged = {**stored, **patch.model_dump(exclude_unset=True, exclude={"client_secret"})}
    if patch.client_secret is not None:
        merged["client_secret"] = patch.client_secret.get_secret_value()
    if merged.get("token_url") is not None:
        merged["token_url"] = check_upstream_url(merged["token_url"], allow_http, ("lucca", "oauth", "token_url"))
    if stored and merged.get("token_url") != stored.get("token_url") and patch.client_secret is None:
        raise secret_again(("lucca", "oauth", "client_secret"), "oauth.token_url")
    if not merged.get("client_id") or not merged.get("client_secret"):
        raise invalid_field(("lucca", "oauth"), "client_id and client_secret are both needed")
    return box.encrypt_json(merged)


# Rows one statement of the purge deletes (each in its own transaction), and runs it takes at a time: their events
# go first, a batch at a time, since one run may have thousands.
PURGE_BATCH_ROWS = 2_000
PURGE_BATCH_RUNS = 200
RUN_EVENTS = Base.metadata.tables[RunEvent.__tablename__]
RUN_ITEMS = Base.metadata.tables[RunItem.__tablename__]
INDEXES_ONLY = text("SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)")


async def delete_tenant(session: AsyncSession, tenant: Tenant) -> None:
    """Make the tenant invisible at once (its key, console links and webhook tokens refused, its slug free, its
    schedules stopped); its rows go in the background (`purge_tenant`, queued once this is committed)."""
    marked = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant.id, Tenant.deleted_at.is_(None))
        .values(deleted_at=utcnow())
        .returning(Tenant.id)
    )
    if marked.first() is None:
        raise NotFound("Tenant not found.")  # deleted by another request meanwhile
    # A tick that read a schedule before this claims it only if its `due_at` is unchanged (app.services.schedules).
    await session.execute(update(Schedule).where(Schedule.tenant_id == tenant.id).values(due_at=None))


async def deleted_tenants(session: AsyncSession) -> list[uuid.UUID]:
    """Tenants whose rows are still being removed, for the worker's sweep to queue their purge again."""
    return list(await session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_not(None))))


async def purge_tenant(sessionmaker: Sessionmaker, tenant_id: uuid.UUID) -> None:
    """Remove a deleted tenant's rows, a small batch per transaction, then the tenant itself. Safe to run twice and
    to stop anywhere: what is deleted stays deleted, and the next run goes on from there."""
    async with sessionmaker() as session:
        if await session.scalar(select(Tenant.deleted_at).where(Tenant.id == tenant_id)) is None:
            return  # removed already (or never deleted)
    await purge_runs(sessionmaker, tenant_id)
    for table, where in tenant_rows(tenant_id):
        while await delete_batch(sessionmaker, table, where):
            pass
    async with purge_transaction(sessionmaker) as connection:
        await connection.execute(delete(Tenant).where(Tenant.id == tenant_id, Tenant.deleted_at.is_not(None)))


async def purge_runs(sessionmaker: Sessionmaker, tenant_id: uuid.UUID) -> None:
    """The tenant's runs, a few at a time: their events and ledgers in batches, then the runs (their deliveries go
    with the tenant's other rows)."""
    while True:
        async with purge_transaction(sessionmaker) as connection:
            page = await connection.execute(select(Run.id).where(Run.tenant_id == tenant_id).limit(PURGE_BATCH_RUNS))
            run_ids = list(page.scalars())
        if not run_ids:
            return
        while await delete_batch(sessionmaker, RUN_EVENTS, RunEvent.run_id.in_(run_ids)):
            pass
        while await delete_batch(sessionmaker, RUN_ITEMS, RunItem.run_id.in_(run_ids)):
            pass
        async with purge_transaction(sessionmaker) as connection:
            await connection.execute(delete(Run).where(Run.id.in_(run_ids)))


def tenant_rows(tenant_id: uuid.UUID) -> list[tuple[Table, ColumnElement[bool]]]:
    """Every table with a key to tenants (tables added later too), those that point at the others first, and
    which of its rows are the tenant's."""
    return [
        (table, key.parent == tenant_id)
        for table in reversed(Base.metadata.sorted_tables)
        for key in table.foreign_keys
        if key.column.table is Tenant.__table__
    ]


async def delete_batch(sessionmaker: Sessionmaker, table: Table, where: ColumnElement[bool]) -> int:
    """Delete at most `PURGE_BATCH_ROWS` rows of `table` that `where` picks, in a transaction of its own; returns
    how many went."""
    key = tuple(table.primary_key.columns)
    batch = select(*key).where(where).limit(PURGE_BATCH_ROWS)
    async with purge_transaction(sessionmaker) as connection:
        deleted = await connection.execute(delete(table).where(tuple_(*key).in_(batch)))
    return deleted.rowcount


@asynccontextmanager
async def purge_transaction(sessionmaker: Sessionmaker) -> AsyncIterator[AsyncConnection]:
    """A short transaction of the purge, whose statements walk the index of the key they select by (every foreign
    key has one) and stop at their limit. Left to itself, the planner may read a big tenant's table from its start,
    past every row the batches before deleted (dead until vacuumed): the purge would slow down as it goes."""
    async with sessionmaker.begin() as session:
        connection = await session.connection()
        await connection.execute(INDEXES_ONLY)
        yield connection
