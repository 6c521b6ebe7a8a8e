"""`chargewarden jobs list | show | cancel`, and following a job until it ends (also used by
`station rotate-password | upgrade`, cli/station_jobs.py). Everything goes through the running
server's API: the jobs run there, whether or not anyone is watching."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from chargewarden.api.job_models import MAX_JOB_ID
from chargewarden.cli.api_client import ApiClient, ApiUrlOption, api_client
from chargewarden.cli.common import ConfigOption, DataDirOption, fail, print_table
from chargewarden.store.job_records import JobKind, JobState

jobs_app = typer.Typer(
    help="Durable jobs (password rotations, profile upgrades, fleets): list, show, cancel.",
    no_args_is_help=True,
)

# Jobs take seconds to hours; twice a second is quick to notice and cheap for the server.
POLL_SECONDS = 0.5
# `jobs cancel` waits this long for the job to stop before it says how to follow it.
CANCEL_WAIT_SECONDS = 15.0
FINISHED = {str(s) for s in JobState if s.finished}
PAGE = 500
MAX_CHILD_ROWS = 200

JobArgument = Annotated[int, typer.Argument(help="Job id", min=1, max=MAX_JOB_ID)]


# ------------------------------------------------------------------------------- formatting


def when(value: str | None) -> str:
    """An API timestamp as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    return value[:19].replace("T", " ") if value else "-"


def operation(job: dict[str, Any]) -> str:
    """What the job (or each child of a fleet job) does: 'rotate-password', 'upgrade-profile
    to 3'."""
    params = job.get("params") or {}
    kind = params.get("operation") if job.get("kind") == JobKind.FLEET else job.get("kind")
    return f"{kind}" + (f" to {params['to']}" if params.get("to") is not None else "")


def what(job: dict[str, Any]) -> str:
    """operation(), marked 'fleet: ' for a fleet job."""
    return f"fleet: {operation(job)}" if job.get("kind") == JobKind.FLEET else operation(job)


def state_text(job: dict[str, Any]) -> str:
    state = str(job.get("state"))
    cancelling = job.get("cancel_requested") and state not in FINISHED
    return state + (" (cancel requested)" if cancelling else "")


def describe(job: dict[str, Any]) -> str:
    """'rotate-password of station CP-1', 'upgrade-profile of station CP-1 to 3'."""
    station = job.get("station")
    if not station:
        return what(job)
    to = (job.get("params") or {}).get("to")
    return f"{job.get('kind')} of station {station}" + (f" to {to}" if to is not None else "")


def trail_line(step: dict[str, Any]) -> str:
    detail = step.get("detail")
    line = f"  {when(step.get('at'))}  {step.get('step')}: {step.get('outcome')}"
    return line + (f" - {detail}" if detail else "")


def follow_hint(job_id: object) -> str:
    return f"chargewarden jobs show {job_id} --follow"


def finish(job: dict[str, Any]) -> None:
    """The last line: success on stdout, otherwise one `error:` line and exit 1."""
    message = job.get("message") or ""
    if job.get("state") == JobState.SUCCEEDED:
        typer.echo(f"job {job['id']} succeeded: {message}".rstrip(": "))
        return
    verb = "was cancelled" if job.get("state") == JobState.CANCELLED else "failed"
    fail(f"job {job['id']} {verb}: {message}".rstrip(": "))


# -------------------------------------------------------------------------------- following


