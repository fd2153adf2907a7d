"""Connectors: per-kind settings (validated, secrets encrypted) and webhook tokens.

Secret and partner-address fields are named by their path in the settings: `api_secret`, or `sftp.password`
inside the `sftp` object. Secrets are kept apart, encrypted, in the settings' own shape.
"""

import copy
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.addresses import NOT_PUBLIC, is_local_name, is_public, literal_address
from app.crypto import SecretBox, hash_token, new_webhook_token
from app.errors import Conflict, NotFound, body_errors, invalid_field, plain_errors
from app.models import Connector, Tenant
from app.schemas.cards import CardsSettings
from app.schemas.common import FieldRefused
from app.schemas.connector import MASK, ConnectorPatch, ConnectorPut, ConnectorRead
from app.schemas.elevo import ElevoSettings, open_given_key
from app.schemas.softgarden import SoftgardenSettings
from app.schemas.taleez import TaleezSettings
from app.services.lucca_key import require_key_for_connector
from app.services.schedules import ScheduledJob, follow_settings
from app.services.tenants import check_upstream_url, secret_again


@dataclass(frozen=True)
class ConnectorKind:
    settings_model: type[BaseModel]
    receives_webhooks: bool
    # A kind talks to one partner: its secrets go to its URLs and hosts, so a changed one needs every secret that
    # the settings hold again.
    secret_fields: frozenset[str] = frozenset()
    url_fields: tuple[str, ...] = ()  # partner URLs: https to a public host, unless ALLOW_HTTP_UPSTREAMS
    host_fields: tuple[str, ...] = ()  # partner hosts (an SFTP server): public, unless ALLOW_HTTP_UPSTREAMS
    # Objects whose key order matters (Elevo's extra columns): JSONB keeps none, so they are stored as [key, value]
    # pairs and shown as objects again.
    ordered_fields: tuple[str, ...] = ()
    schedules: tuple[ScheduledJob, ...] = ()  # nightly runs (contract 5.5), set from the settings
    # Given secrets that need work once, before they are kept (Elevo's private key is decrypted): the settings a
    # request gives, with that work done. It calls its second argument (the commit) before any slow part.
    open_secrets: Callable[[dict[str, Any], Callable[[], Awaitable[None]]], Awaitable[dict[str, Any]]] | None = None


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
    "elevo": ConnectorKind(
        ElevoSettings,
        receives_webhooks=False,
        secret_fields=frozenset({"sftp.password", "sftp.private_key", "sftp.passphrase"}),
        host_fields=("sftp.host",),
        ordered_fields=("extra_columns",),
        # The people file (elevo.PEOPLE_SYNC), at schedule_hour when schedule_enabled.
        schedules=(ScheduledJob("people_sync", ("schedule_enabled",), ("schedule_hour",)),),
        open_secrets=open_given_key,
    ),
}


def connector_kind(kind: str) -> ConnectorKind:
    if kind not in KINDS:
        raise NotFound(f"Unknown connector kind {kind!r}: use one of {', '.join(KINDS)}.")
    return KINDS[kind]


def holder_of(values: dict[str, Any], field: str) -> tuple[dict[str, Any] | None, str]:
    """The object that holds a settings field, and the field's key in it (`sftp.password`: `values["sftp"]` and
    `password`); None when that object is missing."""
    *parents, key = field.split(".")
    holder: Any = values
    for parent in parents:
        holder = holder.get(parent) if isinstance(holder, dict) else None
    return (holder if isinstance(holder, dict) else None), key


def value_at(values: dict[str, Any], field: str) -> Any:
    holder, key = holder_of(values, field)
    return None if holder is None else holder.get(key)


def field_loc(field: str) -> tuple[str, ...]:
    return ("settings", *field.split("."))


