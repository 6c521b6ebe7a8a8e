"""`chargewarden operator add`: API tokens for people and scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from chargewarden.api.operators import create_operator
from chargewarden.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    print_table,
    quiet_logging,
    run,
    settings_from,
    with_store,
)
from chargewarden.store import OperatorExists, Store
from chargewarden.store.records import OperatorRecord, OperatorRole

operator_app = typer.Typer(help="Operators of the HTTP API and their tokens.", no_args_is_help=True)


@operator_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Operator name (letters, digits, . _ @ -)")],
    role: Annotated[OperatorRole, typer.Option("--role", help="viewer, operator or admin")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create an operator; its API token is printed once and stored only as a hash."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)

    async def action(store: Store) -> tuple[OperatorRecord, str]:
        try:
            return await create_operator(store, name, role, actor="cli")
        except OperatorExists:
            raise CliError(f"operator {name!r} already exists") from None
        except ValueError as exc:
            raise CliError(str(exc)) from None

    record, token = run(with_store(settings, action))
    typer.echo(f"operator {record.name} ({record.role}) created")
    typer.echo(f"token: {token}")
    typer.echo("The token is shown once. Send it as 'Authorization: Bearer <token>'.")


@operator_app.command("list")
def list_operators(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List operators (never shows tokens)."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    operators = run(with_store(settings, lambda store: store.operators.list()))
    print_table(
        ["name", "role", "created"],
        [
            [o.name, o.role, o.created_at.isoformat(timespec="seconds") if o.created_at else ""]
            for o in operators
        ],
    )
