"""Field types shared by several schemas, each declaring in JSON Schema the rule the server applies."""

import re
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, StrictStr

from app.clients.addresses import NOT_PUBLIC, is_local_name, is_public, literal_address
from app.services.work_email import check_template


class RequestBody(BaseModel):
    """A request body: a field it does not define is an error (a typo must not pass silently). Its validation
    errors never quote what was given: bodies and stored settings hold secrets, and errors reach logs."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class FieldRefused(ValueError):
    """A settings field refused by work done after validation (a key decrypted off the event loop), in plain
    words; `field` is its dotted path in the settings (`sftp.passphrase`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# Lucca and Taleez ids are 32-bit positive integers.
MAX_ID = 2_147_483_647


def json_integer(value: Any) -> Any:
    """A JSON integer (`10`, or `10.0`, which JSON Schema counts as one too); never a string or a boolean."""
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


# Bounds first, then the check: pydantic then writes the bounds as JSON Schema's own keywords.
PositiveId = Annotated[int, Field(gt=0, le=MAX_ID), BeforeValidator(json_integer)]
# true or false, never "yes" or 1.
Flag = Annotated[bool, Field(strict=True)]

# Postgres text and JSONB cannot hold U+0000: every string of a request refuses it (422 naming the field), and its
# schema says so. Secrets and ids sent in partners' HTTP headers are printable ASCII (HTTP cannot carry the rest).
NO_NUL = r"^[^\x00]*$"
HEADER_TEXT = r"^[\x20-\x7e]*$"


def refuse_nul(value: str) -> str:
    """Also refuses a lone surrogate (`"\\ud800"` is valid JSON): no UTF-8 text, so no database, can hold it."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds a lone surrogate such as \\ud800)") from None
    return value


StringOrSecret = TypeVar("StringOrSecret", str, SecretStr)


def header_text(value: StringOrSecret) -> StringOrSecret:
    """HTTP headers carry ASCII: an accent in a key could never be sent (and would fail every call later)."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if re.search(r"[^\x20-\x7e]", text):
        raise ValueError("must be printable ASCII: no accents, line breaks, tabs or other control characters")
    return value


String = Annotated[StrictStr, AfterValidator(refuse_nul), Field(json_schema_extra={"pattern": NO_NUL})]
HeaderValue = Annotated[StrictStr, AfterValidator(header_text), Field(json_schema_extra={"pattern": HEADER_TEXT})]
Text = Annotated[String, Field(max_length=500)]
Name = Annotated[String, Field(min_length=1, max_length=200)]


def pattern_in_property_names(schema: dict[str, Any]) -> None:
    """pydantic writes a key's pattern as `patternProperties`, which would let other keys through with any value:
    a mapping's schema (its `json_schema_extra`) says it with `propertyNames` instead."""
    for pattern, values in schema.pop("patternProperties", {}).items():
        schema.setdefault("propertyNames", {})["pattern"] = pattern
        schema["additionalProperties"] = values


SLUG_PATTERN = r"^[a-z0-9-]{2,40}$"
Slug = Annotated[StrictStr, Field(pattern=SLUG_PATTERN, examples=["acme"])]

# The template rule of `check_template`, as a pattern: literal text, `{{`/`}}` escapes and the two placeholders,
# rendering to one address with a non-empty local part and a dot in its domain.
_TEMPLATE_PART = r"(?:[^{}@\x00]|\{\{|\}\}|\{first_name\}|\{last_name\})"
TEMPLATE_PATTERN = rf"^{_TEMPLATE_PART}+@{_TEMPLATE_PART}*\.{_TEMPLATE_PART}*$"
EmailTemplate = Annotated[
    StrictStr,
    AfterValidator(refuse_nul),
    AfterValidator(check_template),
    Field(
        max_length=500,
        # In the schema only: `check_template` applies the same rule with plain-worded errors.
        json_schema_extra={"pattern": TEMPLATE_PATTERN},
        description="A professional address; placeholders `{first_name}` and `{last_name}` only.",
        examples=["{first_name}.{last_name}@acme.fr"],
    ),
]

# Partner URLs: the rule depends on ALLOW_HTTP_UPSTREAMS, so the server checks them (`partner_url_problem`) and
# the OpenAPI document gets the pattern of the running configuration (`x-partner-url` is replaced in app.main).
PARTNER_URL_MARK = "x-partner-url"
PartnerUrl = Annotated[StrictStr, Field(min_length=1, max_length=500, json_schema_extra={PARTNER_URL_MARK: True})]
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_PATH = r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*"
_QUERY = r"[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*"
# Without ALLOW_HTTP_UPSTREAMS: a DNS name (its last label starts with a letter, so no numeric IPv4 form passes
# as a name) other than localhost, or a public IPv4 address in four decimal numbers (app.clients.addresses'
# NON_PUBLIC_V4 blocks, written as patterns). IPv6 literals are not accepted: partners have names.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_NOT_LOCALHOST = r"(?!(?:[A-Za-z0-9.-]*\.)?[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt](?:[:/]|$))"
_PUBLIC_NAME = rf"{_NOT_LOCALHOST}(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_NON_PUBLIC_V4 = (
    r"0\.", r"10\.", r"127\.", r"100\.(?:6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.", r"169\.254\.",
    r"172\.(?:1[6-9]|2[0-9]|3[01])\.", r"192\.0\.[02]\.", r"192\.88\.99\.", r"192\.168\.", r"198\.1[89]\.",
    r"198\.51\.100\.", r"203\.0\.113\.", r"(?:22[4-9]|2[3-5][0-9])\.",
)  # fmt: skip
_PUBLIC_V4 = rf"(?!{'|'.join(_NON_PUBLIC_V4)}){_OCTET}(?:\.{_OCTET}){{3}}"


