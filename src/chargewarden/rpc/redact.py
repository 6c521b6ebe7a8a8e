"""Copies of OCPP payloads that are safe to log or store as message traces (DESIGN.md §6).

The rules look at the shape of the data, not only at the action: the same secret turns up in
several messages (a 2.0.1 BasicAuthPassword in SetVariables, GetVariables and, from a faulty
station, NotifyReport; a 1.6 AuthorizationKey in ChangeConfiguration and GetConfiguration), so a
per-action list would miss the next one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

MASK = "***"

# Configuration keys / variables whose value is a credential: 1.6 security whitepaper
# AuthorizationKey, 2.0.1 SecurityCtrlr.BasicAuthPassword; any "...password" is caught below.
_SECRET_NAMES = frozenset({"authorizationkey", "basicauthpassword"})
# File-transfer URLs the CSMS hands out: their path holds a one-time token (LOG-01, FW-01).
_URL_KEYS = frozenset({"remoteLocation", "location"})


def _is_secret_name(name: object) -> bool:
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    return "password" in lowered or lowered in _SECRET_NAMES


def redact_payload(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `payload` with every credential replaced by "***".

    `action` is accepted so call sites read naturally and rules may be narrowed later; the
    current rules apply to every action.
    """
    return _redact_object(payload)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return _redact_object(value)
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


def _redact_url(url: str) -> str:
    """Scheme, host and port only: the path of a file-transfer URL carries its per-request
    token (GetLog remoteLocation, firmware location), an FTP URL may carry user:password@."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}/{MASK}"


def _redact_object(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: MASK if _is_secret_name(key) else _redact(item) for key, item in value.items()
    }
    for key in _URL_KEYS & out.keys():
        if isinstance(out[key], str):
            out[key] = _redact_url(out[key])
    # 1.6 ChangeConfiguration request and GetConfiguration configurationKey entries:
    # {"key": "AuthorizationKey", "value": "<secret>"}.
    if _is_secret_name(value.get("key")) and "value" in out:
        out["value"] = MASK
    # 2.0.1 SetVariableData / GetVariableResult ({"variable": {"name": ...}, "attributeValue"})
    # and NotifyReport ReportData ({"variable": ..., "variableAttribute": [{"value": ...}]}).
    variable = value.get("variable")
    if isinstance(variable, dict) and _is_secret_name(variable.get("name")):
        if "attributeValue" in out:
            out["attributeValue"] = MASK
        attributes = out.get("variableAttribute")
        if isinstance(attributes, list):
            out["variableAttribute"] = [
                {**item, "value": MASK} if isinstance(item, dict) and "value" in item else item
                for item in attributes
            ]
    # 2.0.1 SetNetworkProfile VPNType: "key" is the VPN shared secret, not a config key name.
    vpn = out.get("vpn")
    if isinstance(vpn, dict) and "key" in vpn:
        out["vpn"] = {**vpn, "key": MASK}
    return out
