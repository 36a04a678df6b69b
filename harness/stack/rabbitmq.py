"""RabbitMQ for lanes on AMQP: a node the harness starts and stops, or a given AMQP URL.

The node is Debian's `rabbitmq-server`, run as the current user (its script directly,
not the packaged wrapper that switches to the `rabbitmq` user), with everything of its
own: node name, AMQP and distribution ports chosen free, data, log and config under
the run directory, an Erlang cookie it writes, no plugins (management off), and its own
`epmd` on a free port, so the machine's RabbitMQ node and its epmd are never touched.
Readiness is the server's own "completed with N plugins" line, then an AMQP handshake,
both under the start deadline. It is stopped by PID like every other process: the node
(SIGTERM, a clean stop in about a second), then its epmd. A broker fault stops the node
alone and starts it again with the same name, ports and files (its epmd stays up), with
its database or without it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import amqp

from ..processes import ServerProcess, ServerStartError, start_server
from ..waiting import DeadlineExceeded, wait_for
from .broker import BrokerError, free_port

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQ_READY = re.compile(r"completed with \d+ plugins")
EPMD_READY = re.compile(r"epmd running")
START_ATTEMPTS = 3  # a free port may be taken before the node binds it
AMQP_CONNECT_TIMEOUT_S = 5.0
DEFAULT_CONSUMER_TIMEOUT_S = 1800.0  # RabbitMQ's own default: 30 min
DEFAULT_CHECK_INTERVAL_S = 60.0  # rabbit's channel_tick_interval: consumer timeouts checked
STOP_GRACE_S = 15.0  # a clean stop takes about a second; SIGKILL after this


def server_binary() -> Path:
    """The packaged server script; a clear error naming the package when it is missing."""
    found = RABBITMQ_SERVER if RABBITMQ_SERVER.is_file() else None
    if found is None and (on_path := shutil.which("rabbitmq-server")):
        found = Path(on_path)
    if found is None or shutil.which("epmd") is None:
        raise BrokerError(
            "rabbitmq-server is not installed (a lane names broker = 'rabbitmq' and no URL); "
            "install Debian's package: apt-get install rabbitmq-server"
        )
    return found


def probe(url: str, timeout_s: float = AMQP_CONNECT_TIMEOUT_S) -> str:
    """Connect and log in at `url`; the server as it named itself (`rabbitmq 3.10.8`), or
    BrokerError saying why not."""
    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    connection = amqp.Connection(
        host=f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost,
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        write_timeout=timeout_s,
    )
    try:
        connection.connect()
        properties = dict(connection.server_properties)
    except Exception as exc:  # socket errors, refused logins, timeouts: all mean "not usable"
        raise BrokerError(f"cannot reach the AMQP broker at {url}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):  # closing what may never have opened
            connection.collect()
    return server_said(properties)


def server_said(properties: dict[str, object]) -> str:
    """`rabbitmq 3.10.8` from the server properties an AMQP server sends on connect
    (`product`, `version`): the product as it names itself, lower case, one word."""

    def text(value: object) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    product = text(properties.get("product", "rabbitmq")).lower().replace(" ", "-")
    return f"{product} {text(properties.get('version', '?'))}"


@dataclass
class RabbitNode:
    """A RabbitMQ node the harness started: its AMQP URL, node name and processes."""

    url: str
    node: str
    server: ServerProcess
    epmd: ServerProcess
    version: str = ""
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def stop(self) -> None:
        """The node first (it unregisters from epmd), then its own epmd."""
        try:
            self.server.stop(grace_s=STOP_GRACE_S)
        finally:
            self.epmd.stop()


def shut_down(rabbit: RabbitNode, keep_data: bool) -> None:
    """Stop the node alone (SIGTERM: durable queues and persistent messages are on disk);
    without `keep_data` its database is removed, so it comes back empty."""
    rabbit.server.stop(grace_s=STOP_GRACE_S)
    if not keep_data:
        database = Path(rabbit.env["RABBITMQ_MNESIA_BASE"])
        shutil.rmtree(database)
        database.mkdir()


def start_again(
    rabbit: RabbitNode,
    log_path: Path,
    timeout_s: float = 60.0,
    on_start: Callable[[ServerProcess], None] | None = None,
) -> None:
    """Start the node again with its name, ports, config and epmd (clients keep their URL),
    ready once it answers AMQP. A port may be held for a moment by the old node's
    sockets: try again until `timeout_s`."""
    deadline = time.monotonic() + timeout_s

    def start() -> ServerProcess:
        return start_server(
            [str(server_binary())],
            RABBITMQ_READY,
            timeout_s=max(1.0, deadline - time.monotonic()),
            env=rabbit.env,
            log_path=log_path,
            on_start=on_start,
        )

    try:
        rabbit.server = wait_for(
            start, timeout_s=timeout_s, interval_s=0.5, retry_on=(ServerStartError,)
        )
    except DeadlineExceeded as exc:
        message = f"rabbitmq-server did not start again: {str(exc.last)[-2000:]}"
        raise BrokerError(message) from None
    probe(rabbit.url, timeout_s=min(timeout_s, 10.0))


def node_config(consumer_timeout_s: float, check_interval_s: float) -> tuple[str, str]:
    """rabbitmq.conf and advanced.config for the settings a scenario may change."""
    conf = "\n".join(
        [
            "loopback_users = none",  # guest logs in over 127.0.0.1 only; this keeps that plain
            f"consumer_timeout = {max(1, round(consumer_timeout_s * 1000))}",
            "",
        ]
    )
    tick_ms = max(1, round(check_interval_s * 1000))
    advanced = f"[{{rabbit, [{{channel_tick_interval, {tick_ms}}}]}}].\n"
    return conf, advanced


def start_node(
    run_dir: Path,
    *,
    consumer_timeout_s: float = DEFAULT_CONSUMER_TIMEOUT_S,
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
    timeout_s: float = 60.0,
    on_start: Callable[[str, ServerProcess], None] | None = None,
) -> RabbitNode:
    """Start a node of its own under `run_dir/rabbitmq/`; logs to rabbitmq.log and epmd.log."""
    binary = server_binary()
    base = run_dir / "rabbitmq"
    home = base / "home"
    for directory in (home, base / "mnesia", base / "log"):
        directory.mkdir(parents=True, exist_ok=True)
    cookie = home / ".erlang.cookie"
    if not cookie.exists():
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
    conf, advanced = node_config(consumer_timeout_s, check_interval_s)
    (base / "rabbitmq.conf").write_text(conf)
    (base / "advanced.config").write_text(advanced)
    (base / "enabled_plugins").write_text("[].\n")
    node = f"stagger-{secrets.token_hex(4)}@localhost"
    errors: list[str] = []
    for _ in range(START_ATTEMPTS):
        epmd_port, amqp_port, dist_port = free_port(), free_port(), free_port()
        env = {
            "HOME": str(home),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(amqp_port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_LOGS": "-",  # to stdout: the ready line, and rabbitmq.log via the pump
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(base / f"{node}.pid"),
        }
        start = functools.partial(
            _start_logged, run_dir=run_dir, timeout_s=timeout_s, env=env, on_start=on_start
        )
        try:
            argv = ["epmd", "-port", str(epmd_port), "-address", "127.0.0.1", "-d"]
            epmd = start(argv, EPMD_READY, "epmd")
        except ServerStartError as exc:
            errors.append(f"epmd: {exc}")
            continue
        try:
            server = start([str(binary)], RABBITMQ_READY, "rabbitmq")
        except BaseException as exc:
            epmd.stop()
            if not isinstance(exc, ServerStartError):
                raise
            errors.append(f"rabbitmq-server: {str(exc)[-2000:]}")
            continue
        url = f"amqp://guest:guest@127.0.0.1:{amqp_port}//"
        rabbit = RabbitNode(url=url, node=node, server=server, epmd=epmd, env=env)
        try:
            rabbit.version = probe(url, timeout_s=min(timeout_s, 10.0))
        except BaseException:
            rabbit.stop()
            raise
        return rabbit
    raise BrokerError("rabbitmq-server did not start:\n" + "\n".join(errors))


def _start_logged(
    argv: list[str],
    ready: re.Pattern[str],
    name: str,
    *,
    run_dir: Path,
    timeout_s: float,
    env: dict[str, str],
    on_start: Callable[[str, ServerProcess], None] | None,
) -> ServerProcess:
    """One of the node's processes, logged to `<name>.log` and given to `on_start` as `name`."""
    return start_server(
        argv,
        ready,
        timeout_s=timeout_s,
        env=env,
        log_path=run_dir / f"{name}.log",
        on_start=None if on_start is None else lambda process: on_start(name, process),
    )
