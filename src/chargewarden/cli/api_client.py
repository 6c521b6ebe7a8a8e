"""How CLI commands reach the running server: a small synchronous client of the HTTP API.

The API URL and token come from ``--api-url`` / ``CHARGEWARDEN_API_URL`` and
``CHARGEWARDEN_API_TOKEN`` when given, else from ``<data_dir>/run/cli.json``, which
``chargewarden serve`` writes at start (api.local_token). Every failure is a one-line CliError;
the token is never printed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from chargewarden.api.local_token import LocalAccessError, cli_file, read_local_access
from chargewarden.cli.common import CliError, fail, quiet_logging, settings_from
from chargewarden.config import Settings

API_URL_ENV = "CHARGEWARDEN_API_URL"
API_TOKEN_ENV = "CHARGEWARDEN_API_TOKEN"  # noqa: S105 - a variable name, not a secret
NOT_RUNNING = "is `chargewarden serve` running?"
# Station commands wait for the station (call_timeout, up to 600 s, several calls per command).
TIMEOUT = httpx.Timeout(660.0, connect=5.0)
MAX_DETAIL = 300

ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar=API_URL_ENV,
        show_envvar=True,
        help="URL of the running server's API (default: from <data-dir>/run/cli.json)",
    ),
]


class ApiError(CliError):
    """The API answered with an error; the message is the problem's detail."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def segment(value: str) -> str:
    """One URL path segment (a station identity, a serial)."""
    return quote(value, safe="")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 1] + "…"


def resolve(data_dir: Path, api_url: str | None) -> tuple[str, str, str]:
    """(API URL, token, where the token came from) from the flag/environment, else from the
    server's run file."""
    token = os.environ.get(API_TOKEN_ENV, "").strip() or None
    source = API_TOKEN_ENV
    try:
        local = read_local_access(data_dir)
    except LocalAccessError as exc:
        raise CliError(f"{exc}; {NOT_RUNNING}") from None
    url = api_url.strip() if api_url else None
    if url is None:
        if local is None:
            raise CliError(
                f"no running server found: {cli_file(data_dir)} does not exist (is `chargewarden "
                f"serve` running, with this --data-dir? or set {API_URL_ENV} and {API_TOKEN_ENV})"
            )
        url = local.api_url
    if token is None:
        # The run file's token goes only to the server that wrote it, never elsewhere.
        if local is None or local.api_url.rstrip("/") != url.rstrip("/"):
            raise CliError(f"no API token for {url}: set {API_TOKEN_ENV}")
        token, source = local.token, str(local.path)
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the API URL must start with http:// or https://, got {url!r}")
    return url.rstrip("/"), token, source


class ApiClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        settings: Settings | None = None,
        token_source: str = API_TOKEN_ENV,
    ) -> None:
        self.base_url = base_url
        self.token_source = token_source
        self.settings = settings  # the CLI's own settings (--config/--data-dir), if loaded
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=TIMEOUT,
            follow_redirects=False,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        return self.request("POST", path, json=body or {}, params=params)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params)

    def stream(self, path: str) -> Any:
        """A streamed GET of a file (context manager yielding the httpx response); the
        caller checks the status, since the body is not JSON."""
        return self._http.stream("GET", path, headers={"Accept": "*/*"})

    def request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=query)
        except httpx.ConnectError:
            raise CliError(f"cannot connect to the API at {self.base_url}: {NOT_RUNNING}") from None
        except httpx.TimeoutException:
            raise CliError(f"the API at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot talk to the API at {self.base_url} ({type(exc).__name__}): {NOT_RUNNING}"
            ) from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise CliError(
                    f"the API at {self.base_url} sent a response that is not JSON"
                ) from None
        raise _error(response, self.base_url, self.token_source)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _detail(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    return _one_line(detail) if isinstance(detail, str) and detail else None


def _error(response: httpx.Response, base_url: str, token_source: str) -> ApiError:
    status = response.status_code
    detail = _detail(response)
    if status == 401:
        if token_source == API_TOKEN_ENV:
            return ApiError(401, f"the API at {base_url} refused the token in {API_TOKEN_ENV}")
        return ApiError(
            401,
            f"the API at {base_url} refused the token in {token_source}: is the server that "
            "wrote it still running? (restart `chargewarden serve` to write a new one)",
        )
    if status == 403:
        return ApiError(403, f"not allowed: {detail or 'the token lacks the role for this'}")
    return ApiError(status, detail or f"the API answered HTTP {status}")


@contextlib.contextmanager
def api_client(
    config: Path | None, data_dir: Path | None, api_url: str | None
) -> Iterator[ApiClient]:
    """A client for a command; any CliError inside becomes one `error:` line and exit 1."""
    settings = settings_from(config, data_dir)
    quiet_logging(settings)
    try:
        url, token, source = resolve(settings.data_dir, api_url)
        with ApiClient(url, token, settings, source) as client:
            yield client
    except CliError as exc:
        fail(str(exc))


@contextlib.contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner on a terminal while the station answers; nothing when output is redirected."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
