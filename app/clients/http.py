"""The call machinery every partner client shares: URL joining, shared rate limit, retries, error types."""

import asyncio
import email.utils
import logging
import math
import re
import socket
import ssl
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.clients.access import AccountAccess
from app.clients.addresses import RefusedAddress
from app.clients.ratelimit import RateLimitBusy, SlidingWindowLimiter
from app.logging import redact
from app.metrics import metrics

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429})
AUTH_STATUSES = frozenset({401, 403})
NO_ANSWER = 0  # the status of a rejection that no partner answered (a refused address)
MESSAGE_KEYS = ("Message", "message", "error_description", "error", "detail", "title", "description")
# A partner's own words in a run event: one short line (a page of its error body would drown the event).
MAX_MESSAGE_CHARS = 120
# HTML tags in a message (`<key>` and other placeholders are words, not tags).
HTML_TAG = re.compile(
    r"</?(?:html|head|body|title|meta|link|h[1-6]|p|div|span|b|i|u|em|strong|small|br|hr|pre|code|a|img|ul|ol|li"
    r"|table|thead|tbody|tr|td|th|center|font|form|input|script|style|iframe)\b[^<>]*>|<!--.*?-->|<![^<>]*>",
    re.IGNORECASE,
)
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


MIN_RETRY_SECONDS = 0.25
# A retryable HTTP answer in words, after "<Partner> at <host>".
STATUS_WORDS = {
    408: "timed out the request",
    429: "is limiting requests",
    500: "had an internal error",
    502: "is unreachable behind its gateway",
    503: "is unavailable",
    504: "timed out behind its gateway",
}
# What the network said, read from the error's text when its type does not tell.
TRANSPORT_WORDS = (
    (("refused", "connect call failed"), "connection refused"),
    (("name or service not known", "nodename nor servname", "name resolution", "getaddrinfo"), "name not found"),
    (("reset",), "connection reset"),
    (("timed out", "timeout"), "timed out"),
    (("ssl", "certificate", "tls"), "secure connection failed"),
)


class PartnerError(Exception):
    """A partner call failed; `message` is plain words for a tenant admin and never holds a secret."""

    def __init__(self, partner: str, message: str) -> None:
        super().__init__(partner, message)
        self.partner = partner
        self.message = message

    def __str__(self) -> str:
        return self.message


