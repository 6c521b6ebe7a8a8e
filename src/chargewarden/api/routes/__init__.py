"""HTTP API routes, one module per resource."""

from chargewarden.api.routes import alerts, calls, certificates, connections, events, stations

ROUTERS = (
    stations.router,
    connections.router,
    events.router,
    calls.router,
    certificates.router,
    alerts.router,
)

__all__ = ["ROUTERS"]
