"""Lucca's legacy query filters, `?prop=[operator,]value[,value…]`, shared by v3 users and v4 structure lists."""

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from starlette.datastructures import QueryParams

from app.sandbox.lucca_models import DAY_PATTERN, TIMESTAMP_PATTERN, LuccaError, lucca_day, lucca_timestamp

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "since": operator.ge,
    "until": operator.le,
    "greaterthan": operator.gt,
    "lowerthan": operator.lt,
}
FILTER_OPERATORS = {"notequal", "like", "between", *COMPARISONS}


@dataclass(frozen=True)
class Filter:
    """One `?prop=[operator,]value[,value…]` condition."""

    prop: str
    operator: str
    operands: list[str]

    def accepts(self, actual: Any) -> bool:
        """Whether the property's value (`actual`) satisfies the condition."""
        if self.operator == "equal":
            return any(same_value(actual, operand) for operand in self.operands)
        if self.operator == "notequal":
            return not any(same_value(actual, operand) for operand in self.operands)
        if self.operator == "like":
            # Lucca's `like` is a substring match ignoring case (not accents).
            return actual is not None and ",".join(self.operands).casefold() in str(actual).casefold()
        if actual is None:
            return False
        if self.operator == "between":
            if len(self.operands) != 2:
                raise LuccaError(400, f"{self.prop}=between needs two values: between,FROM,TO")
            low, high = (ordering_operand(actual, operand) for operand in self.operands)
            return bool(low <= ordered_value(actual) <= high)
        compare = COMPARISONS[self.operator]
        return bool(compare(ordered_value(actual), ordering_operand(actual, self.operands[0])))


def same_value(actual: Any, expected: str) -> bool:
    """Lucca equality: `null`, numbers and booleans by value, text exactly (case included: use `like` to ignore it)."""
    if expected.lower() == "null":
        return actual is None
    if actual is None:
        return False
    if isinstance(actual, bool):
        return str(actual).lower() == expected.lower()
    if isinstance(actual, int):
        return expected.lstrip("-").isdigit() and int(expected) == actual
    if is_lucca_day(actual) and DAY_PATTERN.fullmatch(expected):
        return str(actual) == lucca_day(expected)
    return str(actual) == expected


def is_lucca_day(value: Any) -> bool:
    """A contract date as this sandbox stores it (`YYYY-MM-DDT00:00:00`; a `modifiedAt` has milliseconds)."""
    return isinstance(value, str) and DAY_PATTERN.fullmatch(value) is not None and "." not in value


def ordered_value(actual: Any) -> Any:
    """The property's value as ordering filters compare it: dates by their day."""
    return actual[:10] if is_lucca_day(actual) else actual


def ordering_operand(actual: Any, expected: str) -> Any:
    """The operand of an ordering filter: a number for a number, a day for a date, else the text."""
    if isinstance(actual, int) and not isinstance(actual, bool):
        try:
            return int(expected)
        except ValueError as exc:
            raise LuccaError(400, f"'{expected}' is not a number") from exc
    if is_lucca_day(actual):
        day = expected.strip()[:10]
        try:
            return date.fromisoformat(day).isoformat()
        except ValueError as exc:
            raise LuccaError(400, f"'{expected}' is not a date") from exc
    if isinstance(actual, str) and TIMESTAMP_PATTERN.fullmatch(actual):
        return lucca_moment(expected)
    return expected


@cache
def lucca_moment(text: str) -> str:
    """A time as `modifiedAt` holds it (UTC, milliseconds, no offset), so the two compare as text."""
    try:
        return lucca_timestamp(text.strip())
    except ValueError as exc:
        raise LuccaError(400, f"'{text}' is not a date and time") from exc


def parse_filters(params: QueryParams, properties: Iterable[str]) -> list[Filter]:
    """The query parameters naming a property (any case); every other parameter is ignored."""
    names = {name.lower(): name for name in properties}
    filters = []
    for key, raw in params.multi_items():
        prop = names.get(key.lower())
        if prop is None:
            continue
        head, _, rest = raw.partition(",")
        if head.lower() in FILTER_OPERATORS:
            filters.append(Filter(prop, head.lower(), rest.split(",")))
        else:
            filters.append(Filter(prop, "equal", raw.split(",")))
    return filters
