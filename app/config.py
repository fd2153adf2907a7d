"""Typed settings, read from the environment and a `.env` file, checked at start-up."""

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - the known placeholder refused in production
# Values written in this repository (defaults, tests, examples) or too common to be secret: refused in production.
PLACEHOLDER_SECRETS = {
    DEV_SECRET_KEY, "", "changeme", "change-me", "secret", "please-change", "test-secret-key-not-for-production",
    "test-operator-token", "change-me-to-a-long-random-value", "replace-me-with-a-long-random-value",
}  # fmt: skip
MIN_SECRET_CHARS = 32


class Settings(BaseSettings):
    # An error never repeats the values read (a refused SECRET_KEY would be printed otherwise).
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/lucca_connectors"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    admin_token: SecretStr | None = None
    app_env: Literal["development", "test", "production"] = "development"
    allow_http_upstreams: bool = False
    # `json` writes one JSON object per log line (for log collectors); `text` one readable line.
    log_format: Literal["text", "json"] = "text"

    # Database connections an API process may keep open (a worker sizes its own; both open them lazily). Beyond
    # it, connections are opened and closed per request, which costs both processes dearly.
    api_database_pool_size: int = 50
    # Connections of the webhooks' own pool in an API process (app.db.create_driver_pool), also opened lazily.
    api_webhook_pool_size: int = 20
    # Partner calls: per-attempt timeout, and the backoff between attempts of a failing call.
    partner_timeout_seconds: float = 20.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    # How long one job attempt may wait inside a call before handing back to the queue.
    retry_in_call_seconds: float = 60.0
    # An item whose partner keeps failing for this long fails (contract: 15 minutes).
    give_up_after_seconds: float = 900.0
    # arq job timeout; a job left by a dead worker is taken up again after this plus 10 s.
    job_timeout_seconds: int = 120
    # Jobs one worker process runs at once; its database pool is sized from it (workers/settings.py).
    worker_max_jobs: int = 10
    # How often the worker sweeps for deliveries and runs left unfinished.
    sweep_every_seconds: int = 30
    # Finished runs older than this many days are deleted with their events, once a day (app/services/retention.py).
    run_retention_days: int = Field(default=90, ge=1)
    # Establishments and departments are cached this long (shared through Redis).
    structure_cache_seconds: int = 300
    # Where Lucca reaches this service's API (`https://connectors.example.com`): with it, tenants with OAuth get
    # Lucca's webhooks at `{public_base_url}/integrations/webhooks/lucca/{token}`; without it they are polled.
    public_base_url: str | None = None
    # The mail server of e-mail alerts (contract 14): `smtp://[user:password@]host[:port][?from=…]`, `smtps://` for
    # TLS from the first byte (smtp:// upgrades with STARTTLS when the server offers it). Without it, no e-mail channel.
    smtp_url: SecretStr | None = None

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        smtp_server(value.get_secret_value())
        return value

    @property
    def smtp(self) -> "SmtpServer | None":
        """The mail server of SMTP_URL, None when e-mail alerts are not set up."""
        return smtp_server(self.smtp_url.get_secret_value()) if self.smtp_url is not None else None

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("PUBLIC_BASE_URL must be an https:// URL with a host name, without query or fragment")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        if self.app_env != "production":
            return self
        if self.public_base_url is not None and not self.public_base_url.startswith("https://"):
            raise ValueError("PUBLIC_BASE_URL must be https:// when APP_ENV=production (Lucca calls https only)")
        problems = [
            problem
            for name, value in (("SECRET_KEY", self.secret_key), ("ADMIN_TOKEN", self.admin_token))
            if value is not None and (problem := weak_secret(name, value.get_secret_value()))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def weak_secret(name: str, value: str) -> str | None:
    """Why a secret is unfit for production, without repeating it; None when it is fit."""
    if value.strip().lower() in PLACEHOLDER_SECRETS:
        return f"{name} is a known placeholder: set it to a random value when APP_ENV=production"
    if len(value) < MIN_SECRET_CHARS:
        return (
            f"{name} has {len(value)} characters: when APP_ENV=production it needs at least {MIN_SECRET_CHARS} "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return None


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte
    username: str | None
    password: str | None
    sender: str  # the alerts' From address


def smtp_server(url: str) -> SmtpServer:
    """SMTP_URL read; a ValueError that never repeats it (it may hold a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL must read smtp://[user:password@]host[:port][?from=address]") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or parts.path not in ("", "/") or parts.fragment:
        raise ValueError("SMTP_URL must read smtp://[user:password@]host[:port][?from=address] (or smtps://)")
    query = parse_qs(parts.query)
    if set(query) - {"from"}:
        raise ValueError("SMTP_URL takes one query parameter: from (the alerts' sender address)")
    username = unquote(parts.username) if parts.username else None
    default_sender = username if username and "@" in username else f"lucca-connectors@{parts.hostname}"
    sender = query.get("from", [default_sender])[-1]
    if "@" not in sender:
        raise ValueError("SMTP_URL's from must be an e-mail address")
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if parts.scheme == "smtps" else 25),
        tls=parts.scheme == "smtps",
        username=username,
        password=unquote(parts.password) if parts.password else None,
        sender=sender,
    )


def get_settings() -> Settings:
    return Settings()
