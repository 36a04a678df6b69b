"""The proxy service the compose backend runs for network faults, as a real process on
127.0.0.1: the host's `RemoteProxy` switches its proxies over HTTP, and real TCP through
them is delayed, cut, black-holed or left half-open as through a local `Proxy`."""

from __future__ import annotations

import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from harness.processes import ServerProcess, start_server
from harness.proxy_service import RemoteProxy, RemoteProxyError
from harness.stack.broker import free_port
from harness.stack.local import NEVER

pytestmark = pytest.mark.integration

DELAY_S = 0.3
WAIT_S = 5.0  # a deadline for what must happen; never a sleep
START_S = 20.0  # an interpreter and its imports on a loaded machine


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except ConnectionError:  # the proxy cut it: what these tests do
            pass


@dataclass
class Service:
    process: ServerProcess
    control_url: str
    ports: dict[str, int]  # "broker", "api": where each of lane solo's proxies listens

    def proxy(self, target: str) -> RemoteProxy:
        return RemoteProxy(self.control_url, "solo", target)

    def connect(self, target: str) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", self.ports[target]), timeout=WAIT_S)
        client.settimeout(WAIT_S)
        return client


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def service() -> Iterator[Service]:
    """`python -m harness.proxy_service` with lane solo's two proxies to one echo server."""
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    echo.daemon_threads = True
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    upstream = echo.server_address[1]
    control, broker, api = free_port(), free_port(), free_port()
    argv = [sys.executable, "-m", "harness.proxy_service", "--host=127.0.0.1"]
    argv += [f"--control-port={control}"]
    argv += [f"--proxy=solo/broker={broker}:127.0.0.1:{upstream}"]
    argv += [f"--proxy=solo/api={api}:127.0.0.1:{upstream}"]
    control_url = f"http://127.0.0.1:{control}"
    process = start_server(
        argv, NEVER, timeout_s=START_S, ready_check=lambda: _answers(f"{control_url}/health")
    )
    try:
        yield Service(process, control_url, {"broker": broker, "api": api})
    finally:
        process.stop(grace_s=WAIT_S)
        echo.shutdown()
        echo.server_close()


def echo(client: socket.socket, data: bytes = b"ping") -> bytes:
    client.sendall(data)
    return client.recv(4096)


def test_it_forwards_and_counts_each_proxys_connections(service: Service) -> None:
    assert httpx.get(f"{service.control_url}/health").json() == {
        "proxies": ["solo/api", "solo/broker"]
    }
    with service.connect("broker") as client:
        assert echo(client, b"hello") == b"hello"
    with service.connect("broker") as client:
        assert echo(client) == b"ping"
    assert service.proxy("broker").connections == 2
    assert service.proxy("api").connections == 0


def test_a_reset_switched_on_over_http_cuts_open_and_new_connections(service: Service) -> None:
    broker = service.proxy("broker")
    with service.connect("broker") as client:
        assert echo(client) == b"ping"
        broker.switch("reset")
        assert broker.mode == "reset"
        with pytest.raises(ConnectionResetError):
            echo(client)
    # cut at connect or at the first send: either way
    with pytest.raises(ConnectionResetError), service.connect("broker") as client:
        echo(client)
    broker.switch(None)
    with service.connect("broker") as client:
        assert echo(client) == b"ping"
    with service.connect("api") as client:  # the other proxy was never touched
        assert echo(client) == b"ping"


def test_a_delay_and_a_black_hole_hold_the_data(service: Service) -> None:
    api = service.proxy("api")
    with service.connect("api") as client:
        api.switch("delay", DELAY_S)
        began = time.monotonic()
        assert echo(client) == b"ping"
        assert time.monotonic() - began >= 2 * DELAY_S
        api.switch("blackhole")
        client.settimeout(2 * DELAY_S)
        client.sendall(b"held")
        with pytest.raises(TimeoutError):
            client.recv(4096)
        api.switch(None)  # the connection held is reset, as a NAT forgets it
        client.settimeout(WAIT_S)
        with pytest.raises(ConnectionResetError):
            client.recv(4096)


def test_half_open_drops_the_open_connections_and_lets_new_ones_pass(service: Service) -> None:
    broker = service.proxy("broker")
    with service.connect("broker") as old:
        assert echo(old) == b"ping"
        assert broker.half_open() == 1
        old.settimeout(2 * DELAY_S)
        old.sendall(b"lost")
        with pytest.raises(TimeoutError):  # no answer, and no reset either
            old.recv(4096)
        with service.connect("broker") as new:
            assert echo(new) == b"ping"


def test_an_unknown_proxy_or_mode_is_refused_in_one_line(service: Service) -> None:
    with pytest.raises(RemoteProxyError, match=r"HTTP 404: no proxy other/broker; there are"):
        RemoteProxy(service.control_url, "other", "broker").switch("reset")
    with pytest.raises(RemoteProxyError, match=r"HTTP 422: mode: Input should be"):
        service.proxy("api").switch("drop")  # type: ignore[arg-type]
    assert service.proxy("api").mode is None


def test_sigterm_closes_the_proxies_and_ends_the_service_by_it(service: Service) -> None:
    """As `docker compose down` stops it: the connections are closed, then it ends by the
    signal (uvicorn raises it again once shut down)."""
    with service.connect("broker") as client:
        assert echo(client) == b"ping"
        service.process.popen.send_signal(signal.SIGTERM)
        assert service.process.popen.wait(timeout=WAIT_S) == -signal.SIGTERM
        # Reset by the proxy's stop: a process merely ended would close it with a FIN.
        with pytest.raises(ConnectionResetError):
            client.recv(4096)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", service.ports["broker"]), timeout=WAIT_S)
