"""A TCP proxy the harness owns, to put network faults between two parts.

One `Proxy` listens on a free 127.0.0.1 port (or where it is told: in the compose
backend's proxy container, `harness.proxy_service`, on every interface at fixed ports)
and forwards every connection to one upstream (a lane's broker, or the mock Cloud API).
Like toxiproxy's toxics, a fault is switched on for a window and off again:

- `delay`: every chunk of data, both ways, waits `delay_s` before it is passed on;
- `reset`: every open connection is cut with a TCP reset, and so is every new one
  until the window closes (a firewall rejecting, a peer restarted);
- `blackhole`: nothing passes either way, connections stay open and new ones are
  accepted (a dead route); when the window closes, the connections held are reset, as a
  NAT or load balancer does when it forgets them, and clients must connect again.

`half_open()` is no window: the connections open at that moment pass nothing from then
on, either way, and are never reset (until `stop()`), while new ones pass: a half-open
connection, the route up but the old flow dropped without a reset (a NAT's or a
firewall's table turned over, a failover). Only the client's own timeout ends it.

It runs an asyncio loop on a thread of its own, so the harness's threads only switch
modes; `stop()` closes every connection and the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from concurrent.futures import Future
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Mode = Literal["delay", "reset", "blackhole"]
CHUNK = 65536
START_TIMEOUT_S = 10.0


class Proxy:
    """Forward `host`:`port` (loopback, a free port, by default) to
    `upstream_host`:`upstream_port`; see the module."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        name: str = "proxy",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.name = name
        self.host = host
        self.port = port
        self.mode: Mode | None = None
        self.delay_s = 0.0
        self.connections = 0  # accepted so far: a test can see that traffic went through
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=name)
        self._server: asyncio.Server | None = None
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        # Each open connection's own flow: cleared, it is half-open (see `half_open`).
        self._alive: dict[tuple[asyncio.StreamWriter, asyncio.StreamWriter], asyncio.Event] = {}
        self._flowing: asyncio.Event | None = None

    # -- the harness's side -------------------------------------------------------------------

    def start(self) -> int:
        """Listen (on a free loopback port unless told otherwise); return the port."""
        self._thread.start()
        self.port = self._call(self._listen()).result(timeout=START_TIMEOUT_S)
        return self.port

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def through(self, url: str) -> str:
        """`url` with its host and port replaced by this proxy's (its credentials kept)."""
        return through(url, self.url_host)

    def switch(self, mode: Mode | None, delay_s: float = 0.0) -> None:
        """Switch a fault on (`mode`), or off (None); returns once it is in force."""
        self._call(self._switch(mode, delay_s)).result(timeout=START_TIMEOUT_S)

    def half_open(self) -> int:
        """Drop every open connection silently, for good: nothing passes on it either way,
        and it is not reset; new connections pass. Returns how many were dropped."""
        return int(self._call(self._half_open()).result(timeout=START_TIMEOUT_S))

    def stop(self) -> None:
        """Close every connection and the listener, then the loop. Idempotent."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._close()).result(timeout=START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=START_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, coroutine: object) -> Future:  # type: ignore[type-arg]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]

    # -- the loop's side ------------------------------------------------------------------------

    async def _listen(self) -> int:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _switch(self, mode: Mode | None, delay_s: float) -> None:
        assert self._flowing is not None
        was = self.mode
        self.mode, self.delay_s = mode, delay_s
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == "reset" or was == "blackhole":  # cut what is open (or was held)
            for pair in list(self._open):
                self._reset(*pair)

    async def _half_open(self) -> int:
        for alive in self._alive.values():
            alive.clear()
        return len(self._alive)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._open):
            self._reset(*pair)
        if self._flowing is not None:
            self._flowing.set()
        # The connections' own tasks end with the loop's: wait them out, or the loop closes
        # on them pending ("Task was destroyed but it is pending!").
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    @staticmethod
    def _reset(*writers: asyncio.StreamWriter) -> None:
        """Close with a TCP reset (SO_LINGER 0), not a polite FIN."""
        for writer in writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "reset":
            self._reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._reset(writer)
            return
        pair = (writer, up_writer)
        self._open.add(pair)
        alive = self._alive[pair] = asyncio.Event()
        alive.set()
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, alive), self._pipe(up_reader, writer, alive)
            )
        finally:
            self._open.discard(pair)
            self._alive.pop(pair, None)
            for end in pair:
                end.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, alive: asyncio.Event
    ) -> None:
        """Pass data on, as the current mode and the connection's own flow allow, until
        either side closes."""
        assert self._flowing is not None
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # a black hole holds it here
                await alive.wait()  # a half-open connection, for good
                if self.mode == "delay" and self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()


def through(url: str, host_port: str) -> str:
    """`url` with its host and port replaced by `host_port` (its credentials kept)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    auth = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=auth + host_port))
