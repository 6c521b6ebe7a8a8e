"""OCPP 2.0.1 network connection profiles of the simulated station (B09, B10, A05), sans I/O.

A 2.0.1 station keeps its connection settings in numbered configuration slots
(SetNetworkProfile) and connects with the first slot of OCPPCommCtrlr.NetworkConfigurationPriority
when it boots, falling back along that list when a slot does not work (B10). Raising the
security profile is done this way (TC_A_19): a new slot with the higher profile, that slot first
in the priority list, a reboot. `NetworkConfiguration` holds the slots, the priority list, the
slot in use and the highest security profile the station has proven it can connect with; the
station never connects below that one (A00.FR.005, B09.FR.04), so the only way down is the
fallback from a higher profile that never worked.

Nothing here reads a clock, logs or sends; `security` turns OCPP calls into these methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

Payload = dict[str, Any]

# The scheme each security profile runs over: 2 and 3 over TLS only, 0 and 1 without.
_SCHEME_OF_PROFILE = {0: "ws", 1: "ws", 2: "wss", 3: "wss"}
DEFAULT_MESSAGE_TIMEOUT = 30  # s; Part 2 suggests 30 as a starting point
DEFAULT_INTERFACE = "Wired0"


class Rejection(NamedTuple):
    """Why a change is refused: a statusInfo reasonCode (at most 20 characters) and a text
    that never contains a URL (it may carry a user name and password) or a secret."""

    code: str
    info: str


@dataclass(frozen=True)
class NetworkSlot:
    """One configuration slot (the parts of NetworkConnectionProfileType the station uses; APN
    and VPN settings are not simulated and not kept, they may hold passwords)."""

    url: str  # ocppCsmsUrl, without the identity (the station appends it)
    security_profile: int
    message_timeout: int = DEFAULT_MESSAGE_TIMEOUT
    interface: str = DEFAULT_INTERFACE

    def __repr__(self) -> str:
        # The URL may carry a user name and password: show only where it goes.
        return f"NetworkSlot(profile={self.security_profile}, to={_where(self.url)!r})"

    def to_json(self) -> Payload:
        return {
            "url": self.url,
            "security_profile": self.security_profile,
            "message_timeout": self.message_timeout,
            "interface": self.interface,
        }

    @classmethod
    def from_json(cls, data: Any) -> NetworkSlot:
        """Raises ValueError for anything this module would not have written."""
        if not isinstance(data, dict):
            raise ValueError("a slot must be an object")
        slot = cls(
            url=data.get("url"),
            security_profile=data.get("security_profile"),
            message_timeout=data.get("message_timeout", DEFAULT_MESSAGE_TIMEOUT),
            interface=data.get("interface", DEFAULT_INTERFACE),
        )
        types_ok = (
            isinstance(slot.url, str)
            and _is_int(slot.security_profile)
            and _is_int(slot.message_timeout)
            and isinstance(slot.interface, str)
        )
        if not types_ok or slot.security_profile not in _SCHEME_OF_PROFILE:
            raise ValueError("a slot needs url, security_profile 0..3, message_timeout")
        # The URL is not checked again: slot 1 holds the provisioned one as it was given.
        return slot


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _where(url: str) -> str:
    try:
        parsed = parse_uri(url)
    except (InvalidURI, ValueError):
        return "?"
    return f"{'wss' if parsed.secure else 'ws'}://{parsed.host}:{parsed.port}"


def url_problem(url: str, security_profile: int) -> Rejection | None:
    """A CSMS URL the station cannot use with that profile: not ws/wss, the wrong one of the
    two (profiles 0/1 over ws, 2/3 over wss), or a query or fragment (the identity is appended
    as the last path segment)."""
    try:
        parsed = parse_uri(url)
    except (InvalidURI, ValueError):
        return Rejection("InvalidURL", "ocppCsmsUrl is not a ws:// or wss:// URL")
    wanted = _SCHEME_OF_PROFILE[security_profile]
    if ("wss" if parsed.secure else "ws") != wanted:
        return Rejection(
            "InvalidURL", f"SecurityProfile {security_profile} needs a {wanted}:// URL"
        )
    if "?" in url or "#" in url:
        return Rejection(
            "InvalidURL", "ocppCsmsUrl must have no query or fragment (the identity is appended)"
        )
    return None


def connection_data_problem(data: Payload) -> Rejection | None:
    """connectionData this station cannot use (the schema has been checked already)."""
    if data.get("ocppVersion") != "OCPP20":
        return Rejection("InvalidNetworkConf", "ocppVersion must be OCPP20")
    if data.get("ocppTransport") != "JSON":
        return Rejection("InvalidNetworkConf", "ocppTransport must be JSON")
    profile = data.get("securityProfile")
    if not _is_int(profile) or profile not in _SCHEME_OF_PROFILE:
        return Rejection("InvalidSecurityLevel", "securityProfile must be 0..3")
    return url_problem(str(data.get("ocppCsmsUrl", "")), profile)


def slot_from_connection_data(data: Payload) -> NetworkSlot:
    return NetworkSlot(
        url=data["ocppCsmsUrl"],
        security_profile=data["securityProfile"],
        message_timeout=data.get("messageTimeout", DEFAULT_MESSAGE_TIMEOUT),
        interface=data.get("ocppInterface", DEFAULT_INTERFACE),
    )


def parse_priority(text: str) -> tuple[int, ...] | None:
    """NetworkConfigurationPriority: comma-separated slot numbers, first used first, each once."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None  # also catches "" and "1,,2"
    slots = tuple(int(part) for part in parts)
    return slots if len(set(slots)) == len(slots) else None


