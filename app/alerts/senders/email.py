"""E-mail alerts through the operator's mail server (SMTP_URL): the plain words as text and as escaped HTML."""

from email.message import EmailMessage

import aiosmtplib

from app.alerts.message import AlertMessage
from app.alerts.render import alert_words, as_html, as_text, one_line
from app.alerts.senders.errors import AlertNotSent
from app.clients.http import MAX_MESSAGE_CHARS
from app.config import SmtpServer
from app.models.alert import AlertChannel
from app.services.context import Services

TIMEOUT_SECONDS = 10.0


def alert_email(server: SmtpServer, recipients: list[str], message: AlertMessage) -> EmailMessage:
    words = alert_words(message)
    mail = EmailMessage()
    mail["Subject"] = words.subject
    mail["From"] = server.sender
    mail["To"] = ", ".join(recipients)
    # The delivery's id, the same on every retry: a mail client shows a resent alert once.
    mail["Message-ID"] = f"<{message.id}@lucca-connectors>"
    mail.set_content(as_text(words))
    mail.add_alternative(as_html(words), subtype="html")
    return mail


async def send_email(services: Services, channel: AlertChannel, message: AlertMessage) -> None:
    server = services.settings.smtp
    if server is None:
        raise AlertNotSent("E-mail alerts are not set up on this service (no SMTP_URL).", retryable=False)
    where = f"The mail server at {server.host}"
    try:
        await aiosmtplib.send(
            alert_email(server, channel.recipients, message),
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.tls,
            timeout=TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        # 4xx: the server asks to try again later (greylisting, a full mailbox); 5xx: the addresses are refused.
        codes = [refused.code for refused in exc.recipients]
        said = "; ".join(f"{refused.recipient}: {refused.code}" for refused in exc.recipients)
        raise AlertNotSent(f"{where} refused the addresses ({said}).", retryable=all(c < 500 for c in codes)) from None
    except aiosmtplib.SMTPResponseException as exc:
        said = one_line(f"{exc.code} {exc.message}", MAX_MESSAGE_CHARS)
        raise AlertNotSent(f"{where} refused the alert ({said}).", retryable=exc.code < 500) from None
    except aiosmtplib.SMTPTimeoutError:
        raise AlertNotSent(f"{where} did not answer (timed out).", retryable=True) from None
    except (aiosmtplib.SMTPException, OSError):
        raise AlertNotSent(f"{where} did not answer (could not connect).", retryable=True) from None
