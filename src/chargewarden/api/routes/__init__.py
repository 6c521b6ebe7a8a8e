"""HTTP API routes, one module per resource."""

from chargewarden.api.routes import calls, connections, events, stations

ROUTERS = (stations.router, connections.router, events.router, calls.router)

__all__ = ["ROUTERS"]
