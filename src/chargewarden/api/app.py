"""The HTTP API application: ``create_api(ctx)``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from chargewarden import __version__
from chargewarden.api.context import ApiContext
from chargewarden.api.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from chargewarden.api.problems import document_problems, install_problem_handlers
from chargewarden.api.routes import ROUTERS
from chargewarden.api.routes import health as health_routes
from chargewarden.api.routes import pki as pki_routes
from chargewarden.api.routes import rollover as rollover_routes

# Request bodies are small JSON documents; anything larger is refused with 413.
MAX_BODY_SIZE = 1024 * 1024

DESCRIPTION = """\
HTTP API of the ChargeWarden Central System.

* Authentication: `Authorization: Bearer <token>` on every route except `/healthz`, `/readyz`
  and the public PKI documents under `/pki/` (CRLs, the CSMS root). Tokens are
  created with `chargewarden operator add NAME --role viewer|operator|admin`; a Prometheus
  scraper of `/metrics` uses a viewer token.
* Roles: **viewer** reads, **operator** also sends calls to stations, **admin** also registers
  stations.
* Errors are RFC 9457 problem documents (`application/problem+json`).
* Station secrets are write-only: no response contains a credential or its hash, except a
  generated secret, which the creating response returns once.
"""


def create_api(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="ChargeWarden",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        redirect_slashes=False,
    )
    app.state.ctx = ctx
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_SIZE)
    app.add_middleware(SecurityHeadersMiddleware)

    app.include_router(health_routes.router)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pki_routes.router)
    app.include_router(rollover_routes.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = document_problems(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
