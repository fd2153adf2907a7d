"""Start-up refusals and log redaction."""

import logging

import pytest
from pydantic import ValidationError

from app.config import DEV_SECRET_KEY, Settings
from app.logging import RedactingFilter, redact


def test_production_refuses_a_missing_or_placeholder_secret_key() -> None:
    for key in (DEV_SECRET_KEY, "changeme", ""):
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            Settings(app_env="production", secret_key=key)
    assert Settings(app_env="production", secret_key="a-real-long-random-value").app_env == "production"
    assert Settings(app_env="development", secret_key=DEV_SECRET_KEY).app_env == "development"


def test_tokens_are_redacted_from_log_lines() -> None:
    line = redact('"POST /integrations/webhooks/cards/6f1c2a7e-aaaa HTTP/1.1" Authorization: Bearer abc.def')
    assert "6f1c2a7e" not in line and "abc.def" not in line
    assert "lucca application=[redacted]" in redact("header lucca application=secret-key")


def test_the_filter_rewrites_formatted_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "call %s", ("Bearer s3cret",), None)
    RedactingFilter().filter(record)
    assert "s3cret" not in record.getMessage()
