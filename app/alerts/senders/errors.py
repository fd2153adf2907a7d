"""Why an alert did not reach its channel."""


class AlertNotSent(Exception):
    """`message` is plain words for a tenant admin: never a secret, nor a URL's path or query (Slack's and Teams'
    URLs are credentials). `retryable`: trying again later may work (429, 5xx, timeouts, no connection);
    `retry_after`: the receiver's Retry-After in seconds, when it gave one."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        # Every constructor argument in args, so the exception survives pickling (arq stores results).
        super().__init__(message, retryable, retry_after)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message
