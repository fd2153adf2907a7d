"""Softgarden: the connector's settings and the candidate-hired webhook body."""

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.schemas.common import (
    NO_NUL,
    EmailTemplate,
    Name,
    PositiveId,
    RequestBody,
    String,
    Text,
    pattern_in_property_names,
    refuse_nul,
    strict_date,
)

TEXT_MAX = 500
# Blank names are refused (the server strips them): in the schema, "has a character other than white space" (and,
# like every string, no NUL).
NotBlank = Annotated[Name, Field(json_schema_extra={"pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"})]
Status = Annotated[String, Field(min_length=1, max_length=200)]
Company = Annotated[String, Field(max_length=TEXT_MAX)]
# A letter or digit of any script (Python's `\w` without `_`, as the server reads the pattern).
HAS_LETTER = r"^[^\x00]*[^\W_][^\x00]*$"


def names_a_company(company: str) -> str:
    """An alias without any letter or digit (`-`, `★`) would match only companies that have no name either."""
    if re.match(HAS_LETTER, company) is None:
        raise ValueError("must hold a letter or a digit: it is compared with company names")
    return company


AliasCompany = Annotated[Company, AfterValidator(names_a_company), Field(json_schema_extra={"pattern": HAS_LETTER})]


class SoftgardenSettings(RequestBody):
    professional_email_template: EmailTemplate
    default_department_id: PositiveId = Field(description="Lucca department for every hire.")
    default_role_principal_id: PositiveId = Field(description="Lucca primary role for every hire.")
    hire_statuses: list[Status] = Field(
        default=["hired"], min_length=1, max_length=100, description="Statuses that mean hired, compared ignoring case."
    )
    establishment_ids: list[PositiveId] | None = Field(
        default=None, description="The Lucca establishments this configuration covers; absent: all."
    )
    establishment_aliases: dict[AliasCompany, PositiveId] = Field(
        default_factory=dict,
        description="Company as Softgarden sends it → Lucca establishment id.",
        json_schema_extra=pattern_in_property_names,
    )
    default_establishment_id: PositiveId | None = Field(default=None, description="Used when `company` is missing.")


class SenderKeys(BaseModel):
    """A partner payload: keys matched ignoring case, named as the sender spells them; unknown keys ignored.

    Runs stored before the aliases held lower-case keys (`firstname`): they still validate.
    """

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _keys_ignoring_case(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        names = {(field.alias or name).lower(): field.alias or name for name, field in cls.model_fields.items()}
        return {names.get(str(key).lower(), key): item for key, item in value.items()}


class SoftgardenAddress(SenderKeys):
    street: Text | None = None
    postal_code: Text | None = Field(default=None, alias="postalCode")
    city: Text | None = None
    country_code: Text | None = Field(default=None, alias="countryCode")

    def one_line(self) -> str:
        """`street, postalCode city, countryCode`, empty parts left out."""
        town = " ".join(part for part in (self.postal_code, self.city) if part)
        return ", ".join(part for part in (self.street, town, self.country_code) if part)


def _string_or_number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_NUMERIC_ID:
            raise ValueError(f"a number must be at most {MAX_NUMERIC_ID} (send a longer id as a string)")
        return str(value)
    if value is not None and not isinstance(value, str):
        raise ValueError("must be a string or a number")
    return value


def _one_line_or_object(value: Any) -> Any:
    """An address is one string or an object; a string is kept as its `line`."""
    if isinstance(value, str):
        if len(value) > TEXT_MAX:
            raise ValueError(f"must be at most {TEXT_MAX} characters")
        return {"line": refuse_nul(value)}
    if value is not None and not isinstance(value, dict | SoftgardenAddress):
        raise ValueError("must be one string or an object with street, postalCode, city and countryCode")
    return value


class SoftgardenAddressLine(SoftgardenAddress):
    line: str | None = None


ADDRESS_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": TEXT_MAX, "pattern": NO_NUL},
        SoftgardenAddress.model_json_schema(),
        {"type": "null"},
    ],
    "description": "One line, or its parts.",
}


# Softgarden's ids are strings; a number is taken too, as long as a 64-bit integer can hold it.
MAX_NUMERIC_ID = 2**63 - 1
CANDIDATE_ID_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": TEXT_MAX, "pattern": NO_NUL},
        {"type": "integer", "minimum": -MAX_NUMERIC_ID, "maximum": MAX_NUMERIC_ID},
        {"type": "null"},
    ]
}


class SoftgardenHire(SenderKeys):
    """The candidate-hired body; keys are matched ignoring case (`firstname` = `firstName`)."""

    application_id: NotBlank = Field(alias="applicationId")
    candidate_id: Annotated[Text | None, BeforeValidator(_string_or_number), WithJsonSchema(CANDIDATE_ID_SCHEMA)] = (
        Field(default=None, alias="candidateId")
    )
    status: Text | None = Field(default=None, description="A missing status means hired.")
    first_name: NotBlank = Field(alias="firstName")
    last_name: NotBlank = Field(alias="lastName")
    email: Text | None = None
    phone: Text | None = None
    address: Annotated[
        SoftgardenAddressLine | None, BeforeValidator(_one_line_or_object), WithJsonSchema(ADDRESS_SCHEMA)
    ] = None
    job_title: Text | None = Field(default=None, alias="jobTitle")
    company: Text | None = None
    start_date: Annotated[date | None, BeforeValidator(strict_date)] = Field(default=None, alias="startDate")

    @field_validator("application_id", "first_name", "last_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    def address_line(self) -> str | None:
        if self.address is None:
            return None
        return self.address.line or self.address.one_line() or None


HIRE_EXAMPLE = {
    "applicationId": "7f0c2a51-hire-0001",
    "candidateId": "c-991",
    "status": "hired",
    "firstName": "Zoë",
    "lastName": "Müller",
    "email": "zoe.m@gmail.com",
    "phone": "+49 170 1234567",
    "address": {"street": "Hauptstr. 1", "postalCode": "10115", "city": "Berlin", "countryCode": "DE"},
    "jobTitle": "Backend Engineer",
    "company": "Acme Berlin",
    "startDate": "2026-12-01",
}