def partner_url_pattern(allow_http: bool, query: bool = False) -> str:
    """The partner URLs this configuration accepts: a host, an optional port and path (and query, with `query`: an
    alert receiver's URL may carry its signature there); no credentials or fragment. https to a public host; with
    `allow_http`, http too and any host (sandboxes, tests)."""
    tail = rf"(?::{_PORT})?(?:/{_PATH})?" + (rf"(?:\?{_QUERY})?" if query else "")
    if allow_http:
        return rf"^https?://{_HOST}{tail}$"
    return rf"^https://(?:{_PUBLIC_V4}|{_PUBLIC_NAME}){tail}$"


def alert_url_pattern(allow_http: bool, masked: bool) -> str:
    """An alert receiver's URL: a partner URL with its query; with `masked`, also the masked form that GET shows of
    a stored one (`https://hooks.slack.com/…`), which keeps that URL."""
    pattern = partner_url_pattern(allow_http, query=True)
    return pattern + rf"|^https{'?' if allow_http else ''}://{_HOST}(?::{_PORT})?/…$" if masked else pattern


def partner_url_description(allow_http: bool) -> str:
    """The rule of `partner_url_pattern`, in words (the OpenAPI document's description of partner URLs)."""
    if allow_http:
        return "An https or http URL: a host name, an optional port and path; no credentials, query or fragment."
    return (
        "An https URL to the partner's public host: a host name (or a public IPv4 address), an optional port and "
        "path; no credentials, query or fragment. localhost and loopback, private, link-local, reserved or "
        "multicast addresses are refused, and the address the name resolves to is checked again when connecting."
    )


def partner_url_problem(url: str, allow_http: bool, query: bool = False) -> str | None:
    """Why `url` is not an acceptable partner URL, in words that never repeat it (it may hold a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        return "must not carry credentials (a user name or password): give the secret in its own field"
    schemes = ("https", "http") if allow_http else ("https",)
    if parts is not None and parts.scheme.lower() not in schemes:
        return "must be an https URL" if not allow_http else "must be an https or http URL"
    if parts is not None and parts.hostname and not allow_http:
        problem = _host_problem(parts.hostname, bracketed="[" in parts.netloc)
        if problem:
            return problem
    if re.fullmatch(partner_url_pattern(allow_http, query), url) is None:
        scheme = "an https or http URL: a host name" if allow_http else "an https URL: a public host name"
        return f"must be {scheme}, an optional port and path; no {'fragment' if query else 'query or fragment'}"
    return None


def _host_problem(host: str, bracketed: bool) -> str | None:
    if is_local_name(host):
        return "names this machine (localhost): partner URLs lead to the partner's public host"
    address = literal_address(host)
    if address is None:
        return None
    if not is_public(address):
        return f"names {NOT_PUBLIC}: partner URLs lead to the partner's public host"
    if bracketed:
        return "must name the partner's host, not an IPv6 address"
    if str(address) != host:
        return "must write an IPv4 address as four decimal numbers"
    return None


def is_partner_url(url: str, allow_http: bool) -> bool:
    return partner_url_problem(url, allow_http) is None


def strict_date(value: Any) -> Any:
    """Dates are `YYYY-MM-DD` strings only (pydantic alone would take timestamps and other forms)."""
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("dates are written YYYY-MM-DD")
    return value
