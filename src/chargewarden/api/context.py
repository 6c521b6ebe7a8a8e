"""What the HTTP API needs from the rest of the CSMS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from chargewarden.gateway.registry import ConnectionRegistry

if TYPE_CHECKING:
    from chargewarden.store import Store


@dataclass
class ApiContext:
    store: Store
    registry: ConnectionRegistry
    # Default seconds to wait for a station's answer to a CALL sent through the API.
    call_timeout: float = 30.0


def get_context(request: Request) -> ApiContext:
    """FastAPI dependency: the context the app was created with."""
    ctx: ApiContext = request.app.state.ctx
    return ctx