def keep_stored_secrets(kind: ConnectorKind, given: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """`given` with each secret that it omits or masks taken from `stored`, where `given` holds the secret's object;
    an explicit null stays (it removes the secret)."""
    merged = copy.deepcopy(given)
    for field in kind.secret_fields:
        holder, key = holder_of(merged, field)
        if holder is None or (key in holder and holder[key] != MASK):
            continue
        kept, _ = holder_of(stored, field)
        if kept is not None and key in kept:
            holder[key] = kept[key]
        else:
            holder.pop(key, None)
    return merged


def validate_settings(kind: ConnectorKind, name: str, given: dict[str, Any], stored: dict[str, Any]) -> BaseModel:
    """Validate a PUT's settings; an omitted or masked secret keeps the stored one."""
    return _validated(kind.settings_model, keep_stored_secrets(kind, given, stored))


def merge_settings(kind: ConnectorKind, name: str, given: dict[str, Any], stored: dict[str, Any]) -> BaseModel:
    """A PATCH's settings merged into the stored ones (secrets included): null resets a key to its default."""
    model = kind.settings_model
    merged = copy.deepcopy(stored)
    for key, value in given.items():
        field = model.model_fields.get(key)
        if field is not None and value is None:
            if field.is_required():
                raise invalid_field(("settings", key), "has no default: give a value", kind="missing")
            merged.pop(key, None)
        else:
            merged[key] = value
    return _validated(model, keep_stored_secrets(kind, merged, stored))


def _validated(model: type[BaseModel], settings: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(settings)
    except ValidationError as exc:
        raise body_errors(exc, "settings") from None


def connector_secrets(box: SecretBox, connector: Connector) -> dict[str, Any]:
    return box.decrypt_json(connector.secrets_encrypted)


def with_secrets(settings: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    """Settings with their secrets put back in place (secrets are stored in the settings' shape)."""
    merged = copy.deepcopy(settings)
    for key, value in secrets.items():
        inner = merged.get(key)
        merged[key] = with_secrets(inner, value) if isinstance(value, dict) and isinstance(inner, dict) else value
    return merged


def stored_settings(kind: ConnectorKind, connector: Connector) -> dict[str, Any]:
    """The connector's plain settings as they were given (ordered objects back from their pairs)."""
    settings = copy.deepcopy(connector.settings)
    for field in kind.ordered_fields:
        if isinstance(settings.get(field), list):
            settings[field] = dict(settings[field])
    return settings


class SettingsOutdated(Conflict):
    """Stored settings that today's rules refuse (a stricter rule since they were stored): nothing can use them
    until they are sent again. A run fails at once with these words, a request answers 409 with them."""


def connector_settings(box: SecretBox, connector: Connector) -> Any:
    """The connector's settings as its kind's model, secrets decrypted (for partner calls, never for answers)."""
    kind = connector_kind(connector.kind)
    model = kind.settings_model
    try:
        return model.model_validate(with_secrets(stored_settings(kind, connector), connector_secrets(box, connector)))
    except ValidationError as exc:
        raise SettingsOutdated(outdated_words(connector.kind, exc)) from None


def outdated_words(kind: str, exc: ValidationError) -> str:
    """What no longer passes, field by field, in plain words: never a value (secrets are among them)."""
    errors = plain_errors(exc.errors(include_url=False, include_context=False, include_input=False))
    fields = "; ".join(f"settings.{'.'.join(map(str, error['loc']))} ({error['msg']})" for error in errors[:3])
    return (
        f"The {kind.capitalize()} connector's stored settings no longer pass its rules: {fields}. Send them again "
        "with a PUT, or fix them with a PATCH."
    )


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
    settings = stored_settings(kind, connector)
    # A stored secret left its place in the plain settings (an unset one stays there as null): "***" takes it.
    for field in kind.secret_fields if connector.secrets_encrypted else ():
        holder, key = holder_of(settings, field)
        if holder is not None and key not in holder:
            holder[key] = MASK
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


async def opened_secrets(session: AsyncSession, kind: ConnectorKind, given: dict[str, Any]) -> dict[str, Any]:
    """The settings a request gives, with the one-time work on their secrets done (`ConnectorKind.open_secrets`),
    before the connector is locked: the connection goes back to the pool while a key is opened."""
    if kind.open_secrets is None:
        return given
    try:
        return await kind.open_secrets(given, session.commit)
    except FieldRefused as refused:
        raise invalid_field(field_loc(refused.field), str(refused)) from None


async def put_connector(
    session: AsyncSession, box: SecretBox, tenant: Tenant, name: str, body: ConnectorPut, allow_http: bool
) -> ConnectorRead:
    """Create or replace a connector; its first PUT hands out the webhook token, once."""
    kind = connector_kind(name)
    given = await opened_secrets(session, kind, body.settings)
    connector = await session.scalar(
        select(Connector).where(Connector.tenant_id == tenant.id, Connector.kind == name).with_for_update()
    )
    stored_secrets = connector_secrets(box, connector) if connector else {}
    settings = validate_settings(kind, name, given, stored_secrets)
    values = checked_values(settings, allow_http, kind.url_fields, kind.host_fields)
    if connector is not None and stored_secrets:
        require_secrets_for_new_urls(kind, values, connector.settings, given)
    require_key_for_connector(tenant, name, body.enabled, values)
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
    given = await opened_secrets(session, kind, body.settings)
    connector = await find_connector(session, tenant, name, for_update=True)
    if given:
        stored = with_secrets(stored_settings(kind, connector), connector_secrets(box, connector))
        settings = merge_settings(kind, name, given, stored)
        urls, hosts = given_in(kind.url_fields, given), given_in(kind.host_fields, given)
        values = checked_values(settings, allow_http, urls, hosts)
        require_secrets_for_new_urls(kind, values, connector.settings, given)
        store_settings(connector, kind, values, box)
    if body.enabled is not None:
        connector.enabled = body.enabled
    require_key_for_connector(tenant, name, connector.enabled, connector.settings)
    await session.flush()
    await follow_settings(session, tenant, connector, kind.schedules)
    await session.refresh(connector)
    return read_connector(connector, kind)


def given_in(fields: Sequence[str], given: dict[str, Any]) -> list[str]:
    """The fields within the top-level keys that a PATCH gives (only those are checked again)."""
    return [field for field in fields if field.split(".")[0] in given]


def checked_values(settings: BaseModel, allow_http: bool, urls: Sequence[str], hosts: Sequence[str]) -> dict[str, Any]:
    """Valid settings as JSON values, the given partner URLs (written without a trailing slash) and hosts checked."""
    values = settings.model_dump(mode="json")
    for field in urls:
        holder, key = holder_of(values, field)
        assert holder is not None
        holder[key] = check_upstream_url(holder[key], allow_http, field_loc(field))
    for field in hosts:
        check_upstream_host(value_at(values, field), allow_http, field_loc(field))
    return values


def check_upstream_host(host: str, allow_http: bool, loc: tuple[str, ...]) -> None:
    """A partner host is public, as partner URLs are (any host with ALLOW_HTTP_UPSTREAMS, for sandboxes and tests);
    the name it resolves to is checked again when connecting."""
    if allow_http:
        return
    if is_local_name(host):
        raise invalid_field(loc, "names this machine (localhost): give the partner's public host")
    address = literal_address(host)
    if address is not None and not is_public(address):
        raise invalid_field(loc, f"names {NOT_PUBLIC}: give the partner's public host")


def require_secrets_for_new_urls(
    kind: ConnectorKind, values: dict[str, Any], stored: dict[str, Any], given: dict[str, Any]
) -> None:
    """A changed partner URL or host needs the secrets the settings hold in the same request (not omitted, not
    "***")."""
    changed = [
        field for field in (*kind.url_fields, *kind.host_fields) if value_at(values, field) != value_at(stored, field)
    ]
    if not changed:
        return
    errors = [
        error
        for field in sorted(kind.secret_fields)
        if value_at(values, field) is not None and value_at(given, field) in (None, MASK)
        for error in secret_again(field_loc(field), changed[0]).errors()
    ]
    if errors:
        raise RequestValidationError(errors)


def store_settings(connector: Connector, kind: ConnectorKind, values: dict[str, Any], box: SecretBox) -> None:
    """Keep valid settings on the connector, its secrets encrypted apart (in the settings' shape)."""
    values = copy.deepcopy(values)
    secrets: dict[str, Any] = {}
    for field in kind.secret_fields:
        holder, key = holder_of(values, field)
        if holder is None or holder.get(key) is None:
            continue
        secret_holder = secrets
        for parent in field.split(".")[:-1]:
            secret_holder = secret_holder.setdefault(parent, {})
        secret_holder[key] = holder.pop(key)
    for field in kind.ordered_fields:
        values[field] = list(map(list, values[field].items()))
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
