"""The ASGI app factory: Graph routes, admin routes, and Meta-shaped errors everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from . import admin, graph
from .config import MockConfig
from .errors import GraphError, unknown_path
from .state import MockState
from .webhooks import StatusWebhooks


def _admin_error(
    status: int, message: str, problems: list[dict[str, Any]] | None = None
) -> Response:
    body: dict[str, Any] = {"error": {"status": status, "message": message}}
    if problems:
        body["error"]["problems"] = problems
    return graph.json_response(body, status)


def _is_admin(request: Request) -> bool:
    return request.url.path.startswith(admin.PREFIX + "/") or request.url.path == admin.PREFIX


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GraphError)
    async def on_graph_error(request: Request, error: GraphError) -> Response:
        return graph.graph_error_response(error)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, error: HTTPException) -> Response:
        if _is_admin(request):
            if isinstance(error.__cause__, UnicodeDecodeError):
                # FastAPI answers a body that is not UTF-8 with a bare 400; any other body
                # that is not JSON gets the admin's 422 naming it, and so does this one.
                problem = {"field": "body", "message": f"not UTF-8 JSON: {error.__cause__}"}
                return _admin_error(
                    422, f"invalid admin request: body: {problem['message']}", [problem]
                )
            return _admin_error(error.status_code, str(error.detail))
        if error.status_code == 405:
            method = request.method.lower()
            return graph.graph_error_response(
                GraphError(
                    100,
                    400,
                    message=f"Unsupported {method} request.",
                    details=f"{request.method} is not supported on {request.url.path}",
                )
            )
        return graph.graph_error_response(unknown_path(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> Response:
        problems = [
            {
                "field": ".".join(str(part) for part in item["loc"]),
                "message": item["msg"],
                **({"input": item["input"]} if item["type"] != "missing" else {}),
            }
            for item in error.errors()
        ]
        # A body that is not JSON shows up as raw bytes, which JSON cannot carry.
        problems = jsonable_encoder(
            problems, custom_encoder={bytes: lambda raw: raw.decode("utf-8", "replace")}
        )
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return _admin_error(422, f"invalid admin request: {summary}", problems)

    @app.exception_handler(ClientDisconnect)
    async def on_disconnect(request: Request, error: ClientDisconnect) -> Response:
        # The client hung up mid-request (e.g. a killed worker): no one to answer, not a crash.
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def on_crash(request: Request, error: Exception) -> Response:
        # Last resort, so even a bug answers in Meta's shape rather than a bare page.
        if _is_admin(request):
            return _admin_error(500, f"{type(error).__name__}: {error}")
        return graph.graph_error_response(
            GraphError(1, 500, message="An unknown error has occurred.", with_error_data=False)
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request models the Graph route validates by hand."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema["paths"] = {graph.SEND_PATH: graph.openapi_operation(), **schema["paths"]}
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        components = components.setdefault("schemas", {})
        for model in graph.OPENAPI_MODELS:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(
    config: MockConfig | None = None,
    *,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the mock. `webhook_transport` lets tests deliver status webhooks in-process."""
    config = config or MockConfig()
    webhooks = StatusWebhooks(
        config.app_secret, config.waba_id, config.display_phone_number, webhook_transport
    )
    state = MockState(config, webhooks)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await webhooks.aclose()

    app = FastAPI(
        redirect_slashes=False,  # Graph answers a stray slash with an error, not a redirect
        title="Mock Meta WhatsApp Cloud API",
        version="1.0",
        description="The Cloud API subset a bot uses to send messages, with scripted "
        "latency, failures, rate limits and status webhooks. Admin routes live under /_mock.",
        lifespan=lifespan,
    )
    app.state.mock = state
    app.router.routes.append(graph.build_route(state))
    app.include_router(admin.build_router(state))
    _install_error_handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
