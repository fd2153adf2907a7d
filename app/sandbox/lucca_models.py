"""The objects a Lucca account holds, as the legacy API names them (camelCase on the wire, snake_case here)."""

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from app.sandbox.faults import PartnerError

DAY_PATTERN = re.compile(r"(\d{4}-\d{2}-\d{2})(T00:00:00(\.0+)?)?")
TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}")


def now_lucca() -> str:
    """The current time as Lucca writes `modifiedAt`: ISO, milliseconds, no offset."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def lucca_timestamp(value: str) -> str:
    """Any ISO date-time (an offset converts it to UTC; none means UTC) as Lucca writes `modifiedAt`."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds")


def lucca_day(value: str) -> str:
    """Normalises `YYYY-MM-DD` or `YYYY-MM-DDT00:00:00` to Lucca's `YYYY-MM-DDT00:00:00`."""
    match = DAY_PATTERN.fullmatch(value)
    if match is None:
        raise ValueError("must be a date, YYYY-MM-DD or YYYY-MM-DDT00:00:00")
    return f"{date.fromisoformat(match[1]).isoformat()}T00:00:00"


class LuccaError(PartnerError):
    """A Lucca refusal: answered with `status` and the error body of the API surface that refused."""


class LuccaModel(BaseModel):
    """Base of the Lucca objects an account holds."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    id: int


class LegalUnit(LuccaModel):
    """A legal company (SIREN level), v4 `legal-units`, v5 `legal-entities`."""

    name: str
    code: str | None = None
    country_id: str | None = None
    is_archived: bool = False


class Establishment(LuccaModel):
    """An establishment (SIRET level): what v3 users call `legalEntity` and v5 a `business-establishment`."""

    name: str
    legal_unit_id: int | None = None
    code: str | None = None
    timezone_id: str = "Europe/Paris"
    is_archived: bool = False


class Department(LuccaModel):
    """A department of the v4 structure API; `headId` is its manager."""

    name: str
    code: str | None = None
    parent_id: str | int | None = None
    hierarchy: str | None = None
    is_active: bool = True
    head_id: int | None = None
    level: int = 1


class Role(LuccaModel):
    """A role, only used to name a user's `rolePrincipal`."""

    name: str


class User(LuccaModel):
    """A v3 user; `extendedData` holds the `e_*` values as Lucca reads them back."""

    first_name: str
    last_name: str
    login: str | None = None
    mail: str | None = None
    personal_email: str | None = None
    personal_mobile: str | None = None
    address: str | None = None
    job_title: str | None = None
    employee_number: str | None = None
    dt_contract_start: str | None = None
    dt_contract_end: str | None = None
    legal_entity_id: int | None = None
    department_id: int | None = None
    manager_id: int | None = None
    role_principal_id: int | None = None
    modified_at: str = Field(default_factory=now_lucca)
    extended_data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("modified_at")
    @classmethod
    def normalise_moment(cls, value: str) -> str:
        """Stores `modifiedAt` in one format, so that `modifiedAt=since,…` compares it as text."""
        return lucca_timestamp(value)

    @field_validator("dt_contract_start", "dt_contract_end")
    @classmethod
    def normalise_day(cls, value: str | None) -> str | None:
        """Stores contract dates the way Lucca returns them."""
        return None if value is None else lucca_day(value)

    def has_left(self, today: str) -> bool:
        """True for a former employee: the contract ended before `today` (ISO date)."""
        return self.dt_contract_end is not None and self.dt_contract_end[:10] < today

    def has_not_started(self, today: str) -> bool:
        """True for a future employee: the contract starts after `today` (ISO date)."""
        return self.dt_contract_start is not None and self.dt_contract_start[:10] > today


def aliases(model: type[BaseModel]) -> list[str]:
    """The wire names of a model's fields."""
    return [info.alias or name for name, info in model.model_fields.items()]


USER_PROPERTIES = [*(name for name in aliases(User) if name != "extendedData"), "name"]
# The attribute behind each wire name (`name` is derived, see `user_value`).
USER_ATTRIBUTES = {info.alias or name: name for name, info in User.model_fields.items()}


def user_value(user: User, prop: str) -> Any:
    """One property of a user by its wire name, without dumping the whole user."""
    if prop == "name":
        return f"{user.first_name} {user.last_name}"
    return getattr(user, USER_ATTRIBUTES[prop])


class OAuthClientSeed(BaseModel):
    """An OAuth client of the account (Lucca's "integration key"): its secret and the scopes it may ask for."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    scopes: list[str] = []


class LuccaAccountSeed(BaseModel):
    """The body of `PUT /_sandbox/lucca/accounts/{account}`: an account's whole state."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=1)
    legal_units: list[LegalUnit] = []
    establishments: list[Establishment] = []
    departments: list[Department] = []
    users: list[User] = []
    roles: list[Role] = []
    oauth_clients: list[OAuthClientSeed] = []
    window_seconds: float | None = Field(default=None, gt=0)
    requests_per_window: int | None = Field(default=None, ge=1)


ModelT = TypeVar("ModelT", bound=LuccaModel)
ItemT = TypeVar("ItemT")


def by_id(items: Iterable[ModelT]) -> dict[int, ModelT]:
    """Indexes Lucca objects by id."""
    return {item.id: item for item in items}


def highest_value_id(users: Iterable[User]) -> int:
    """The largest extended-data value id in use, so new rows never reuse one."""
    ids = [0]
    for user in users:
        for value in user.extended_data.values():
            rows = value if isinstance(value, list) else [value]
            ids += [row["id"] for row in rows if isinstance(row, dict) and isinstance(row.get("id"), int)]
    return max(ids)


def lookup(items: Mapping[int, ItemT], key: int | None) -> ItemT | None:
    """`items[key]`, or None when the key is null or unknown."""
    return None if key is None else items.get(key)