@contextlib.contextmanager
def interruptible(job_id: object) -> Iterator[None]:
    """Ctrl-C stops the watching, never the job: say so, and how to pick it up again."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(
            f"\nstopped waiting; job {job_id} goes on in the server. Follow it with "
            f"`{follow_hint(job_id)}`, stop it with `chargewarden jobs cancel {job_id}`",
            err=True,
        )
        raise typer.Exit(130) from None


def detail(api: ApiClient, job_id: object) -> dict[str, Any]:
    job: dict[str, Any] = api.get(f"/api/jobs/{job_id}")
    return job


def follow_single(api: ApiClient, job: dict[str, Any], seen: int = 0) -> dict[str, Any]:
    """Print the job's trail lines as they appear (and its message when only that changes)
    until it ends; returns the finished job. ``seen``: trail lines already shown."""
    message = None
    while True:
        steps = job.get("steps") or []
        for step in steps[seen:]:
            typer.echo(trail_line(step))
            message = step.get("detail")
        seen = len(steps)
        if job.get("state") in FINISHED:
            return job
        # A job waiting at the same step adds no trail line, but its message may move on
        # ("... (overdue)"): show that once.
        if job.get("message") and job.get("message") != message:
            message = job["message"]
            typer.echo(f"  {'':19}  ... {message}")
        time.sleep(POLL_SECONDS)
        job = detail(api, job["id"])


def _total(job: dict[str, Any]) -> int:
    return sum((job.get("children") or {}).values())


def _finished(job: dict[str, Any]) -> int:
    counts = job.get("children") or {}
    return sum(n for state, n in counts.items() if state in FINISHED)


def follow_fleet(api: ApiClient, job: dict[str, Any]) -> dict[str, Any]:
    """A progress bar over the children on a terminal, else a line per change; returns the
    finished fleet job."""
    if sys.stderr.isatty():
        with typer.progressbar(
            length=max(_total(job), 1), label=f"fleet job {job['id']}", file=sys.stderr
        ) as bar:
            done = 0
            while True:
                now = _finished(job)
                bar.update(now - done)
                done = now
                if job.get("state") in FINISHED:
                    return job
                time.sleep(POLL_SECONDS)
                job = detail(api, job["id"])
    shown = None
    while True:
        progress = job.get("progress")
        if progress != shown:
            typer.echo(f"  {progress}")
            shown = progress
        if job.get("state") in FINISHED:
            return job
        time.sleep(POLL_SECONDS)
        job = detail(api, job["id"])


def follow(api: ApiClient, job: dict[str, Any], seen: int = 0) -> dict[str, Any]:
    """Follow a job (as returned by GET /api/jobs/ID) until it ends; Ctrl-C leaves it running."""
    with interruptible(job["id"]):
        if job.get("kind") == JobKind.FLEET:
            final = follow_fleet(api, job)
            summarize_fleet(api, final)
            return final
        return follow_single(api, job, seen)


def children(api: ApiClient, job_id: object) -> list[dict[str, Any]]:
    """Every child of a fleet job, oldest first."""
    found: list[dict[str, Any]] = []
    while True:
        page = api.get("/api/jobs", parent=job_id, limit=PAGE, offset=len(found))
        found.extend(page)
        if len(page) < PAGE:
            return sorted(found, key=lambda child: int(child["id"]))


def print_children(rows: list[dict[str, Any]]) -> None:
    print_table(
        ["job", "station", "state", "step", "message"],
        [
            [c.get("id"), c.get("station"), c.get("state"), c.get("step"), c.get("message")]
            for c in rows[:MAX_CHILD_ROWS]
        ],
    )
    if len(rows) > MAX_CHILD_ROWS:
        typer.echo(f"... and {len(rows) - MAX_CHILD_ROWS} more")


def summarize_fleet(api: ApiClient, job: dict[str, Any]) -> None:
    """Every station of a finished fleet that did not succeed (the verdict follows)."""
    unsuccessful = [c for c in children(api, job["id"]) if c.get("state") != JobState.SUCCEEDED]
    if unsuccessful:
        typer.echo("stations that did not succeed:")
        print_children(unsuccessful)


# -------------------------------------------------------------------------------- commands


@jobs_app.command("list")
def list_jobs(
    state: Annotated[
        JobState | None, typer.Option("--state", help="Only jobs in this state")
    ] = None,
    station: Annotated[
        str | None, typer.Option("--station", help="Every job of this station (fleet children too)")
    ] = None,
    kind: Annotated[JobKind | None, typer.Option("--kind", help="Only jobs of this kind")] = None,
    parent: Annotated[
        int | None, typer.Option("--parent", min=1, help="The children of this fleet job")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Jobs, newest first: single-station and fleet jobs (not fleet children unless asked)."""
    with api_client(config, data_dir, api_url) as api:
        items = api.get(
            "/api/jobs",
            state=state.value if state else None,
            kind=kind.value if kind else None,
            station=station,
            parent=parent,
            limit=limit,
        )
    if not items:
        typer.echo("no jobs")
        return
    print_table(
        ["id", "what", "station", "state", "step", "actor", "updated (UTC)", "message"],
        [
            [
                j.get("id"),
                what(j),
                j.get("station") or "-",
                state_text(j),
                j.get("step"),
                j.get("actor"),
                when(j.get("updated_at")),
                (j.get("message") or "")[:100],
            ]
            for j in items
        ],
    )


def print_job(job: dict[str, Any]) -> None:
    params = job.get("params") or {}
    rows = [
        ("job", f"{job['id']}  {describe(job)}"),
        ("state", state_text(job)),
        ("step", job.get("step")),
        ("message", job.get("message") or "-"),
        ("started by", job.get("actor")),
        ("created (UTC)", when(job.get("created_at"))),
        ("finished (UTC)", when(job.get("finished_at"))),
    ]
    if job.get("parent_id") is not None:
        rows.append(("part of", f"fleet job {job['parent_id']}"))
    if params:
        rows.append(("asked for", ", ".join(f"{k}={v}" for k, v in sorted(params.items()))))
    if job.get("deadline") and job.get("state") not in FINISHED:
        rows.append(("deadline (UTC)", when(job.get("deadline"))))
    if job.get("kind") == JobKind.FLEET:
        rows.append(("progress", job.get("progress")))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        typer.echo(f"{key.ljust(width)}  {value}")
    typer.echo("trail (UTC):")
    for step in job.get("steps") or []:
        typer.echo(trail_line(step))


@jobs_app.command("show")
def show(
    job_id: JobArgument,
    follow_it: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep showing progress until the job ends"),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """A job: what it does, where it is, its trail with times; a fleet job's stations too.

    With --follow: exit 0 once it succeeds, 1 if it fails or is cancelled.
    """
    with api_client(config, data_dir, api_url) as api:
        job = detail(api, job_id)
        print_job(job)
        if job.get("kind") == JobKind.FLEET and not follow_it:
            rows = children(api, job_id)
            if rows:
                typer.echo("stations:")
                print_children(rows)
        if not follow_it:
            return
        final = follow(api, job, seen=len(job.get("steps") or []))
    finish(final)


@jobs_app.command("cancel")
def cancel(
    job_id: JobArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    api_url: ApiUrlOption = None,
) -> None:
    """Cancel a job (a fleet job: all its unfinished stations).

    It stops when its current step ends; a pending credential or profile is withdrawn.
    """
    with api_client(config, data_dir, api_url) as api:
        api.post(f"/api/jobs/{job_id}/cancel")
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        with interruptible(job_id):
            job = detail(api, job_id)
            while job.get("state") not in FINISHED and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
                job = detail(api, job_id)
    if job.get("state") in FINISHED:
        typer.echo(f"job {job_id} {job.get('state')}: {job.get('message') or ''}".rstrip(": "))
        return
    typer.echo(
        f"job {job_id}: cancel requested; it stops when its current step ends "
        f"(follow it: {follow_hint(job_id)})"
    )
