"""Generated hostile requests (hypothesis) to every operation of the real server's OpenAPI document.

Bodies (raw JSON text: deep nesting, huge numbers, NaN, NUL and lone surrogates, broken UTF-8, the documented
examples with one key or value made hostile), path parameters and query values. The server must never answer
5xx, every error must be JSON `{"detail": ...}`, and a refused request must store nothing (rows are counted before
and after). `FUZZ_EXAMPLES` (default 400) sets how many requests are generated, shared out over the operations (at least
two each, bodies three times as many); the run is derandomised.
"""

import asyncio
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ADMIN, add_softgarden, create_tenant, hire_body
from tests.live_server import LiveServer

pytestmark = pytest.mark.usefixtures("clean_state")
log = logging.getLogger(__name__)
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
TABLES = ("tenants", "connectors", "runs", "run_events", "deliveries", "links", "cards_user_links", "cards_group_links",
          "cards_events", "cards_stats_pushed", "schedules", "console_links", "elevo_people_sent",
          "elevo_people_left_out")  # fmt: skip
# Operations whose success would take away what the others need (the tenant, the webhook token): their path
# parameters are always hostile, so they never succeed.
DESTRUCTIVE = ("delete", "rotate-token")


@dataclass(frozen=True)
class Raw:
    """JSON text written as is (a number too long for Python, NaN, a deep array, ...)."""

    text: str


def to_json(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_json(str(key))}: {to_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    return json.dumps(value)  # ensure_ascii: a lone surrogate becomes a `\ud800` escape, as a sender would write it


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE_TEXT = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "x" * 5000, "9" * 5000, "%00", "../..", "\u202e",
                     "😀" * 300, "", " ", "\n\r\t", "\x7f", "***", "{first_name}", "Robert'); DROP TABLE runs;--"]),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40),
)  # fmt: skip
RAW_NUMBERS = st.sampled_from(["9" * 5000, "9" * 250, "1e999", "-1e999", "NaN", "Infinity", "-Infinity", "-0",
                               "2147483648", "9223372036854775808", "1.5", "0", "-1", "1e-999", "1" + "0" * 120,
                               "0.0000000000000000000000001"]).map(Raw)  # fmt: skip
HOSTILE_VALUES: st.SearchStrategy[Any] = st.one_of(
    HOSTILE_TEXT,
    RAW_NUMBERS,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([None, True, False, [], {}, Raw(deep(40)), Raw(deep(100_000)), Raw('{"a":' * 40 + "1" + "}" * 40)]),
    st.lists(HOSTILE_TEXT, max_size=3),
    st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=2),
)
RAW_BODIES = st.sampled_from(
    [deep(100_000), '{"a":' * 50_000 + "1" + "}" * 50_000, "", "null", "[]", '"\\u0000"', "{", '{"a": 1,}', "{} []",
     '{"a": NaN}', "\ufeff{}", '{"\\ud800": 1}', "9" * 5000]
).map(lambda text: text.encode("utf-8"))  # fmt: skip
BROKEN_BYTES = st.sampled_from([b"\xff\xfe{}", b'{"firstName": "\xc3"}', json.dumps({"a": 1}).encode("utf-16")])


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: list[dict[str, Any]]
    example: Any
    auth: dict[str, str]


def operations(document: dict[str, Any], webhook_auth: dict[str, str]) -> list[Operation]:
    found = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            body = spec.get("requestBody", {}).get("content", {}).get("application/json", {})
            examples = [example["value"] for example in body.get("examples", {}).values()]
            schemes = {name for requirement in spec.get("security", []) for name in requirement}
            auth = webhook_auth if "softgardenWebhookToken" in schemes else ADMIN
            example = examples[0] if examples else (None if not body else {})
            found.append(Operation(method.upper(), path, spec.get("parameters", []), example, auth))
    return found