class PartnerUnavailable(PartnerError):
    """A retryable failure that outlasted this call's budget; `retry_after` is the partner's hint, if any."""

    def __init__(self, partner: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(partner, message)
        # Keep every constructor argument in args so the exception survives pickling (arq stores results).
        self.args = (partner, message, retry_after)
        self.retry_after = retry_after


class PartnerRejected(PartnerError):
    """A final refusal: retrying the same call will not help."""

    def __init__(self, partner: str, status: int, message: str) -> None:
        super().__init__(partner, message)
        self.args = (partner, status, message)
        self.status = status


class PartnerAuthFailed(PartnerRejected):
    """The partner refused the credentials (401/403)."""


@dataclass(frozen=True)
class PartnerErrorTypes:
    """The exception types a client raises, so each partner raises its own subclasses."""

    unavailable: type[PartnerUnavailable] = PartnerUnavailable
    rejected: type[PartnerRejected] = PartnerRejected
    auth_failed: type[PartnerAuthFailed] = PartnerAuthFailed


@dataclass
class FailureStreak:
    """Where one piece of work stands in the backoff schedule: its failed attempts so far, and the first one's time.

    It outlives a call and a job attempt (the run stores it), so the waits keep doubling across both.
    """

    failures: int = 0
    since: datetime | None = None

    def failed(self, now: datetime) -> None:
        self.failures += 1
        self.since = self.since or now


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff doubling from `base_seconds` up to `max_seconds`, retried in-process for `in_call_seconds`.

    Bound to a `streak` (`following`), every call counts its failures there and continues its schedule;
    without one, each call starts the schedule afresh. No wait exceeds `give_up_seconds`: the work gives up then.
    """

    base_seconds: float = 5.0
    max_seconds: float = 300.0
    in_call_seconds: float = 60.0
    give_up_seconds: float = 900.0
    # How long a call may wait for a slot of its rate limit; None: as long as the budget needs (background work).
    rate_wait_seconds: float | None = None
    streak: FailureStreak | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.max_seconds < self.base_seconds or self.in_call_seconds < 0:
            raise ValueError("retry policy needs 0 < base_seconds <= max_seconds and in_call_seconds >= 0")
        if self.give_up_seconds <= 0:
            raise ValueError("retry policy needs give_up_seconds > 0")

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (0 for the first retry)."""
        return min(self.max_seconds, self.base_seconds * 2.0 ** min(retry_number, 64))

    def wait(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th failed attempt in a row.

        The partner's Retry-After, when it gives one, is the wait (a longer one would idle the account's budget),
        with a floor so that "Retry-After: 0" cannot spin; otherwise the backoff. Never beyond the give-up time:
        a Retry-After of 1e12 s would overflow a datetime, and the work would give up first anyway.
        """
        if retry_after is not None:
            return min(max(retry_after, MIN_RETRY_SECONDS), self.give_up_seconds)
        return min(self.backoff(max(failures - 1, 0)), self.give_up_seconds)

    def following(self, streak: FailureStreak) -> "RetryPolicy":
        """The same policy, counting failures in `streak` (one run's work) instead of per call."""
        return replace(self, streak=streak)


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` calls in any `per_seconds`-long interval."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class _Failure:
    """A retryable outcome of one attempt."""

    label: str
    description: str
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date); None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (_aware(when) - _aware(now)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _aware(moment: datetime) -> datetime:
    """Read a naive datetime as UTC, as HTTP dates are."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def host_of(base_url: str) -> str:
    """The host (and port, when given) a base URL names, as a tenant admin would recognise it."""
    return urlsplit(base_url.strip()).netloc.rpartition("@")[2] or base_url


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it, down the chain (httpx wraps httpcore, which wraps the OSError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def transport_reason(error: httpx.TransportError) -> str:
    """Why a call got no HTTP answer, in words (connection refused, name not found, ...), never a class name."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return "name not found"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return "connection reset"
        if isinstance(cause, TimeoutError):
            return "timed out"
        if isinstance(cause, ssl.SSLError):
            return "secure connection failed"
    said = " ".join(str(cause) for cause in _causes(error)).lower()
    for words, reason in TRANSPORT_WORDS:
        if any(word in said for word in words):
            return reason
    if isinstance(error, httpx.RemoteProtocolError):
        return "connection closed without an answer"
    return "could not connect" if isinstance(error, httpx.ConnectError) else "network error"


def window_key(partner: str, scope: str) -> str:
    """The Redis key of the rate-limit window of a partner account (or of one credential's own, AccountAccess)."""
    return f"ratelimit:{partner}:{scope}"


def join_url(base_url: str, path: str) -> str:
    """Append `path` to `base_url`, keeping the base URL's own path prefix; no path: the base URL itself."""
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}" if path else base_url


def partner_message(response: httpx.Response, mask: Callable[[str], str] = redact) -> str:
    """The partner's own explanation from an error body (a JSON message field, else its text unless it is an HTML
    page), masked by `mask` and only then cut, so a secret at the cut leaves nothing of itself behind."""
    try:
        body = response.json()
    except ValueError:
        body = None
    found = _find_message(body)
    if found is None and not _is_html(response):
        found = response.text
    return short_line(mask(found or "")) or response.reason_phrase or f"HTTP {response.status_code}"


def short_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text fit for a run event: tags and control characters dropped, one line, at most `limit` characters."""
    text = " ".join(CONTROL_CHARS.sub(" ", HTML_TAG.sub(" ", text)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _is_html(response: httpx.Response) -> bool:
    """An HTML or XML error page (a proxy's or a framework's): its text is markup, not an explanation."""
    kind = response.headers.get("content-type", "").lower()
    return "html" in kind or "xml" in kind or response.text.lstrip().startswith("<")


def _find_message(body: Any) -> str | None:
    """The first message-like string in a JSON error body, looking one level into nested error objects."""
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return None
    for key in MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, dict):
            value = _find_message(value)
        if isinstance(value, str) and value.strip():
            return value
    return None


class PartnerHTTP:
    """Sends a partner's calls: shared rate limit before each attempt, retries with backoff, typed errors.

    With a limiter, `access` says whose window a call counts in: the account's, once it has accepted the
    credential; until then the credential's own, so that a credential the account refuses never touches its window.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        partner: str,
        base_url: str,
        headers: Mapping[str, str],
        retry: RetryPolicy,
        limiter: SlidingWindowLimiter | None = None,
        access: AccountAccess | None = None,
        rate_limit: RateLimit | None = None,
        errors: PartnerErrorTypes = PartnerErrorTypes(),
        timeout: float | None = None,
    ) -> None:
        if limiter is not None and (access is None or rate_limit is None):
            raise ValueError("a limiter needs both access and rate_limit")
        self._http = http
        self._partner = partner
        self._name = partner.capitalize()
        # How events name the partner: "Lucca at acme.ilucca.net".
        self._where = f"{self._name} at {host_of(base_url)}"
        self._base_url = base_url
        self._headers = dict(headers)
        self._retry = retry
        self._limiter = limiter
        self._access = access
        self._rate_limit = rate_limit
        self._errors = errors
        # Each attempt's own timeout, when shorter than the shared client's.
        self._timeout = timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        replay_safe: bool = True,
        own_statuses: Collection[int] = (),
    ) -> httpx.Response:
        """Send one call, retrying transient failures within the policy; return the 2xx response.

        A call that is not `replay_safe` (a create) is resent only after a 429, which the partner did not act on:
        after a timeout or a 5xx it may have acted, so the caller must look before it tries again. An answer with
        one of `own_statuses` is returned as it is, for the caller to read (Lucca's OAuth API: a 401 asks for a
        fresh token, a 403 names a scope); it proves nothing about the credential either way.
        """
        # The run's streak continues the schedule where its earlier calls and job attempts left it.
        streak = self._retry.streak or FailureStreak()
        waited = 0.0
        while True:
            scope = await self._acquire()
            outcome = await self._attempt(method, path, params, json, data, content, own_statuses)
            if isinstance(outcome, httpx.Response):
                if outcome.is_success:
                    await self._accepted(scope)
                return outcome
            streak.failed(datetime.now(UTC))
            delay = self._retry.wait(streak.failures, outcome.retry_after)
            if waited + delay > self._retry.in_call_seconds or not (replay_safe or outcome.label == "429"):
                # The wait goes on in the queue (execution.postpone), from the same streak.
                raise self._errors.unavailable(self._partner, outcome.description, outcome.retry_after)
            # The log context (bound by execute_run) names the run and tenant.
            log.warning(
                "%s %s %s failed (%s); trying again in %.2f s", self._partner, method, path, outcome.label, delay
            )
            await asyncio.sleep(delay)
            waited += delay

    async def _acquire(self) -> str | None:
        """Take a slot of the rate limit, when this partner has one; returns whose window it was in."""
        if self._limiter is None or self._access is None or self._rate_limit is None:
            return None
        limit = self._rate_limit
        scope = await self._access.scope()
        try:
            await self._limiter.acquire(
                window_key(self._partner, scope),
                limit.requests,
                limit.per_seconds,
                partner=self._partner,
                max_wait=self._retry.rate_wait_seconds,
            )
        except RateLimitBusy as busy:
            message = (
                f"{self._where}: this service's share of its rate limit ({limit.requests} calls per "
                f"{limit.per_seconds:g} s) is in use by other work; try again in {math.ceil(busy.wait_seconds)} s"
            )
            raise self._errors.unavailable(self._partner, message, busy.wait_seconds) from None
        return scope

    async def _accepted(self, scope: str | None) -> None:
        """A 2xx proves the credential; a call it made before that is counted in the account's window now, so that
        window still sees every call of the credentials that share it."""
        if self._access is None:
            return
        await self._access.accepted()
        if scope is not None and scope != self._access.account and self._limiter and self._rate_limit:
            await self._limiter.record(window_key(self._partner, self._access.account), self._rate_limit.per_seconds)

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json: Any,
        data: Mapping[str, str] | None,
        content: bytes | None,
        own_statuses: Collection[int],
    ) -> httpx.Response | _Failure:
        """One attempt: the 2xx (or own-status) response, a retryable failure, or a raised final rejection."""
        url = join_url(self._base_url, path)
        try:
            response = await self._http.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                content=content,
                headers=self._headers,
                timeout=self._http.timeout if self._timeout is None else self._timeout,
            )
        except httpx.TimeoutException:
            return self._count(_Failure("timeout", f"{self._where} did not answer (timed out)"))
        except httpx.TransportError as exc:
            if any(isinstance(cause, RefusedAddress) for cause in _causes(exc)):
                raise self._refused_address() from None
            description = f"{self._where} did not answer ({transport_reason(exc)})"
            return self._count(_Failure("connection_error", description))
        metrics.inc("partner_calls_total", partner=self._partner, status=str(response.status_code))
        if response.is_success or response.status_code in own_statuses:
            return response
        if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
            return self._unavailable_answer(response)
        if response.status_code in AUTH_STATUSES and self._access is not None:
            await self._access.refused()
        raise self._rejection(method, path, response)

    def _count(self, failure: _Failure) -> _Failure:
        """Count a call that got no HTTP answer."""
        metrics.inc("partner_calls_total", partner=self._partner, status=failure.label)
        return failure

    def _refused_address(self) -> PartnerRejected:
        """A host that leads into a private network: final, and the same words whatever is listening there."""
        metrics.inc("partner_calls_total", partner=self._partner, status="refused_address")
        message = (
            f"{self._where} was not called: its address is not public (loopback, private, link-local or reserved"
            " networks are never called). Check the URL in the settings."
        )
        return self._errors.rejected(self._partner, NO_ANSWER, message)

    def _unavailable_answer(self, response: httpx.Response) -> _Failure:
        """Describe a retryable HTTP answer (429, 408, 5xx)."""
        status = response.status_code
        description = f"{self._where} {STATUS_WORDS.get(status, 'is unavailable')} (HTTP {status})"
        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        return _Failure(str(status), description, retry_after)

    def _rejection(self, method: str, path: str, response: httpx.Response) -> PartnerRejected:
        """The final error for a non-retryable answer, carrying the partner's own message."""
        status = response.status_code
        said = partner_message(response, self._redact)
        if status in AUTH_STATUSES:
            message = f"{self._name} refused the credentials (HTTP {status}): {said}"
            return self._errors.auth_failed(self._partner, status, message)
        message = f"{self._name} refused {f'{method} {path}' if path else 'the call'} (HTTP {status}): {said}"
        return self._errors.rejected(self._partner, status, message)

    def _redact(self, text: str) -> str:
        """Mask the credentials a partner might echo back in an error body, and only them: the words stay."""
        for name, value in self._headers.items():
            if name.lower() == "authorization":
                # "lucca application=<key>", "Bearer <token>": the secret is what follows the scheme.
                secret = re.sub(r"^(?:lucca\s+application=|\S+\s+)", "", value.strip())
            elif re.search(r"(?i)secret|token|key", name):
                secret = value.strip()
            else:
                continue
            if len(secret) >= 6:  # a shorter value is no real secret, and masking it would eat ordinary words
                text = text.replace(secret, "***")
        return redact(text)