class SlotChange(NamedTuple):
    """The station moved to another slot after a failed connection attempt."""

    from_slot: int
    from_profile: int
    to_slot: int
    to_profile: int


class NetworkConfiguration:
    """Slots 1..`count`, the priority list, the slot in use, and `floor`: the highest security
    profile the station has connected with (the provisioned one to begin with)."""

    def __init__(self, count: int, first: NetworkSlot) -> None:
        self.count = count
        self.slots: dict[int, NetworkSlot] = {1: first}
        self.priority: tuple[int, ...] = (1,)
        self.current = 1
        self.floor = first.security_profile

    def __repr__(self) -> str:
        return (
            f"NetworkConfiguration(current={self.current}, priority={self.priority_text!r}, "
            f"floor={self.floor}, slots={sorted(self.slots)})"
        )

    @property
    def slot(self) -> NetworkSlot:
        """The slot the station connects with now."""
        return self.slots[self.current]

    @property
    def priority_text(self) -> str:
        return ",".join(str(number) for number in self.priority)

    def usable(self, number: int) -> bool:
        """A slot the station may connect with: configured, and not below the proven profile."""
        slot = self.slots.get(number)
        return slot is not None and slot.security_profile >= self.floor

    # ---- changes by the CSMS --------------------------------------------------------------

    def slot_problem(self, number: int, data: Payload) -> Rejection | None:
        """Why SetNetworkProfile(number, data) must be Rejected (B09.FR.02/04), if it must."""
        if not 1 <= number <= self.count:
            return Rejection("InvalidConfSlot", f"configurationSlot must be 1..{self.count}")
        if number == self.current:
            return Rejection("InvalidConfSlot", f"slot {number} is the one in use")
        problem = connection_data_problem(data)
        if problem is not None:
            return problem
        if data["securityProfile"] < self.floor:
            return Rejection(
                "NoSecurityDowngrade",
                f"securityProfile {data['securityProfile']} is below the station's {self.floor}",
            )
        return None

    def store(self, number: int, slot: NetworkSlot) -> None:
        """Keep an accepted profile; it is used from the next boot on (B09.FR.01)."""
        self.slots[number] = slot

    def priority_problem(self, slots: tuple[int, ...]) -> str | None:
        for number in slots:
            if number not in self.slots:
                return f"slot {number} is empty"
            if self.slots[number].security_profile < self.floor:
                return f"slot {number} has a lower security profile than the station's"
        return None

    def set_priority(self, slots: tuple[int, ...]) -> None:
        """Takes effect at the next boot, like the slots themselves."""
        self.priority = slots

    # ---- connecting -----------------------------------------------------------------------

    def restart(self) -> NetworkSlot:
        """Boot: use the first usable slot of the priority list (B10)."""
        for number in self.priority:
            if self.usable(number):
                self.current = number
                break
        return self.slot

    def on_connected(self) -> bool:
        """A connection with the current slot was admitted. True when that proves a higher
        profile: it becomes the floor, and slots below it leave the priority list (so a
        GetVariables after TC_A_19 no longer lists the old slot)."""
        profile = self.slot.security_profile
        if profile <= self.floor:
            return False
        self.floor = profile
        kept = tuple(number for number in self.priority if self.usable(number))
        self.priority = kept or (self.current,)
        return True

    def on_connect_failed(self) -> SlotChange | None:
        """Move to the next usable slot of the priority list (after the last: the first
        again), or stay when there is no other."""
        order = [number for number in self.priority if self.usable(number)]
        if not order:
            return None
        if self.current in order:
            following = order[(order.index(self.current) + 1) % len(order)]
        else:
            following = order[0]
        if following == self.current:
            return None
        before, before_profile = self.current, self.slot.security_profile
        self.current = following
        return SlotChange(before, before_profile, following, self.slot.security_profile)

    # ---- persistence ----------------------------------------------------------------------

    def to_json(self) -> Payload:
        return {
            "slots": {str(number): slot.to_json() for number, slot in sorted(self.slots.items())},
            "priority": list(self.priority),
            "current": self.current,
            "floor": self.floor,
        }

    @classmethod
    def from_json(cls, count: int, data: Any) -> NetworkConfiguration:
        """Raises ValueError for state this module would not have written (or for slots beyond
        `count`, when the configuration now has fewer)."""
        if not isinstance(data, dict) or not isinstance(data.get("slots"), dict):
            raise ValueError("network: slots missing")
        slots: dict[int, NetworkSlot] = {}
        for key, value in data["slots"].items():
            if not (key.isascii() and key.isdigit() and 1 <= int(key) <= count):
                raise ValueError(f"network: a slot number is not in 1..{count} (network_slots)")
            slots[int(key)] = NetworkSlot.from_json(value)
        priority = data.get("priority")
        current, floor = data.get("current"), data.get("floor")
        if (
            not isinstance(priority, list)
            or not priority
            or not all(_is_int(n) and n in slots for n in priority)
            or len(set(priority)) != len(priority)
            or not _is_int(current)
            or current not in slots
            or not _is_int(floor)
            or floor not in _SCHEME_OF_PROFILE
        ):
            raise ValueError("network: priority, current slot or floor invalid")
        network = cls(count, slots[current])
        network.slots, network.priority = slots, tuple(priority)
        network.current, network.floor = current, floor
        if not network.usable(current):
            raise ValueError("network: the current slot is below the proven profile")
        return network
