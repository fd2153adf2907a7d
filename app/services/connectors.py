"""Connectors: per-kind settings (validated, secrets encrypted) and webhook tokens."""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import SecretBox, hash_token, new_webhook_token
from app.errors import Conflict, NotFound, invalid_field
from app.models import Connector, Tenant
from app.schemas.connector import ConnectorPut, ConnectorRead
from app.schemas.softgarden import SoftgardenSettings
from app.schemas.taleez import TaleezSettings
from app.services.tenants import check_upstream_url

MASK = "***"


@dataclass(frozen=True)
class ConnectorKind:
    settings_model: type[BaseModel] | None  # None: not built yet
    receives_webhooks: bool
    secret_fields: frozenset[str] = frozenset()
    url_fields: tuple[str, ...] = ()  # partner URLs: https only, unless ALLOW_HTTP_UPSTREAMS


KINDS: dict[str, ConnectorKind] = {
    "softgarden": ConnectorKind(SoftgardenSettings, receives_webhooks=True),
    "taleez": ConnectorKind(
        TaleezSettings, receives_webhooks=False, secret_fields=frozenset({"api_secret"}), url_fields=("api_base_url",)
    ),
    "cards": ConnectorKind(None, receives_webhooks=True, secret_fields=frozenset({"api_token"})),
    "elevo": ConnectorKind(None, receives_webhooks=False),
}


def connector_kind(kind: str) -> ConnectorKind:
    if kind not in KINDS:
        raise NotFound(f"Unknown connector kind {kind!r}: use one of {', '.join(KINDS)}.")
    return KINDS[kind]


def validate_settings(kind: ConnectorKind, name: str, given: dict[str, Any], stored: dict[str, Any]) -> BaseModel:
    """Validate a PUT's settings; an omitted or masked secret keeps the stored one."""
    if kind.settings_model is None:
        raise invalid_field(("settings",), f"The {name} connector is not supported yet.")
    merged = {key: value for key, value in given.items() if not (key in kind.secret_fields and value == MASK)}
    for field in kind.secret_fields:
        if field not in merged and field in stored:
            merged[field] = stored[field]
    try:
        return kind.settings_model.model_validate(merged)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise invalid_field(("settings",), "; ".join(_describe(error) for error in errors)) from None


def _describe(error: Any) -> str:
    return f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"


def connector_secrets(box: SecretBox, connector: Connector) -> dict[str, Any]:
    return box.decrypt_json(connector.secrets_encrypted)


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


async def find_connector(session: AsyncSession, tenant: Tenant, kind: str) -> Connector:
    connector_kind(kind)
    connector = await session.scalar(select(Connector).where(Connector.tenant_id == tenant.id, Connector.kind == kind))
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
    settings = validate_settings(kind, name, body.settings, stored_secrets).model_dump(mode="json")
    for field in kind.url_fields:
        settings[field] = check_upstream_url(settings[field], allow_http, ("settings", field))
    secrets = {field: settings.pop(field) for field in kind.secret_fields if settings.get(field) is not None}
    token = new_webhook_token() if kind.receives_webhooks and connector is None else None
    if connector is None:
        connector = Connector(tenant_id=tenant.id, kind=name, webhook_token_hash=token and hash_token(token))
        session.add(connector)
    connector.enabled = body.enabled
    connector.settings = settings
    connector.secrets_encrypted = box.encrypt_json(secrets) if secrets else None
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"The {name} connector was being set up at the same time; send the PUT again.") from None
    await session.refresh(connector)
    return read_connector(connector, kind, token)


async def rotate_token(session: AsyncSession, tenant: Tenant, name: str) -> str:
    """A new webhook token; the old one stops working at once."""
    kind = connector_kind(name)
    if not kind.receives_webhooks:
        raise NotFound(f"The {name} connector receives no webhooks.")
    connector = await find_connector(session, tenant, name)
    token = new_webhook_token()
    connector.webhook_token_hash = hash_token(token)
    return token
