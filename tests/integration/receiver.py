"""A tiny real HTTP server on 127.0.0.1 that records the webhooks posted to it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.time() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Records every POST; `wait_for` blocks on a condition until a predicate holds."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._changed = threading.Condition()
        self.received: list[Received] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhook"

    def record(self, item: Received) -> None:
        with self._changed:
            self.received.append(item)
            self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float
    ) -> list[Received]:
        """Wait until `predicate(received)` is true; AssertionError with what came if not."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"condition not met within {timeout_s} s; received: "
                        f"{[item.body.decode(errors='replace') for item in self.received]}"
                    )
                self._changed.wait(left)
            return list(self.received)


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """Serve on a free loopback port in a thread; shut down and close on exit."""
    receiver: WebhookReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver.record(Received(self.path, headers, body, time.time()))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = WebhookReceiver(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
