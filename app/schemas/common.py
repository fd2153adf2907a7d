"""Field types shared by several partners' schemas."""

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictStr

from app.services.work_email import check_template

PositiveId = Annotated[int, Field(gt=0)]
Text = Annotated[StrictStr, Field(max_length=500)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
EmailTemplate = Annotated[str, AfterValidator(check_template)]


def strict_date(value: Any) -> Any:
    """Dates are `YYYY-MM-DD` strings only (pydantic alone would take timestamps and other forms)."""
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("dates are written YYYY-MM-DD")
    return value
