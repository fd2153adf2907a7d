"""Connectors: per-kind settings (validated, secrets encrypted) and webhook tokens."""

from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import SecretBox, hash_token, new_webhook_token
from app.errors import Conflict, NotFound, body_errors, invalid_field
from app.models import Connector, Tenant
from app.schemas.cards import CardsSettings
from app.schemas.connector import MASK, ConnectorPatch, ConnectorPut, ConnectorRead
from app.schemas.softgarden import SoftgardenSettings
from app.schemas.taleez import TaleezSettings
from app.services.schedules import ScheduledJob, follow_settings
from app.services.tenants import check_upstream_url, secret_again


@dataclass(frozen=True)
class ConnectorKind:
    settings_model: type[BaseModel] | None  # None: not built yet
    receives_webhooks: bool
    # A kind talks to one partner: its secrets go to its URLs, so a changed URL needs every secret again.
    secret_fields: frozenset[str] = frozenset()
    url_fields: tuple[str, ...] = ()  # partner URLs: https to a public host, unless ALLOW_HTTP_UPSTREAMS
    schedules: tuple[ScheduledJob, ...] = ()  # nightly runs (contract 5.5), set from the settings


KINDS: dict[str, ConnectorKind] = {
    "softgarden": ConnectorKind(SoftgardenSettings, receives_webhooks=True),
    "taleez": ConnectorKind(
        TaleezSettings, receives_webhooks=False, secret_fields=frozenset({"api_secret"}), url_fields=("api_base_url",)
    ),
    "cards": ConnectorKind(
        CardsSettings,
        receives_webhooks=True,
        secret_fields=frozenset({"api_token"}),
        url_fields=("api_base_url",),
        # The statistics push (cards_stats.STATS_SYNC), at stats_sync.hour when stats_sync.enabled.
        schedules=(ScheduledJob("stats_sync", ("stats_sync", "enabled"), ("stats_sync", "hour")),),
    ),
    "elevo": ConnectorKind(None, receives_webhooks=False),
}


def connector_kind(kind: str) -> ConnectorKind:
    if kind not in KINDS:
        raise NotFound(f"Unknown connector kind {kind!r}: use one of {', '.join(KINDS)}.")
    return KINDS[kind]


def validate_settings(kind: ConnectorKind, name: str, given: dict[str, Any], stored: dict[str, Any]) -> BaseModel:
    """Validate a PUT's settings; an omitted or masked secret keeps the stored one."""
    model = built_settings(kind, name)
    merged = {key: value for key, value in given.items() if not (key in kind.secret_fields and value == MASK)}
    for field in kind.secret_fields:
        if field not in merged and field in stored:
            merged[field] = stored[field]
    return _validated(model, merged)


def merge_settings(kind: ConnectorKind, name: str, given: dict[str, Any], stored: dict[str, Any]) -> BaseModel:
    """A PATCH's settings merged into the stored ones (secrets included): null resets a key to its default."""
    model = built_settings(kind, name)
    merged = dict(stored)
    for key, value in given.items():
        field = model.model_fields.get(key)
        if field is not None and value is None:
            if field.is_required():
                raise invalid_field(("settings", key), "has no default: give a value", kind="missing")
            merged.pop(key, None)
        elif not (key in kind.secret_fields and value == MASK):
            merged[key] = value
    return _validated(model, merged)


def built_settings(kind: ConnectorKind, name: str) -> type[BaseModel]:
    if kind.settings_model is None:
        raise invalid_field(("settings",), f"The {name} connector is not supported yet.")
    return kind.settings_model


