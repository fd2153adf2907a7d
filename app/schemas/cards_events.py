"""Cards learning events as its webhooks send them (partners.md 3.2); only chapter and quiz events are read."""

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from app.schemas.common import NO_NUL, String, json_integer, refuse_nul

CHAPTER_COMPLETE = "chapter-complete"
QUIZ_COMPLETE = "quiz-complete"
LEARNING_TYPES = (CHAPTER_COMPLETE, QUIZ_COMPLETE)
# An id Cards sends as a number is stored as its text; a longer one must come as a string.
MAX_NUMERIC_ID = 2**63 - 1
# "YYYY-MM-DD HH:MM:SS" naming a real day and time (29 February in leap years only), so the schema says it all.
_MONTH_DAY = r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
_LEAP_YEAR = r"(?:[1-9]\d(?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)"
TIME_PATTERN = (
    rf"^(?:[1-9]\d{{3}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)[ T](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{{1,6}})?$"
)


def _id_text(value: Any) -> Any:
    """Cards' ids are strings or integers; both are kept as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_NUMERIC_ID:
            raise ValueError(f"a number must be at most {MAX_NUMERIC_ID} (send a longer id as a string)")
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be a string or an integer")
    return value


def _number(value: Any) -> Any:
    """A JSON number, read exactly (0.285 stays 0.285); never a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return Decimal(str(value))


def _cards_time(value: Any) -> Any:
    """Cards writes naive times, "YYYY-MM-DD HH:MM:SS" (its timezone is not documented: kept as written)."""
    if not isinstance(value, str) or re.fullmatch(TIME_PATTERN, value) is None:
        raise ValueError('must be a real time written "YYYY-MM-DD HH:MM:SS"')
    return datetime.fromisoformat(value)


ID_SCHEMA = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL},
        {"type": "integer", "minimum": -MAX_NUMERIC_ID, "maximum": MAX_NUMERIC_ID},
    ]
}


# Cards' ids (events, chapters): strings or integers, kept as text.
ExternalId = Annotated[
    str,
    BeforeValidator(_id_text),
    Field(min_length=1, max_length=200),
    AfterValidator(refuse_nul),
    WithJsonSchema(ID_SCHEMA),
]
TrainingId = Annotated[int, Field(gt=0, le=MAX_NUMERIC_ID), BeforeValidator(json_integer)]
Share = Annotated[
    Decimal, BeforeValidator(_number), Field(ge=0, le=1), WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})
]
Points = Annotated[Decimal, BeforeValidator(_number), Field(ge=0), WithJsonSchema({"type": "number", "minimum": 0})]
CardsTime = Annotated[
    datetime,
    BeforeValidator(_cards_time),
    WithJsonSchema({"type": "string", "pattern": TIME_PATTERN, "examples": ["2024-01-20 09:09:00"]}),
]
Email = Annotated[String, Field(min_length=1, max_length=500)]


class PartnerPayload(BaseModel):
    """Keys this service does not read are ignored."""

    model_config = ConfigDict(extra="ignore")


class Learner(PartnerPayload):
    email: Email


class Chapter(PartnerPayload):
    id: ExternalId


class Training(PartnerPayload):
    id: TrainingId
    chapter: Chapter | None = None


class Score(PartnerPayload):
    points: Points | None = None
    max_points: Points | None = None
    progress: Share = Field(description="The learner's progress in the training after this event, 0 to 1.")


class LearningData(PartnerPayload):
    created_at: CardsTime = Field(description="When the learner completed the chapter or quiz.")
    points: Points | None = None
    user: Learner
    training: Training
    score: Score

    def quiz_points(self) -> Decimal | None:
        """This attempt's points: the score's, else the event's own."""
        return self.score.points if self.score.points is not None else self.points


def _learning_events_need_data(schema: dict[str, Any]) -> None:
    """The rule of `_read_for_learning_events`, in JSON Schema: other types' `created_at` and `data` are free."""
    properties = schema["properties"]
    learning = {"created_at": properties.pop("created_at"), "data": properties.pop("data")}
    learning["data"] = {key: value for key, value in learning["data"].items() if key != "default"}
    learning["data"]["anyOf"] = [part for part in learning["data"]["anyOf"] if part != {"type": "null"}]
    properties["created_at"] = {"description": "When Cards sent the event (read on chapter and quiz events)."}
    properties["data"] = {"description": "The event's content (read on chapter and quiz events)."}
    schema["if"] = {"properties": {"type": {"enum": list(LEARNING_TYPES)}}, "required": ["type"]}
    schema["then"] = {"properties": learning, "required": ["data"]}


class CardsEventIn(PartnerPayload):
    """One Cards webhook event: any `type` is stored; `chapter-complete` and `quiz-complete` need their `data`."""

    model_config = ConfigDict(json_schema_extra=_learning_events_need_data)

    id: ExternalId = Field(description="Cards' unique event id: an id seen before is not stored again.")
    type: Annotated[String, Field(min_length=1, max_length=200)]
    created_at: CardsTime | None = Field(default=None, description="When Cards sent the event.")
    data: LearningData | None = Field(default=None, validate_default=True)

    @field_validator("created_at", "data", mode="before")
    @classmethod
    def _read_for_learning_events(cls, value: Any, info: ValidationInfo) -> Any:
        """Other types carry other data, which this service does not read (nor check)."""
        if info.data.get("type") not in LEARNING_TYPES:
            return None
        if info.field_name == "data" and value is None:
            raise ValueError(f"is required for {' and '.join(LEARNING_TYPES)} events")
        return value

    def payload(self) -> dict[str, Any]:
        """What is kept of the event: the fields this service reads, as JSON."""
        return self.model_dump(mode="json", exclude_none=True)


class EventAccepted(BaseModel):
    id: str = Field(description="The event's id, as stored.")
    duplicate: bool = Field(description="True when this event id was received before: nothing more was done.")


CHAPTER_EXAMPLE: dict[str, Any] = {
    "id": "evt-20240120-0001",
    "type": CHAPTER_COMPLETE,
    "created_at": "2024-01-20 09:10:00",
    "data": {
        "created_at": "2024-01-20 09:09:00",
        "points": 1,
        "user": {"id": 12, "firstname": "Claire", "lastname": "Martin", "email": "claire.martin@acme.fr"},
        "training": {"id": 77, "title": "GDPR basics", "chapters_count": 5, "chapter": {"id": 701, "position": 1}},
        "score": {"points": 1, "max_points": 1, "progress": 0.2},
    },
}
QUIZ_EXAMPLE = {
    **CHAPTER_EXAMPLE,
    "id": "evt-20240120-0002",
    "type": QUIZ_COMPLETE,
    "data": {
        **CHAPTER_EXAMPLE["data"],
        "created_at": "2024-01-20 09:15:00",
        "training": {"id": 77, "title": "GDPR basics", "chapters_count": 5, "chapter": {"id": 702, "position": 2}},
        "score": {"points": 3, "max_points": 4, "progress": 0.4},
    },
}
