"""Start-up refusals and the log settings."""

import traceback
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import DEV_SECRET_KEY, Settings
from app.db import create_engine
from app.logging import redact

STRONG = "k3Jp9Qz-2vXw8LmN4rTb6YcH1sDf5GaE"  # 32 characters, written here for the test only


def test_production_refuses_a_missing_or_placeholder_secret_key() -> None:
    for key in (DEV_SECRET_KEY, "changeme", ""):
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            Settings(app_env="production", secret_key=key, admin_token=STRONG)
    assert Settings(app_env="production", secret_key=STRONG, admin_token=STRONG).app_env == "production"
    assert Settings(app_env="development", secret_key=DEV_SECRET_KEY).app_env == "development"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"secret_key": "a-real-but-short-value"}, "SECRET_KEY has 22 characters"),
        ({"admin_token": "tok-3f9a"}, "ADMIN_TOKEN has 8 characters"),
        ({"admin_token": "test-operator-token"}, "ADMIN_TOKEN is a known placeholder"),
        ({"secret_key": "test-secret-key-not-for-production"}, "SECRET_KEY is a known placeholder"),
    ],
)
def test_production_refuses_short_secrets_without_repeating_them(changes: dict[str, Any], named: str) -> None:
    production: dict[str, Any] = {"app_env": "production", "secret_key": STRONG, "admin_token": STRONG, **changes}
    development: dict[str, Any] = {"app_env": "development", **changes}
    with pytest.raises(ValidationError) as caught:
        Settings(**production)
    said = str(caught.value)
    assert (named in said and "at least 32" in said) or "placeholder" in said
    assert all(value not in said for value in changes.values())
    # Outside production, and with the operator API disabled, nothing is asked.
    assert Settings(**development).app_env == "development"
    assert Settings(app_env="production", secret_key=STRONG, admin_token=None).admin_token is None


async def test_sql_errors_hide_their_parameters(migrated_database: str) -> None:
    engine = create_engine(migrated_database)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as caught:
                # Fails whatever its parameter: the error's text would list the parameters after the statement.
                await connection.execute(text("SELECT CAST(:value AS text), no_such_column"), {"value": "9f86d081884c"})
    finally:
        await engine.dispose()
    # What a logged traceback says of the error (its source lines aside).
    said = "".join(traceback.format_exception_only(caught.value))
    assert "9f86d081" not in said and "SQL parameters hidden" in said


def test_log_format_is_text_unless_json_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert Settings().log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()


def test_tokens_are_redacted_from_log_lines() -> None:
    line = redact('"POST /integrations/webhooks/cards/6f1c2a7e-aaaa HTTP/1.1" Authorization: Bearer abc.def')
    assert "6f1c2a7e" not in line and "abc.def" not in line
    assert "lucca application=***" in redact("header lucca application=secret-key")
