"""API operators: people and programs holding a bearer token with a role.

``create_operator`` is shared by the CLI (``chargewarden operator add NAME --role R``) and any
future admin endpoint. The token is returned once; only its HMAC is stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chargewarden.security.tokens import new_token
from chargewarden.store.errors import OperatorExists
from chargewarden.store.records import AuditRecord, OperatorRecord, OperatorRole

if TYPE_CHECKING:
    from chargewarden.store import Store

OPERATOR_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class OperatorError(ValueError):
    """An operator cannot be created; the message says why and is safe to show."""


def validate_operator_name(name: str) -> str:
    if not isinstance(name, str) or OPERATOR_NAME.fullmatch(name) is None:
        raise OperatorError(
            "operator name must be 1-64 characters of letters, digits, '.', '_', '@' or '-'")
    return name


async def create_operator(
    store: Store, name: str, role: OperatorRole | str, *, actor: str
) -> tuple[OperatorRecord, str]:
    """Create an operator and return (record, token). The token is shown this once.

    Raises OperatorError for an invalid name or role, or when the name is taken.
    """
    validate_operator_name(name)
    try:
        role = OperatorRole(role)
    except ValueError:
        choices = ", ".join(r.value for r in OperatorRole)
        raise OperatorError(f"unknown role {role!r}; expected one of {choices}") from None
    token, lookup, token_hash = new_token()
    record = OperatorRecord(name=name, role=role, token_lookup=lookup, token_hash=token_hash)
    try:
        stored = await store.operators.add(record)
    except OperatorExists as exc:
        raise OperatorError(f"an operator named {name!r} already exists") from exc
    if isinstance(stored, OperatorRecord):
        record = stored
    await store.audit.add(
        AuditRecord(actor=actor, action="operator.add", target=name, details={"role": role.value})
    )
    return record, token
