"""Alert channels (contract 14): where a tenant's alerts go, as set with PUT and read with GET."""

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, Field, StrictStr

from app.schemas.common import PARTNER_URL_MARK, RequestBody

MAX_CHANNELS = 10
MAX_RECIPIENTS = 20
KINDS = ("email", "webhook", "slack", "teams")
# An address as mail servers take it: a dot-atom local part (RFC 5322, no quoted forms), a domain of DNS labels.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$"


def email_address(value: str) -> str:
    if re.fullmatch(EMAIL_PATTERN, value) is None:
        raise ValueError("must be an e-mail address such as hr@acme.fr")
    return value


# The pattern in the schema; `email_address` applies it with plain words.
EmailAddress = Annotated[
    StrictStr,
    Field(max_length=254, json_schema_extra={"pattern": EMAIL_PATTERN}, examples=["hr@acme.fr"]),
    AfterValidator(email_address),
]
# A receiver's URL: the partner URL rules, with a query (Teams' URLs carry their signature there), or the masked
# form of a stored one. The rule depends on ALLOW_HTTP_UPSTREAMS: the service checks it (app.alerts.channels) and
# app.main writes this configuration's pattern (`alert_url_pattern`).
ALERT_URL_MARKS = ("alert", "alert-masked")
AlertUrl = Annotated[StrictStr, Field(min_length=1, max_length=2000, json_schema_extra={PARTNER_URL_MARK: "alert"})]
MaskedAlertUrl = Annotated[
    StrictStr, Field(min_length=1, max_length=2000, json_schema_extra={PARTNER_URL_MARK: "alert-masked"})
]
# The mark of the e-mail channel, which the OpenAPI document drops when SMTP_URL is not set (app.main).
NEEDS_SMTP_MARK = "x-needs-smtp"


class EmailChannel(RequestBody, json_schema_extra={NEEDS_SMTP_MARK: True}):
    """E-mails through this service's mail server (SMTP_URL)."""

    kind: Literal["email"]
    to: list[EmailAddress] = Field(min_length=1, max_length=MAX_RECIPIENTS)


class WebhookChannel(RequestBody):
    """A JSON POST signed as Standard Webhooks specifies, with the secret handed out by the PUT that adds it."""

    kind: Literal["webhook"]
    url: AlertUrl


class SlackChannel(RequestBody):
    """A Slack incoming webhook's URL; GET shows it masked (`https://hooks.slack.com/…`), and a PUT may send that
    masked form back to keep the stored URL."""

    kind: Literal["slack"]
    url: MaskedAlertUrl


class TeamsChannel(RequestBody):
    """A Microsoft Teams Workflows webhook's URL; masked in GET as Slack's is."""

    kind: Literal["teams"]
    url: MaskedAlertUrl


ChannelPut = Annotated[EmailChannel | WebhookChannel | SlackChannel | TeamsChannel, Field(discriminator="kind")]


def without_discriminator(schema: dict[str, Any]) -> None:
    """The `oneOf` of kinds says it all (each has its `kind` constant); pydantic's `discriminator` mapping would
    point at definitions that the inlined body schema no longer has."""
    schema["properties"]["channels"]["items"].pop("discriminator", None)


class AlertsPut(RequestBody, json_schema_extra=without_discriminator):
    channels: list[ChannelPut] = Field(max_length=MAX_CHANNELS)


class LastAlert(BaseModel):
    """The channel's latest alert: pending (not sent yet, or being retried), sent, or failed with its error."""

    event: Literal["opened", "reminder", "resolved"]
    status: Literal["pending", "sent", "failed"]
    attempts: int
    error: str | None = None
    at: datetime = Field(description="When it was sent, or else when it was made.")


class ChannelRead(BaseModel):
    id: uuid.UUID
    kind: Literal["email", "webhook", "slack", "teams"]
    to: list[str] | None = Field(default=None, description="E-mail: the addresses.")
    url: str | None = Field(
        default=None, description="Webhook: the URL. Slack and Teams: the host and `…` (the URL is a credential)."
    )
    secret: str | None = Field(
        default=None,
        description="A new webhook channel's signing secret (`whsec_…`), in the PUT's answer only, this once.",
    )
    last_alert: LastAlert | None = None


class AlertsRead(BaseModel):
    channels: list[ChannelRead]


class ChannelTested(BaseModel):
    id: uuid.UUID
    kind: Literal["email", "webhook", "slack", "teams"]
    ok: bool
    message: str = Field(description="Where it was sent, or why it was not, in plain words.")


class AlertsTested(BaseModel):
    channels: list[ChannelTested]


ALERTS_EXAMPLE = {
    "channels": [
        {"kind": "email", "to": ["hr@acme.fr"]},
        {"kind": "webhook", "url": "https://hooks.acme.fr/lucca"},
        {"kind": "slack", "url": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"},
    ]
}


def untagged(exc: RequestValidationError) -> RequestValidationError:
    """pydantic puts a channel's kind in its errors' path (`channels.0.email.to`), a step the body does not have;
    a kind it cannot read is an error of the `kind` field itself."""
    errors = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc[:2] == ["body", "channels"] and len(loc) > 2 and isinstance(loc[2], int):
            if error["type"] == "union_tag_invalid":
                error = {**error, "loc": [*loc, "kind"], "msg": f"must be one of: {', '.join(KINDS)}"}
            elif error["type"] == "union_tag_not_found":
                error = {**error, "type": "missing", "loc": [*loc, "kind"], "msg": "Field required"}
            elif len(loc) > 3 and loc[3] in KINDS:
                error = {**error, "loc": loc[:3] + loc[4:]}
        errors.append(error)
    return RequestValidationError(errors)
