"""Start-up refusals and the log settings."""

import pytest
from pydantic import ValidationError

from app.config import DEV_SECRET_KEY, Settings
from app.logging import redact


def test_production_refuses_a_missing_or_placeholder_secret_key() -> None:
    for key in (DEV_SECRET_KEY, "changeme", ""):
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            Settings(app_env="production", secret_key=key)
    assert Settings(app_env="production", secret_key="a-real-long-random-value").app_env == "production"
    assert Settings(app_env="development", secret_key=DEV_SECRET_KEY).app_env == "development"


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
