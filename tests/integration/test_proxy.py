"""The harness's loopback TCP proxy: it forwards, and delays, cuts, black-holes or leaves
half-open on demand."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from harness.proxy import Proxy

pytestmark = [pytest.mark.integration, pytest.mark.faults]

DELAY_S = 0.3
WAIT_S = 5.0  # a deadline for what must happen; never a sleep


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except ConnectionError:  # the proxy cut it: what these tests do
            pass


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = Proxy("127.0.0.1", server.server_address[1])
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()


def connect(proxy: Proxy) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT_S)
    client.settimeout(WAIT_S)
    return client


def echo(client: socket.socket, data: bytes = b"ping") -> bytes:
    client.sendall(data)
    return client.recv(4096)


def test_it_forwards_both_ways(proxy: Proxy) -> None:
    with connect(proxy) as client:
        assert echo(client, b"hello") == b"hello"
    assert proxy.connections == 1


def test_a_delay_holds_each_chunk_both_ways(proxy: Proxy) -> None:
    with connect(proxy) as client:
        proxy.switch("delay", DELAY_S)
        began = time.monotonic()
        assert echo(client) == b"ping"
        assert time.monotonic() - began >= 2 * DELAY_S
        proxy.switch(None)
        began = time.monotonic()
        assert echo(client) == b"ping"
        assert time.monotonic() - began < DELAY_S


def test_a_reset_cuts_open_and_new_connections_until_switched_off(proxy: Proxy) -> None:
    with connect(proxy) as client:
        assert echo(client) == b"ping"
        proxy.switch("reset")
        with pytest.raises(ConnectionResetError):
            echo(client)
    # cut at connect or at the first send: either way
    with pytest.raises(ConnectionResetError), connect(proxy) as client:
        echo(client)
    proxy.switch(None)
    with connect(proxy) as client:
        assert echo(client) == b"ping"


def test_a_black_hole_passes_nothing_then_resets_what_it_held(proxy: Proxy) -> None:
    with connect(proxy) as client:
        proxy.switch("blackhole")
        client.settimeout(DELAY_S)
        with pytest.raises(TimeoutError):
            echo(client)
        proxy.switch(None)
        client.settimeout(WAIT_S)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            echo(client)  # the route came back; the connection it held did not
    with connect(proxy) as client:
        assert echo(client) == b"ping"


def test_half_open_drops_the_open_connections_for_good_and_passes_new_ones(
    proxy: Proxy,
) -> None:
    with connect(proxy) as old:
        assert echo(old) == b"ping"
        assert proxy.half_open() == 1
        old.settimeout(DELAY_S)
        with pytest.raises(TimeoutError):
            echo(old)  # written without error; no answer, no reset
        with connect(proxy) as new:
            assert echo(new) == b"ping"
        with pytest.raises(TimeoutError):
            old.recv(4096)  # still dead after a new connection came and went
    assert proxy.connections == 2


def test_stop_closes_the_listener(proxy: Proxy) -> None:
    port = proxy.port
    proxy.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
