"""Field types shared by several schemas, each declaring in JSON Schema the rule the server applies."""

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from app.services.work_email import check_template


class RequestBody(BaseModel):
    """A request body: a field it does not define is an error (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


# Lucca and Taleez ids are 32-bit positive integers.
MAX_ID = 2_147_483_647


def json_integer(value: Any) -> Any:
    """A JSON integer (`10`, or `10.0`, which JSON Schema counts as one too); never a string or a boolean."""
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


# Bounds first, then the check: pydantic then writes the bounds as JSON Schema's own keywords.
PositiveId = Annotated[int, Field(gt=0, le=MAX_ID), BeforeValidator(json_integer)]
Text = Annotated[StrictStr, Field(max_length=500)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]

SLUG_PATTERN = r"^[a-z0-9-]{2,40}$"
Slug = Annotated[StrictStr, Field(pattern=SLUG_PATTERN, examples=["acme"])]

# The template rule of `check_template`, as a pattern: literal text, `{{`/`}}` escapes and the two placeholders,
# rendering to one address with a non-empty local part and a dot in its domain.
_TEMPLATE_PART = r"(?:[^{}@]|\{\{|\}\}|\{first_name\}|\{last_name\})"
TEMPLATE_PATTERN = rf"^{_TEMPLATE_PART}+@{_TEMPLATE_PART}*\.{_TEMPLATE_PART}*$"
EmailTemplate = Annotated[
    StrictStr,
    AfterValidator(check_template),
    Field(
        max_length=500,
        # In the schema only: `check_template` applies the same rule with plain-worded errors.
        json_schema_extra={"pattern": TEMPLATE_PATTERN},
        description="A professional address; placeholders `{first_name}` and `{last_name}` only.",
        examples=["{first_name}.{last_name}@acme.fr"],
    ),
]

# Partner URLs: the scheme depends on ALLOW_HTTP_UPSTREAMS, so the server checks them (`partner_url_pattern`) and
# the OpenAPI document gets the pattern of the running configuration (`x-partner-url` is replaced in app.main).
PARTNER_URL_MARK = "x-partner-url"
PartnerUrl = Annotated[StrictStr, Field(min_length=1, max_length=500, json_schema_extra={PARTNER_URL_MARK: True})]
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
_PATH = r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*"


def partner_url_pattern(allow_http: bool) -> str:
    """An https URL (or http when allowed): a host, an optional port and path, no credentials, query or fragment."""
    scheme = "https?" if allow_http else "https"
    return rf"^{scheme}://{_HOST}(?::[0-9]{{1,5}})?(?:/{_PATH})?$"


def is_partner_url(url: str, allow_http: bool) -> bool:
    return re.fullmatch(partner_url_pattern(allow_http), url) is not None


def strict_date(value: Any) -> Any:
    """Dates are `YYYY-MM-DD` strings only (pydantic alone would take timestamps and other forms)."""
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("dates are written YYYY-MM-DD")
    return value
