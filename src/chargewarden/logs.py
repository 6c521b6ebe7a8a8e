"""Logging: human text on a terminal, one JSON object per line for log shippers (EVT-03).

Nothing here knows about secrets because nothing that logs is handed one: credentials are
verified in security/ and never passed to a logger, and RPC traces go through rpc.redact.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed with extra= and is structured data.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Every extra= field becomes a key (security events: security_event, event_id, station,
        # peer, critical, source, ...), so a SIEM can match on fields, not on the message text.
        # setdefault: an extra field must not overwrite time/level/logger/message.
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, ensure_ascii=False)


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def wire_logger(name: str) -> logging.Logger:
    """A logger for websockets connections that emits only warnings and errors.

    websockets logs every handshake header (Authorization included) and every frame (a
    ChangeConfiguration AuthorizationKey included) at DEBUG, and every connection at INFO;
    passing this logger to serve()/connect() drops those records whatever level the
    application runs at. Our own gateway logs say who connected, without the secrets.
    """
    logger = logging.getLogger(name)
    if _warnings_only not in logger.filters:
        logger.addFilter(_warnings_only)
    return logger


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # websockets logs every failed handshake at INFO with the client's request line; our own
    # security events already say what happened, with the reason.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