def places(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON value (the value itself included)."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += places(item, (*at, index))
    return found


def mutated(value: Any, at: tuple[Any, ...], action: str, hostile: Any, key: str) -> Any:
    """`value` with the place `at` replaced, renamed to `key`, or given a sibling `key`."""
    if not at:
        return {**value, key: hostile} if action == "add" and isinstance(value, dict) else hostile
    head, rest = at[0], at[1:]
    if isinstance(value, list):
        return [
            mutated(item, rest, action, hostile, key) if index == head else item for index, item in enumerate(value)
        ]
    if not rest and action == "rename":
        return {(key if name == head else name): item for name, item in value.items()}
    return {name: mutated(item, rest, action, hostile, key) if name == head else item for name, item in value.items()}


@st.composite
def bodies(draw: st.DrawFn, example: Any) -> bytes:
    if example is None or draw(st.integers(0, 4)) == 0:
        return draw(st.one_of(RAW_BODIES, BROKEN_BYTES))
    at = draw(st.sampled_from(places(example)))
    action = draw(st.sampled_from(["replace", "rename", "add"]))
    text = to_json(mutated(example, at, action, draw(HOSTILE_VALUES), draw(HOSTILE_TEXT)))
    return text.encode("utf-8", "surrogatepass")


def segment(text: str) -> str:
    return text if text.startswith("%") else quote(text, safe="", errors="surrogatepass")


@st.composite
def requests(draw: st.DrawFn, operation: Operation, known: dict[str, str]) -> tuple[str, str, bytes | None]:
    path = operation.path
    destructive = operation.method == "DELETE" or path.endswith(DESTRUCTIVE)
    query = []
    for parameter in operation.parameters:
        name = parameter["name"]
        if parameter["in"] == "path":
            hostile = destructive or draw(st.integers(0, 4)) == 0
            value = draw(HOSTILE_TEXT) if hostile else known.get(name, "acme")
            path = path.replace("{" + name + "}", segment(value) or "%20")
        elif parameter["in"] == "query" and draw(st.booleans()):
            value = draw(st.one_of(HOSTILE_TEXT, RAW_NUMBERS.map(lambda raw: raw.text)))
            query.append(f"{name}={quote(value, safe='', errors='surrogatepass')}")
    url = path + ("?" + "&".join(query) if query else "")
    return operation.method, url, None if operation.example is None else draw(bodies(operation.example))


def is_json_detail(answer: httpx.Response) -> bool:
    return answer.headers.get("content-type", "").startswith("application/json") and "detail" in answer.json()


async def row_counts(connection: asyncpg.Connection) -> dict[str, int]:
    return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}  # noqa: S608


async def test_hostile_requests_to_every_operation_never_get_a_5xx(
    client: httpx.AsyncClient, live_api: LiveServer, migrated_database: str
) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    skipped = await client.post(
        "/integrations/webhooks/softgarden/candidate-hired",
        json=hire_body(status="interview"),
        headers=tenant.webhook_auth,
    )
    known = {"slug": "acme", "run_id": skipped.json()["run_id"]}
    document = (await client.get("/openapi.json")).json()
    every = operations(document, tenant.webhook_auth)
    # Operations with a body have the most to get wrong: they get three times as many requests. Each operation is
    # fuzzed on its own, so every one is reached whatever their number.
    shares = [1 if operation.example is None else 3 for operation in every]
    database = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    loop = asyncio.get_running_loop()
    statuses: Counter[str] = Counter()
    problems: list[str] = []

    def counts() -> dict[str, int]:
        return asyncio.run_coroutine_threadsafe(row_counts(database), loop).result()

    def fuzz(operation: Operation, examples: int) -> None:
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(requests(operation, known))
        def one_request(request: tuple[str, str, bytes | None]) -> None:
            method, url, body = request
            headers = {**operation.auth, "Content-Type": "application/json"}
            before = counts()
            with httpx.Client(base_url=live_api.url, timeout=30) as http:
                answer = http.request(method, url, content=body, headers=headers)
            statuses[f"{operation.method} {operation.path} {answer.status_code}"] += 1
            shown = f"{method} {url[:120]} {(body or b'')[:120]!r}"
            if answer.status_code >= 500:
                problems.append(f"{answer.status_code} for {shown}: {answer.text[:200]}")
            elif answer.status_code >= 400:
                if not is_json_detail(answer):
                    problems.append(f"not a JSON detail for {shown}: {answer.text[:200]}")
                if counts() != before:
                    problems.append(f"{answer.status_code} stored something for {shown}")

        one_request()

    def fuzz_all() -> None:
        for operation, share in zip(every, shares, strict=True):
            fuzz(operation, max(2, FUZZ_EXAMPLES * share // sum(shares)))

    try:
        await asyncio.to_thread(fuzz_all)
    finally:
        await database.close()
    lines = "".join(f"\n  {count:4} × {key}" for key, count in sorted(statuses.items()))
    log.info("%d hostile requests to %d operations:%s", sum(statuses.values()), len(every), lines)
    assert not problems, "\n".join(problems[:30])
    assert {key.rsplit(" ", 1)[0] for key in statuses} == {f"{op.method} {op.path}" for op in every}
