"""The network faults' proxies in a container: `harness.proxy` switched over HTTP.

On the compose backend the lanes are containers on the project's network, where a
loopback proxy on the host is out of their reach. The run's project then gets one more
service from the project image, `python -m harness.proxy_service`, which starts one
`Proxy` per lane and target, each listening on every interface of its container at a
fixed port and forwarding to its upstream by service name (`broker:6379`, `mock:8000`),
and serves a small HTTP API on the control port for the host to switch them:

- `GET /health`: 200 once every proxy listens (the container's healthcheck);
- `GET /proxies/{lane}/{target}`: its mode, delay and the connections it accepted;
- `PUT /proxies/{lane}/{target}`, `{"mode": "reset", "delay_s": 0}`: a fault on, or
  off (`mode` null); answers once it is in force;
- `POST /proxies/{lane}/{target}/half-open`: its open connections dropped silently.

`RemoteProxy` is the host's side: what the nemesis calls on a local `Proxy` (`switch`,
`half_open`, `connections`), each one request to that API through the port Docker
published on 127.0.0.1, so a network fault is the same code on either backend.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import uvicorn
from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .proxy import Mode, Proxy

REQUEST_TIMEOUT_S = 15.0  # above a switch's own bound (the proxy's START_TIMEOUT_S)
# --proxy LANE/TARGET=PORT:HOST:UPSTREAM_PORT
PROXY_ARG = re.compile(
    r"^(?P<lane>[a-z0-9][a-z0-9-]*)/(?P<target>broker|api)="
    r"(?P<port>\d+):(?P<host>[A-Za-z0-9_.-]+):(?P<upstream_port>\d+)$"
)


@dataclass(frozen=True)
class ProxyPlan:
    """One lane's proxy to one target: where it listens, where it forwards."""

    lane: str
    target: Literal["broker", "api"]
    port: int
    upstream_host: str
    upstream_port: int

    @property
    def key(self) -> str:
        return f"{self.lane}/{self.target}"

    def argument(self) -> str:
        """Its `--proxy` word on the service's command line."""
        return f"{self.key}={self.port}:{self.upstream_host}:{self.upstream_port}"

    @classmethod
    def parse(cls, text: str) -> ProxyPlan:
        found = PROXY_ARG.match(text)
        if found is None:
            raise ValueError(
                f"--proxy {text!r}: expected LANE/TARGET=PORT:HOST:UPSTREAM_PORT, "
                "TARGET broker or api (e.g. solo/broker=7000:broker:6379)"
            )
        return cls(
            lane=found["lane"],
            target=found["target"],  # type: ignore[arg-type]  # the pattern allows only these
            port=int(found["port"]),
            upstream_host=found["host"],
            upstream_port=int(found["upstream_port"]),
        )


class Switch(BaseModel):
    """A `PUT /proxies/{lane}/{target}` body."""

    mode: Mode | None
    delay_s: float = Field(default=0.0, ge=0.0)


def _state(proxy: Proxy) -> dict[str, Any]:
    return {"mode": proxy.mode, "delay_s": proxy.delay_s, "connections": proxy.connections}


