"""An HTTP server on a local port that keeps every POST it gets (alert webhooks, Slack, Teams) and answers each
path with the status set for it (204 by default): a receiver that can be made to fail and come back."""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ReceivedPost:
    path: str  # without the query
    headers: dict[str, str]
    body: bytes


class HookReceiver:
    def __init__(self) -> None:
        self.received: list[ReceivedPost] = []
        # path (without the query) -> the status it answers (with "ok" as its body, as Slack's does).
        self.statuses: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                status = receiver.statuses.get(path, 204)
                if status < 300:
                    receiver.received.append(ReceivedPost(path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def posts_to(self, path: str) -> list[ReceivedPost]:
        return [post for post in self.received if post.path == path]
