"""OCPP protocol versions and their WebSocket subprotocol names."""

from __future__ import annotations

from enum import StrEnum


class OcppVersion(StrEnum):
    V16 = "1.6"
    V201 = "2.0.1"

    @property
    def subprotocol(self) -> str:
        return "ocpp" + self.value

    @classmethod
    def from_subprotocol(cls, name: str) -> OcppVersion | None:
        for version in cls:
            if version.subprotocol == name:
                return version
        return None

    @classmethod
    def parse(cls, text: str) -> OcppVersion:
        """Accept '1.6', '2.0.1', 'ocpp1.6', 'ocpp2.0.1'; raise ValueError otherwise."""
        cleaned = text.strip().lower().removeprefix("ocpp")
        for version in cls:
            if version.value == cleaned:
                return version
        raise ValueError(f"unknown OCPP version {text!r}; expected 1.6 or 2.0.1")
