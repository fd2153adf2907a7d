"""Logging set-up: one line per event, text or JSON, with the run's context and no secret in any line."""

import copy
import json
import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

LogFormat = Literal["text", "json"]

MASK = "***"
# The loggers whose handlers we format: ours, the server's and the worker's (root covers everything propagating).
LOGGER_FAMILIES = ("app", "uvicorn", "arq")

# A secret value ends at whitespace, quotes, separators or brackets; "<key>" in a partner's instructions is none.
_VALUE = r"[^\s\"'`,;&<>()\[\]{}]+"
_ROUTE_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_WEBHOOK_PATH = re.compile(r"(/integrations/webhooks)((?:/[^\s/?#\"']+)+)")
# The names of secret fields and parameters: every secret of the settings and tenant schemas (a test checks), and
# the tokens partners use. A name followed by `:` or `=` masks its value, quoted (spaces included) or not.
SECRET_NAMES = (
    r"api[-_]?(?:key|secret|token)", r"client[-_]?secret", r"(?:access|refresh|webhook|admin)[-_]?token",
    r"secret[-_]?key", r"password", r"passphrase", r"private[-_]?key",
)  # fmt: skip
_SECRETS = [
    re.compile(rf"(?i)\b(bearer\s+)(?!(?:tokens?|auth\w*|scheme|header|credentials?)\b){_VALUE}"),
    re.compile(rf"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?basic\s+){_VALUE}"),
    re.compile(rf"(?i)(\blucca\s+application\s*=\s*){_VALUE}"),
    re.compile(rf"(?i)([?&](?:token|key|secret|api[-_]?key|access[-_]?token)=){_VALUE}"),
    re.compile(r"\b(lct_)[A-Za-z0-9_-]+"),
]
_NAMED_SECRET = re.compile(rf"(?i)(\b(?:{'|'.join(SECRET_NAMES)})[\"']?\s*[:=]\s*)(\"[^\"\n]*|'[^'\n]*|{_VALUE})")
# A private key in PEM, to its END line (or to the end, when the line was cut): all of it is the secret.
_PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)")

_context: ContextVar[Mapping[str, str]] = ContextVar("log_context", default=MappingProxyType({}))


def redact(text: str) -> str:
    """Mask the secrets themselves (tokens, keys, tokens in webhook paths), leaving the words around them."""
    text = _WEBHOOK_PATH.sub(_redact_webhook_path, text)
    text = _PRIVATE_KEY.sub(MASK, text)
    text = _NAMED_SECRET.sub(_masked_value, text)
    for pattern in _SECRETS:
        text = pattern.sub(rf"\g<1>{MASK}", text)
    return text


def _masked_value(match: re.Match[str]) -> str:
    """`name: ***`, the value's opening quote kept (the closing one stays after it)."""
    quote = match[2][0] if match[2][0] in "\"'" else ""
    return f"{match[1]}{quote}{MASK}"


def _redact_webhook_path(match: re.Match[str]) -> str:
    """Route names (`softgarden`, `candidate-hired`) stay; any other segment of a webhook path is a token."""
    segments = match.group(2).split("/")[1:]
    kept = [segment if _is_route_word(segment) else MASK for segment in segments]
    return match.group(1) + "".join(f"/{segment}" for segment in kept)


def _is_route_word(segment: str) -> bool:
    return _ROUTE_WORD.fullmatch(segment) is not None and _GUID.fullmatch(segment) is None


def bind_log_context(*, run: object = None, tenant: object = None, connector: object = None) -> None:
    """Name the run, tenant or connector in every line logged from here on in this task (and tasks it starts)."""
    fields = {"run": run, "tenant": tenant, "connector": connector}
    bound = {key: str(value) for key, value in fields.items() if value is not None}
    _context.set({**_context.get(), **bound})


def log_context() -> Mapping[str, str]:
    """The fields bound in the current task."""
    return _context.get()


def _utc_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """`<UTC time> LEVEL logger [run=… tenant=… connector=…]: message`, redacted as a whole."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(log_context)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)

    def format(self, record: logging.LogRecord) -> str:
        # A copy: other handlers (uvicorn's, pytest's) format the same record after us.
        record = copy.copy(record)
        context = " ".join(f"{key}={value}" for key, value in log_context().items())
        record.__dict__["log_context"] = f" [{context}]" if context else ""
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound context, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **log_context(),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """Every handler of root, uvicorn, arq and app loggers writes through our formatter, each event once.

    Safe to call again. Handlers that uvicorn or arq set up keep their streams; root gets one of ours only when
    nobody gave it one. A logger with its own handlers stops propagating, or its lines would also reach root's.
    """
    formatter = make_formatter(log_format)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
        root.setLevel(level)
        # httpx writes a line per partner call; ours say what matters (retries), and /metrics counts the calls.
        logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    for handler in root.handlers:
        handler.setFormatter(formatter)
    for logger in _family_loggers():
        for handler in logger.handlers:
            handler.setFormatter(formatter)
        if logger.handlers:
            logger.propagate = False


def _family_loggers() -> list[logging.Logger]:
    """The existing loggers of our families (`arq`, `arq.worker`, `uvicorn.access`, …)."""
    loggers = [logging.getLogger(name) for name in LOGGER_FAMILIES]
    for name, logger in logging.root.manager.loggerDict.items():
        # A placeholder is a parent nobody asked for yet (`uvicorn` when only `uvicorn.error` exists).
        if name.split(".")[0] in LOGGER_FAMILIES and isinstance(logger, logging.Logger):
            loggers.append(logger)
    return loggers
