"""Connectors: one per tenant and kind, with settings validated per kind."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

KINDS = ("softgarden", "taleez", "cards", "elevo")


class ConnectorPut(BaseModel):
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)


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