def _validated(model: type[BaseModel], settings: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(settings)
    except ValidationError as exc:
        raise body_errors(exc, "settings") from None


def connector_secrets(box: SecretBox, connector: Connector) -> dict[str, Any]:
    return box.decrypt_json(connector.secrets_encrypted)


def connector_settings(box: SecretBox, connector: Connector) -> Any:
    """The connector's settings as its kind's model, secrets decrypted (for partner calls, never for answers)."""
    model = built_settings(connector_kind(connector.kind), connector.kind)
    return model.model_validate({**connector.settings, **connector_secrets(box, connector)})


async def enabled_connector(session: AsyncSession, tenant: Tenant, kind: str) -> Connector:
    """The tenant's connector of `kind`, refused with 409 in plain words when it is missing or disabled."""
    connector = await session.scalar(select(Connector).where(Connector.tenant_id == tenant.id, Connector.kind == kind))
    name = kind.capitalize()
    if connector is None:
        raise Conflict(f"No {name} connector is set up for this tenant: PUT one first.")
    if not connector.enabled:
        raise Conflict(f"The {name} connector is disabled.")
    return connector


def read_connector(connector: Connector, kind: ConnectorKind, webhook_token: str | None = None) -> ConnectorRead:
    settings = dict(connector.settings)
    settings.update({field: MASK for field in kind.secret_fields if connector.secrets_encrypted})
    return ConnectorRead(
        kind=connector.kind,
        enabled=connector.enabled,
        settings=settings,
        created_at=connector.created_at,
        updated_at=connector.updated_at,
        webhook_token=webhook_token,
    )


async def find_connector(session: AsyncSession, tenant: Tenant, kind: str, for_update: bool = False) -> Connector:
    connector_kind(kind)
    query = select(Connector).where(Connector.tenant_id == tenant.id, Connector.kind == kind)
    connector = await session.scalar(query.with_for_update() if for_update else query)
    if connector is None:
        raise NotFound(f"No {kind} connector is set up for this tenant.")
    return connector


async def put_connector(
    session: AsyncSession, box: SecretBox, tenant: Tenant, name: str, body: ConnectorPut, allow_http: bool
) -> ConnectorRead:
    """Create or replace a connector; its first PUT hands out the webhook token, once."""
    kind = connector_kind(name)
    connector = await session.scalar(
        select(Connector).where(Connector.tenant_id == tenant.id, Connector.kind == name).with_for_update()
    )
    stored_secrets = connector_secrets(box, connector) if connector else {}
    settings = validate_settings(kind, name, body.settings, stored_secrets)
    values = checked_values(settings, allow_http, kind.url_fields)
    if connector is not None and stored_secrets:
        require_secrets_for_new_urls(kind, values, connector.settings, body.settings)
    token = new_webhook_token() if kind.receives_webhooks and connector is None else None
    if connector is None:
        connector = Connector(tenant_id=tenant.id, kind=name, webhook_token_hash=token and hash_token(token))
        session.add(connector)
    connector.enabled = body.enabled
    store_settings(connector, kind, values, box)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"The {name} connector was being set up at the same time; send the PUT again.") from None
    await follow_settings(session, tenant, connector, kind.schedules)
    await session.refresh(connector)
    return read_connector(connector, kind, token)


async def patch_connector(
    session: AsyncSession, box: SecretBox, tenant: Tenant, name: str, body: ConnectorPatch, allow_http: bool
) -> ConnectorRead:
    """Change a connector's given keys only, validated like a PUT once merged into the stored settings."""
    kind = connector_kind(name)
    connector = await find_connector(session, tenant, name, for_update=True)
    if body.settings:
        stored = {**connector.settings, **connector_secrets(box, connector)}
        settings = merge_settings(kind, name, body.settings, stored)
        values = checked_values(
            settings, allow_http, tuple(field for field in kind.url_fields if field in body.settings)
        )
        require_secrets_for_new_urls(kind, values, connector.settings, body.settings)
        store_settings(connector, kind, values, box)
    if body.enabled is not None:
        connector.enabled = body.enabled
    await session.flush()
    await follow_settings(session, tenant, connector, kind.schedules)
    await session.refresh(connector)
    return read_connector(connector, kind)


def checked_values(settings: BaseModel, allow_http: bool, check_urls: tuple[str, ...]) -> dict[str, Any]:
    """Valid settings as JSON values, the given partner URLs checked (and written without a trailing slash)."""
    values = settings.model_dump(mode="json")
    for field in check_urls:
        values[field] = check_upstream_url(values[field], allow_http, ("settings", field))
    return values


def require_secrets_for_new_urls(
    kind: ConnectorKind, values: dict[str, Any], stored: dict[str, Any], given: dict[str, Any]
) -> None:
    """A changed partner URL needs the partner's secrets in the same request (not omitted, not "***")."""
    changed = [field for field in kind.url_fields if values.get(field) != stored.get(field)]
    if not changed:
        return
    errors = [
        error
        for field in sorted(kind.secret_fields)
        if given.get(field) in (None, MASK)
        for error in secret_again(("settings", field), changed[0]).errors()
    ]
    if errors:
        raise RequestValidationError(errors)


def store_settings(connector: Connector, kind: ConnectorKind, values: dict[str, Any], box: SecretBox) -> None:
    """Keep valid settings on the connector, its secrets encrypted apart."""
    values = dict(values)
    secrets = {field: values.pop(field) for field in kind.secret_fields if values.get(field) is not None}
    connector.settings = values
    connector.secrets_encrypted = box.encrypt_json(secrets) if secrets else None


async def rotate_token(session: AsyncSession, tenant: Tenant, name: str) -> str:
    """A new webhook token; the old one stops working at once."""
    kind = connector_kind(name)
    if not kind.receives_webhooks:
        raise NotFound(f"The {name} connector receives no webhooks.")
    connector = await find_connector(session, tenant, name)
    token = new_webhook_token()
    connector.webhook_token_hash = hash_token(token)
    return token
