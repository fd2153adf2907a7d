"""Connectors: one per tenant and kind, with settings validated per kind."""

import copy
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from app.schemas.common import RequestBody

KINDS = ("softgarden", "taleez", "cards", "elevo")
MASK = "***"


class ConnectorPut(RequestBody):
    enabled: StrictBool = True
    settings: dict[str, Any] = Field(description="Validated per kind.")


class ConnectorPatch(RequestBody):
    enabled: StrictBool | None = Field(default=None, description="Omitted or null: unchanged.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Keys merged into the stored settings; a key set to null goes back to its default.",
    )


class ConnectorRead(BaseModel):
    kind: str
    enabled: bool
    settings: dict[str, Any] = Field(description='Secret settings come back as "***".')
    created_at: datetime
    updated_at: datetime
    webhook_token: str | None = Field(
        default=None, description="Only on the first PUT of a kind that receives webhooks: shown this once."
    )


class WebhookToken(BaseModel):
    webhook_token: str


def put_body_schema(settings: type[BaseModel], secret_fields: frozenset[str]) -> dict[str, Any]:
    """`ConnectorPut` with this kind's settings; a secret may be left out (or sent as "***") to keep the stored one."""
    schema = settings.model_json_schema()
    schema["required"] = [name for name in schema.get("required", []) if name not in secret_fields]
    return _body_schema(ConnectorPut, schema)


def patch_body_schema(settings: type[BaseModel]) -> dict[str, Any]:
    """`ConnectorPatch` with this kind's settings, every key optional; null resets a key that has a default."""
    schema = settings.model_json_schema()
    required = set(schema.pop("required", []))
    schema["properties"] = {
        name: prop if name in required or _allows_null(prop) else _nullable(prop)
        for name, prop in schema["properties"].items()
    }
    return _body_schema(ConnectorPatch, schema)


def _body_schema(body: type[BaseModel], settings: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(body.model_json_schema())
    described = schema["properties"]["settings"].get("description")
    # Nested settings models (Cards' stats_sync) are defined once, at the body's root.
    nested = {key: value for key, value in settings.items() if key != "$defs"}
    schema.setdefault("$defs", {}).update(settings.get("$defs", {}))
    schema["properties"]["settings"] = {**nested, "description": described}
    return schema


def _allows_null(prop: dict[str, Any]) -> bool:
    return any(option.get("type") == "null" for option in prop.get("anyOf", []))


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    outer: dict[str, Any] = {key: prop[key] for key in ("title", "description", "default") if key in prop}
    inner = {key: value for key, value in prop.items() if key not in outer}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


SOFTGARDEN_EXAMPLE = {
    "enabled": True,
    "settings": {
        "professional_email_template": "{first_name}.{last_name}@acme.fr",
        "default_department_id": 10,
        "default_role_principal_id": 55,
        "hire_statuses": ["hired"],
        "establishment_aliases": {"Acme GmbH": 2},
        "default_establishment_id": 1,
    },
}
TALEEZ_EXAMPLE = {
    "enabled": True,
    "settings": {
        "api_base_url": "https://api.taleez.com/0",
        "api_secret": "<Taleez API secret>",
        "default_establishment_id": 1,
        "default_department_id": 10,
        "default_role_principal_id": 55,
        "professional_email_template": "{first_name}.{last_name}@acme.fr",
    },
}
CARDS_EXAMPLE = {
    "enabled": True,
    "settings": {
        "api_token": "<Cards API token>",
        "space_id": "acme",
        "notify_created_users": False,
        "login_mode": "app",
        "stats_sync": {"enabled": True, "hour": 2},
    },
}
ELEVO_EXAMPLE = {
    "enabled": True,
    "settings": {
        "sftp": {
            "host": "sftp.elevo.example",
            "port": 22,
            "username": "acme",
            "password": "<SFTP password>",
            "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOWO9cY1mOOFYGf+vnwmRbsWaX7BDib2xbOoJkKD9DgF",
            "remote_dir": "/",
        },
        "skip_field_code": "e_skip_elevo_sync",
        "extra_columns": {"personal_email": "personalEmail", "contract_type": "e_contract_type"},
        "schedule_enabled": True,
        "schedule_hour": 3,
    },
}
PATCH_EXAMPLES = {
    "softgarden": {"settings": {"establishment_aliases": {"Acme GmbH": 2, "Acme Berlin": 3}}},
    "taleez": {"settings": {"default_department_id": 12, "professional_email_template": None}},
    "cards": {"settings": {"login_mode": "sso", "stats_sync": {"enabled": True, "hour": 3}}},
    "elevo": {"settings": {"schedule_hour": 4, "extra_columns": {"birth_date": "e_birth_date"}}},
}
