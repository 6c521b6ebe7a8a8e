"""HTTP API routes, one module per resource."""

from chargewarden.api.routes import (
    alerts,
    calls,
    certificates,
    connections,
    events,
    firmware,
    jobs,
    logs,
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
    firmware.router,
    logs.router,
)

__all__ = ["ROUTERS"]
