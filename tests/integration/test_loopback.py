"""Nothing the harness starts listens beyond loopback, by default.

A local stack with every kind of server the harness runs (the broker, the mock, a bot
webhook, a lane worker, and the proxies that carry network faults) is brought up, and the
kernel's own table of listening sockets is read for all of its processes and for this one
(the proxies run on a thread of the harness).
"""

from __future__ import annotations

import inspect
import ipaddress
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from harness.bot import serve as bot_serve
from harness.stack import LaneSpec, LocalStack, StackSpec
from harness.stack import broker as brokers
from mock_meta_api import cli as mock_cli
from mock_meta_api import server as mock_server

pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"
COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    spec = StackSpec(
        lanes=[LaneSpec(name="solo", pool="solo")], proxied=frozenset({"broker", "api"})
    )
    with LocalStack(spec, tmp_path_factory.mktemp("loopback")) as stack:
        yield stack


def listening(pids: set[int]) -> dict[int, str]:
    """Every TCP port the processes listen on, with the address it is bound to."""
    found: dict[int, str] = {}
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        for connection in connections:
            if connection.status == psutil.CONN_LISTEN:
                found[connection.laddr.port] = connection.laddr.ip
    return found


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def test_every_server_of_the_stack_listens_on_loopback_only(stack: LocalStack) -> None:
    lane = stack.lanes["solo"]
    assert stack.broker is not None
    assert stack.mock_url is not None
    servers = {
        "broker": port_of(stack.broker.url),
        "mock": port_of(stack.mock_url),
        "bot webhook": port_of(lane.webhook_url),
        **{f"proxy to the {target}": proxy.port for target, proxy in lane.proxies.items()},
    }
    assert set(servers) >= {"proxy to the broker", "proxy to the api"}

    bound = listening(stack.pids() | {os.getpid()})

    for name, port in servers.items():
        assert port in bound, f"the {name} does not listen on {port}: {bound}"
    beyond = {port: ip for port, ip in bound.items() if not ipaddress.ip_address(ip).is_loopback}
    assert not beyond, f"listening beyond loopback: {beyond}"


def test_every_server_command_defaults_to_loopback() -> None:
    """The mock's and the bot's own command lines, run by hand, bind loopback unless told;
    the compose stacks publish their ports on the host's loopback only."""
    assert inspect.signature(mock_cli.run).parameters["host"].default == LOOPBACK
    assert inspect.signature(bot_serve.serve).parameters["host"].default == LOOPBACK
    assert mock_server.command()[mock_server.command().index("--host") + 1] == LOOPBACK
    argv = bot_serve.command()
    assert argv[argv.index("--host") + 1] == LOOPBACK
    assert inspect.signature(brokers.start_embedded).parameters["host"].default == LOOPBACK
    assert inspect.signature(brokers.free_port).parameters["host"].default == LOOPBACK

    published = []
    for path in sorted(COMPOSE_DIR.glob("*.yml")):
        for line in path.read_text().splitlines():
            if line.strip().startswith("ports:"):
                ports = re.findall(r'"([^"]+)"', line)
                assert ports, f"{path.name}: {line}"
                published += [(path.name, port) for port in ports]
    assert published
    assert all(port.startswith(f"{LOOPBACK}:") for _, port in published), published
