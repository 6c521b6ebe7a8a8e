"""RFC 9457 problem details for every error the API returns.

Every error leaves the API as ``application/problem+json`` with ``type``, ``title``, ``status``
and ``detail``: our own ``Problem`` exceptions, Starlette's HTTP errors (unknown route 404,
wrong method 405, body too large 413), request validation errors (422) and unhandled
exceptions (500 with a generic detail; the traceback goes to the server log only).

Details never echo request values: a value may be a secret (an AuthorizationKey, a password).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chargewarden.store.errors import StoreError

log = logging.getLogger("chargewarden.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:chargewarden:problem:"
MAX_DETAIL = 500


class ProblemModel(BaseModel):
    """An RFC 9457 problem document (for the OpenAPI description)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field("about:blank", description="URI identifying the problem type.")
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="Explanation specific to this occurrence.")


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_BASE + slug


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = problem_type(slug) if slug else "about:blank"
        # RFC 9457 §4.2.1: with about:blank the title is the status phrase.
        self.title = title if (title and slug) else _phrase(status)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _phrase(status),
        "status": status,
        "detail": detail[:MAX_DETAIL],
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}),
                        media_type=PROBLEM_MEDIA_TYPE)


def problem_responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for error statuses (content is filled in by
    ``document_problems``): pass a status or (status, description)."""
    out: dict[int | str, dict[str, Any]] = {}
    for item in statuses:
        status, description = item if isinstance(item, tuple) else (item, _phrase(item))
        out[status] = {"description": description}
    return out


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document so every 4xx/5xx response is a problem document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = ProblemModel.model_json_schema(
        ref_template="#/components/schemas/{model}")
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                if code[:1] in ("4", "5"):
                    response["content"] = dict(content)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, type_=exc.type, title=exc.title,
                            headers=exc.headers, extra=exc.extra)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status in (204, 304) or status < 200:
        return Response(status_code=status, headers=headers)
    if status == 404:
        detail = "no such resource"
    elif status == 405:
        detail = f"method {request.method} is not allowed on this resource"
    elif isinstance(exc.detail, str) and exc.detail != _phrase(status):
        detail = exc.detail
    else:
        detail = _phrase(status)
    return problem_response(status, detail, headers=headers)


async def _store_error_handler(request: Request, exc: Exception) -> Response:
    # StoreError messages are one line without secrets (store contract); still, the client only
    # learns that the database is unavailable.
    log.error("database error in %s %r: %s", request.method, request.url.path, exc)
    return problem_response(503, "the database is unavailable; see the server log",
                            headers={"Retry-After": "5"})


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Location, message and error type only: pydantic also reports the offending input, which
    # may be a secret, so it is dropped.
    errors = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
         "type": str(err.get("type", ""))}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in errors[:5])
    if len(errors) > 5:
        summary += f"; and {len(errors) - 5} more"
    return problem_response(422, summary or "the request is not valid",
                            type_=problem_type("invalid-request"), title="Invalid request",
                            extra={"errors": errors[:50]})


class UnhandledErrorMiddleware:
    """Answer an unhandled exception with a generic 500 problem and log it here, once.

    Sits inside Starlette's ServerErrorMiddleware, so the traceback never reaches the client
    and the exception is not re-raised into the server. If the response already started
    nothing can be sent any more; the exception is then left to the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error in %s %r", scope.get("method"), scope.get("path"))
            response = problem_response(500, "internal server error; see the server log")
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StoreError, _store_error_handler)
    app.add_middleware(UnhandledErrorMiddleware)
