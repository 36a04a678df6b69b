"""Serve the mock with uvicorn on a socket we bind ourselves.

Binding first lets `--port 0` pick a free port and report it, and the HTTP
protocol subclass hands the app its transport so faults can reset a connection.
"""

from __future__ import annotations

import gc
import re
import socket
import sys

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .graph import TRANSPORT_KEY

# The line `serve` prints once the socket is bound; whoever starts the mock waits for it.
READY = re.compile(r"mock-meta-api listening on (?P<url>http://\S+)")


def command(*options: str, host: str = "127.0.0.1") -> list[str]:
    """The command line of the mock on a free port of `host`, with this interpreter."""
    return [sys.executable, "-m", "mock_meta_api", "--host", host, "--port", "0", *options]


class FaultableHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that exposes the transport in the ASGI scope."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.scope.setdefault("extensions", {})[TRANSPORT_KEY] = self.transport  # type: ignore[typeddict-unknown-key]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    app: FastAPI, sock: socket.socket, log_level: str = "warning", access_log: bool = False
) -> None:
    """Run until SIGINT/SIGTERM; hanging requests get 2 s to finish, then are cut."""
    config = uvicorn.Config(
        app,
        http=FaultableHttpProtocol,
        loop="auto",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # Everything built so far (modules, app, routes) lives as long as the process: move it
    # out of the collector's sight, so a full collection under load walks what requests
    # created (mostly the journal), not also the ~63,500 start-up objects (20-40 ms more).
    gc.collect()
    gc.freeze()
    print(f"mock-meta-api listening on {url_of(sock)}", flush=True, file=sys.stdout)
    server.run(sockets=[sock])
