"""HTTP API routes, one module per resource."""

from chargewarden.api.routes import (
    alerts,
    calls,
    certificates,
    connections,
    events,
    jobs,
    stations,
)

ROUTERS = (
    stations.router,
    connections.router,
    events.router,
    calls.router,
    certificates.router,
    alerts.router,
    jobs.router,
)

__all__ = ["ROUTERS"]
