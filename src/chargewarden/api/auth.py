"""Bearer-token authentication and role checks for the HTTP API.

A token is ``<lookup>.<secret>``-shaped (see ``chargewarden.security.tokens``): the public lookup
part finds the operator row, then the whole token is compared against the stored HMAC in
constant time. Only the hash is stored. Failed attempts are logged with the reason, client
address and route, never with the token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chargewarden.api.context import ApiContext, get_context
from chargewarden.api.problems import Problem
from chargewarden.security.tokens import split_lookup, token_matches
from chargewarden.store.records import OperatorRole

log = logging.getLogger("chargewarden.api.auth")

ROLE_RANK: dict[OperatorRole, int] = {
    OperatorRole.VIEWER: 0,
    OperatorRole.OPERATOR: 1,
    OperatorRole.ADMIN: 2,
}
# Longer than any token we issue; bounds the work an attacker can cause per request.
MAX_TOKEN_LENGTH = 512
REALM = 'Bearer realm="chargewarden"'

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="OperatorToken",
    description="Operator API token, created with `chargewarden operator add NAME --role ROLE`.",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated operator behind a request."""

    name: str
    role: OperatorRole

    def has(self, role: OperatorRole) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _unauthenticated(request: Request, reason: str, detail: str, *, invalid: bool,
                     operator: str | None = None) -> Problem:
    log.warning(
        "API authentication failed: %s (client=%s, %s %r%s)",
        reason, _client(request), request.method, request.url.path,
        f", operator={operator}" if operator else "",
    )
    challenge = REALM + (', error="invalid_token"' if invalid else "")
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


async def authenticate(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    ctx: ApiContext,
) -> Principal:
    if credentials is None:
        reason = "no bearer token" if "authorization" not in request.headers else (
            "Authorization header is not a bearer token")
        raise _unauthenticated(
            request, reason, "authentication required: send 'Authorization: Bearer <token>'",
            invalid=False)
    token = credentials.credentials.strip()
    lookup = split_lookup(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if lookup is None:
        raise _unauthenticated(request, "malformed token", "invalid token", invalid=True)
    record = await ctx.store.operators.find_by_lookup(lookup)
    if record is None:
        raise _unauthenticated(request, "unknown token", "invalid token", invalid=True)
    if not token_matches(token, record.token_hash):
        raise _unauthenticated(request, "token does not match", "invalid token", invalid=True,
                               operator=record.name)
    return Principal(name=record.name, role=OperatorRole(record.role))


def require(role: OperatorRole) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the request and demands at least ``role``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        ctx: Annotated[ApiContext, Depends(get_context)],
    ) -> Principal:
        principal = await authenticate(request, credentials, ctx)
        if not principal.has(role):
            log.warning(
                "API access denied: operator %s (role %s) needs role %s for %s %r (client=%s)",
                principal.name, principal.role, role, request.method, request.url.path,
                _client(request),
            )
            raise Problem(403, f"this needs the {role} role; you are {principal.role}")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Annotated[Principal, Depends(require(OperatorRole.VIEWER))]
Operator = Annotated[Principal, Depends(require(OperatorRole.OPERATOR))]
Admin = Annotated[Principal, Depends(require(OperatorRole.ADMIN))]
Context = Annotated[ApiContext, Depends(get_context)]