def control_app(proxies: dict[str, Proxy]) -> Starlette:
    """The HTTP API over `proxies` (keyed `lane/target`); see the module. The proxies
    are stopped as it shuts down (uvicorn then ends the process by the signal it got)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(stop_proxies, proxies)

    def find(request: Request) -> Proxy | JSONResponse:
        key = f"{request.path_params['lane']}/{request.path_params['target']}"
        proxy = proxies.get(key)
        if proxy is None:
            known = ", ".join(sorted(proxies)) or "none"
            return JSONResponse({"error": f"no proxy {key}; there are: {known}"}, 404)
        return proxy

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"proxies": sorted(proxies)})

    async def state(request: Request) -> JSONResponse:
        proxy = find(request)
        if isinstance(proxy, JSONResponse):
            return proxy
        return JSONResponse(_state(proxy))

    async def switch(request: Request) -> JSONResponse:
        proxy = find(request)
        if isinstance(proxy, JSONResponse):
            return proxy
        try:
            body = Switch.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return JSONResponse({"error": f"{where}: {first['msg']}"}, 422)
        await run_in_threadpool(proxy.switch, body.mode, body.delay_s)
        return JSONResponse(_state(proxy))

    async def half_open(request: Request) -> JSONResponse:
        proxy = find(request)
        if isinstance(proxy, JSONResponse):
            return proxy
        dropped = await run_in_threadpool(proxy.half_open)
        return JSONResponse({"dropped": dropped})

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/proxies/{lane}/{target}", state, methods=["GET"]),
            Route("/proxies/{lane}/{target}", switch, methods=["PUT"]),
            Route("/proxies/{lane}/{target}/half-open", half_open, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def start_proxies(plans: Sequence[ProxyPlan], host: str = "0.0.0.0") -> dict[str, Proxy]:
    """A listening `Proxy` per plan, keyed `lane/target`; all stopped if one cannot listen."""
    started: dict[str, Proxy] = {}
    try:
        for plan in plans:
            proxy = Proxy(
                plan.upstream_host,
                plan.upstream_port,
                name=f"proxy-{plan.lane}-{plan.target}",
                host=host,
                port=plan.port,
            )
            started[plan.key] = proxy
            proxy.start()
    except BaseException:
        stop_proxies(started)
        raise
    return started


def stop_proxies(proxies: dict[str, Proxy]) -> None:
    for proxy in proxies.values():
        proxy.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Start the proxies, then serve the control API until SIGTERM (compose's stop)."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.proxy_service",
        description="The lanes' network-fault proxies and their HTTP control API.",
    )
    parser.add_argument("--host", default="0.0.0.0", help="where proxies and API listen")
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument(
        "--proxy",
        action="append",
        default=[],
        metavar="LANE/TARGET=PORT:HOST:UPSTREAM_PORT",
        help="one lane's proxy to its broker or API (repeat for each)",
    )
    args = parser.parse_args(argv)
    try:
        plans = [ProxyPlan.parse(text) for text in args.proxy]
    except ValueError as exc:
        parser.error(str(exc))
    if len({plan.port for plan in plans} | {args.control_port}) != len(plans) + 1:
        parser.error("every --proxy and --control-port needs a port of its own")
    proxies = start_proxies(plans, args.host)
    try:
        print(f"proxies listening: {', '.join(p.argument() for p in plans)}", flush=True)
        uvicorn.run(
            control_app(proxies), host=args.host, port=args.control_port, log_level="warning"
        )
    finally:
        stop_proxies(proxies)


# -- the host's side -------------------------------------------------------------------------


class RemoteProxyError(RuntimeError):
    """The proxy service refused a request; the message is its answer, one line."""


class RemoteProxy:
    """One lane's proxy in the proxy service, with a local `Proxy`'s interface for the
    nemesis: `switch`, `half_open`, `connections`."""

    def __init__(self, control_url: str, lane: str, target: str) -> None:
        self.url = f"{control_url.rstrip('/')}/proxies/{lane}/{target}"
        self.name = f"proxy-{lane}-{target}"

    def _request(self, method: str, suffix: str = "", body: Any = None) -> dict[str, Any]:
        try:
            answer = httpx.request(method, self.url + suffix, json=body, timeout=REQUEST_TIMEOUT_S)
        except httpx.TransportError as exc:  # the service gone, or too slow to answer
            raise RemoteProxyError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        if answer.status_code != 200:
            try:
                said = answer.json().get("error") or answer.text
            except ValueError:
                said = answer.text
            raise RemoteProxyError(f"{self.name}: HTTP {answer.status_code}: {said}")
        result: dict[str, Any] = answer.json()
        return result

    def switch(self, mode: Mode | None, delay_s: float = 0.0) -> None:
        """Switch a fault on (`mode`), or off (None); returns once it is in force."""
        self._request("PUT", body={"mode": mode, "delay_s": delay_s})

    def half_open(self) -> int:
        """Drop every open connection silently, for good; how many were dropped."""
        return int(self._request("POST", "/half-open")["dropped"])

    @property
    def connections(self) -> int:
        """Connections the proxy accepted so far."""
        return int(self._request("GET")["connections"])

    @property
    def mode(self) -> Mode | None:
        mode: Mode | None = self._request("GET")["mode"]
        return mode


if __name__ == "__main__":
    main(sys.argv[1:])
