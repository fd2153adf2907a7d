"""Cards users and departments: the listings, and the import requests (contract section 9)."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic.config import JsonDict

from app.schemas.cards import LoginMode
from app.schemas.common import Flag, PositiveId, RequestBody
from app.schemas.directory_load import DIRECTORY_FIELD, DirectoryLoad

# One request names at most this many people or departments (a larger set: several requests, or `all`).
MAX_IMPORT_IDS = 10_000
CardsUserStatus = Literal["imported", "not_imported", "missing_email", "duplicate_email"]


class CardsUserRow(BaseModel):
    lucca_id: int
    first_name: str | None
    last_name: str | None
    email: str | None = Field(description="The professional e-mail (Lucca `mail`), the key that matches Cards users.")
    department: str | None
    cards_user_id: int | None = Field(description="The Cards user this employee is linked to, once imported.")
    status: CardsUserStatus = Field(
        description="`imported`: linked to a Cards user; `not_imported`; `missing_email` and `duplicate_email` "
        "(another current employee has the same e-mail, ignoring case) cannot be imported."
    )


class CardsUserList(BaseModel):
    items: list[CardsUserRow]
    directory: DirectoryLoad = DIRECTORY_FIELD


class CardsDepartmentRow(BaseModel):
    lucca_id: int
    name: str
    members: int = Field(description="Current employees in the department.")
    imported: bool = Field(description="Whether the department has become a Cards group.")


class CardsDepartmentList(BaseModel):
    items: list[CardsDepartmentRow]
    directory: DirectoryLoad = DIRECTORY_FIELD


def true_only(value: bool | None) -> bool | None:
    if value is False:
        raise ValueError("must be true; to import only some, leave it out and give the list of ids")
    return value


def distinct(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("holds the same id more than once")
    return ids


def one_choice(ids: list[int] | None, info: ValidationInfo) -> list[int] | None:
    """Exactly one of `all` and the list (an invalid `all` has its own error already)."""
    if "all" in info.data and (info.data["all"] is None) == (ids is None):
        raise ValueError(f"give either all (true) or {info.field_name}, not both and not neither")
    return ids


AllFlag = Annotated[
    Annotated[bool, Field(strict=True, json_schema_extra={"const": True})] | None,
    AfterValidator(true_only),
]
IdList = Annotated[
    Annotated[
        list[PositiveId],
        Field(min_length=1, max_length=MAX_IMPORT_IDS, json_schema_extra={"uniqueItems": True}),
        AfterValidator(distinct),
    ]
    | None,
    AfterValidator(one_choice),
]


def all_or(ids_field: str) -> JsonDict:
    """JSON Schema's "either `all: true` or a list of ids": exactly one of them is given and not null."""
    return {
        "oneOf": [
            {"required": ["all"], "properties": {"all": {"const": True}}},
            {"required": [ids_field], "properties": {ids_field: {"type": "array"}}},
        ]
    }


class UsersImport(RequestBody):
    """Either `all` (every current employee) or `lucca_ids`; `notify` and `login_mode` override the settings."""

    model_config = ConfigDict(json_schema_extra=all_or("lucca_ids"))

    all: AllFlag = Field(default=None, description="true: every current employee.")
    lucca_ids: IdList = Field(
        default=None, validate_default=True, description=f"Lucca user ids, each once, at most {MAX_IMPORT_IDS:,}."
    )
    notify: Flag | None = Field(
        default=None, description="Have Cards e-mail the people it creates; default: `notify_created_users`."
    )
    login_mode: LoginMode | None = Field(
        default=None, description="How created accounts sign in (Cards `source`); default: the settings' one."
    )


class DepartmentsImport(RequestBody):
    """Either `all` (every active department) or `department_ids`."""

    model_config = ConfigDict(json_schema_extra=all_or("department_ids"))

    all: AllFlag = Field(default=None, description="true: every active department.")
    department_ids: IdList = Field(
        default=None, validate_default=True, description=f"Lucca department ids, each once, at most {MAX_IMPORT_IDS:,}."
    )


USERS_IMPORT_EXAMPLES = {
    "everyone": {"all": True},
    "some_people": {"lucca_ids": [100, 102], "notify": True, "login_mode": "sso"},
}
DEPARTMENTS_IMPORT_EXAMPLES = {"every_department": {"all": True}, "some_departments": {"department_ids": [10]}}
