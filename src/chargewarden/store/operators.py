"""Operators of the REST API and dashboard, found by the public part of their token."""

from __future__ import annotations

import builtins

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chargewarden.store.base import Repository
from chargewarden.store.errors import OperatorExists, StoreError
from chargewarden.store.mapping import operator_record, operator_values, utcnow
from chargewarden.store.models import OperatorRow
from chargewarden.store.records import OperatorRecord


class OperatorRepository(Repository):
    async def add(self, record: OperatorRecord) -> OperatorRecord:
        """Create an operator; OperatorExists if the name is taken."""
        stmt = (
            self._insert(OperatorRow)
            .values(**operator_values(record, utcnow()))
            .on_conflict_do_nothing(index_elements=[OperatorRow.name])
            .returning(OperatorRow)
        )
        async with self._transaction() as session:
            try:
                row = (await session.execute(stmt)).scalar_one_or_none()
            except IntegrityError:
                # Not the name (handled above), so the lookup prefix: the token generator
                # repeated itself, which must never pass silently.
                raise StoreError("token lookup already in use; generate a new token") from None
            if row is None:
                raise OperatorExists(f"operator {record.name!r} already exists")
            return operator_record(row)

    async def replace(self, record: OperatorRecord) -> OperatorRecord:
        """Create the operator, or give the existing one of that name this role and token.

        The old token stops working in the same statement.
        """
        values = operator_values(record, utcnow())
        stmt = (
            self._insert(OperatorRow)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[OperatorRow.name],
                set_={
                    "role": values["role"],
                    "token_lookup": values["token_lookup"],
                    "token_hash": values["token_hash"],
                },
            )
            .returning(OperatorRow)
        )
        async with self._transaction() as session:
            try:
                row = (await session.execute(stmt)).scalar_one()
            except IntegrityError:
                raise StoreError("token lookup already in use; generate a new token") from None
            return operator_record(row)

    async def find_by_lookup(self, token_lookup: str) -> OperatorRecord | None:
        """The operator whose token starts with this public lookup part, if any.

        The caller still has to compare the whole token's HMAC with ``token_hash``.
        """
        stmt = select(OperatorRow).where(OperatorRow.token_lookup == token_lookup)
        async with self._transaction() as session:
            row = await session.scalar(stmt)
            return operator_record(row) if row is not None else None

    async def get(self, name: str) -> OperatorRecord | None:
        async with self._transaction() as session:
            row = await session.scalar(select(OperatorRow).where(OperatorRow.name == name))
            return operator_record(row) if row is not None else None

    async def list(self) -> builtins.list[OperatorRecord]:
        async with self._transaction() as session:
            rows = await session.scalars(select(OperatorRow).order_by(OperatorRow.name))
            return [operator_record(row) for row in rows]
