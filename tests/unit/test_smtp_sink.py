"""The demo's mail server (`python -m app.dev.smtp_sink`): what it receives over real SMTP is kept as a file, and
`--read` prints it as a person reads it."""

import asyncio
import contextlib
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from app.dev.smtp_sink import main, received, serve
from tests.sandbox_server import free_port


async def listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("the SMTP sink did not start")


async def send_through_sink(directory: Path, subjects: list[str]) -> None:
    """Serves the sink on a free port, sends it a text-and-HTML message per subject, and stops it."""
    port = free_port()
    server = asyncio.create_task(serve(directory, "127.0.0.1", port))
    try:
        await listening(port)
        for subject in subjects:
            mail = EmailMessage()
            mail["From"], mail["To"], mail["Subject"] = "alerts@connectors.test", "hr@acme.fr", subject
            mail.set_content("Zoë Müller: No establishment matches company 'Acme Roma'.")
            mail.add_alternative("<p>Zoë Müller: No establishment matches company &#x27;Acme Roma&#x27;.</p>", "html")
            await aiosmtplib.send(mail, hostname="127.0.0.1", port=port)
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


def test_each_message_is_kept_as_a_file_and_read_back_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subjects = ["[Acme] Softgarden hires are failing", "[Acme] Resolved: Softgarden hires are failing"]
    asyncio.run(send_through_sink(tmp_path, subjects))

    assert len(list(tmp_path.glob("*.eml"))) == 2 and not list(tmp_path.glob(".*"))
    assert [message["X-RcptTo"] for message in received(tmp_path)] == ["hr@acme.fr", "hr@acme.fr"]
    main(["--read", "--dir", str(tmp_path)])
    shown = capsys.readouterr().out
    first, second = shown.split("\n---\n\n")
    assert (
        "Subject: [Acme] Softgarden hires are failing\n\nZoë Müller: No establishment matches company 'Acme Roma'."
        in first
    )
    assert "Subject: [Acme] Resolved: Softgarden hires are failing" in second


def test_reading_before_anything_arrived_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--read", "--dir", str(tmp_path / "mail")])
    assert capsys.readouterr().out == f"No message in {tmp_path / 'mail'} yet.\n"
