"""Point any httpx-based Cloud API client at the mock, without changing its code.

Client libraries hard-code ``https://graph.facebook.com/v{version}``. Give them
an ``httpx.Client`` whose transport rewrites the scheme, host and port of
requests to graph.facebook.com, and they talk to the mock instead::

    import httpx
    from pywa import WhatsApp
    from mock_meta_api.redirect import GraphRedirectTransport

    session = httpx.Client(transport=GraphRedirectTransport("http://127.0.0.1:8000"))
    wa = WhatsApp(phone_id="106540352242922", token="mock-access-token", session=session)

Requests to other hosts pass through unchanged. Only the scheme, host and port
of ``target_url`` are used; the path is kept as the client built it.
"""

from __future__ import annotations

import httpx

GRAPH_HOSTS = ("graph.facebook.com",)


def _redirect(request: httpx.Request, target: httpx.URL, hosts: frozenset[str]) -> None:
    if request.url.host in hosts:
        request.url = request.url.copy_with(
            scheme=target.scheme, host=target.host, port=target.port
        )
        request.headers["Host"] = request.url.netloc.decode("ascii")


class GraphRedirectTransport(httpx.BaseTransport):
    """A sync transport sending graph.facebook.com requests to `target_url` instead."""

    def __init__(
        self,
        target_url: str | httpx.URL,
        *,
        hosts: tuple[str, ...] = GRAPH_HOSTS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.target = httpx.URL(target_url)
        self.hosts = frozenset(hosts)
        self._transport = transport or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _redirect(request, self.target, self.hosts)
        return self._transport.handle_request(request)

    def close(self) -> None:
        self._transport.close()


class AsyncGraphRedirectTransport(httpx.AsyncBaseTransport):
    """The async twin of `GraphRedirectTransport`, for ``httpx.AsyncClient``."""

    def __init__(
        self,
        target_url: str | httpx.URL,
        *,
        hosts: tuple[str, ...] = GRAPH_HOSTS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.target = httpx.URL(target_url)
        self.hosts = frozenset(hosts)
        self._transport = transport or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _redirect(request, self.target, self.hosts)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


__all__ = ["GRAPH_HOSTS", "AsyncGraphRedirectTransport", "GraphRedirectTransport"]
