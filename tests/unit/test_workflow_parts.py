"""Pure parts of the workflows: commands per version, slot choice, progress, credential refs."""

from __future__ import annotations

from chargewarden.domain.station_commands import Command, ProfilePlan, commands_for
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.job_records import JobState
from chargewarden.workflows.fleet import progress_text
from chargewarden.workflows.rotation import credential_ref
from chargewarden.workflows.upgrade import choose_slot

V16, V201 = OcppVersion.V16, OcppVersion.V201
PLAN = ProfilePlan(csms_url="wss://csms.example:443/ocpp", slot=2, priority=(1, 3))


def test_PWD_01_PWD_02_credential_commands() -> None:
    assert commands_for(V16).set_credential("AB" * 20) == Command(
        "ChangeConfiguration", {"key": "AuthorizationKey", "value": "AB" * 20}
    )
    command = commands_for(V201).set_credential("x" * 40)
    item = command.payload["setVariableData"][0]
    assert command.action == "SetVariables"
    assert (item["component"]["name"], item["variable"]["name"]) == (
        "SecurityCtrlr",
        "BasicAuthPassword",
    )
    answer = {"setVariableResult": [{"attributeStatus": "RebootRequired"}]}
    assert commands_for(V201).change_status(command, answer) == "RebootRequired"
    assert commands_for(V16).change_status(command, {"status": "NotSupported"}) == "NotSupported"


def test_UPG_01_1_6_switch_is_one_change_configuration() -> None:
    assert commands_for(V16).profile_change(2, PLAN) == [
        Command("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    ]
    assert commands_for(V16).priority_query() is None
    assert commands_for(V16).reset() == Command("Reset", {"type": "Soft"})


def test_TC_A_19_2_0_1_network_profile_priority_and_reset() -> None:
    profile, priority, reset = commands_for(V201).profile_change(3, PLAN)
    assert profile.action == "SetNetworkProfile"
    assert profile.payload["configurationSlot"] == 2
    assert profile.payload["connectionData"]["securityProfile"] == 3
    assert profile.payload["connectionData"]["ocppCsmsUrl"] == PLAN.csms_url
    assert priority.payload["setVariableData"][0]["attributeValue"] == "2,1,3"
    assert reset == Command("Reset", {"type": "OnIdle"})


def test_slots_in_use_and_slot_choice() -> None:
    commands = commands_for(V201)
    answer = {"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "1, 3,x,1"}]}
    assert commands.slots_in_use(answer) == [1, 3]
    assert (
        commands.slots_in_use({"getVariableResult": [{"attributeStatus": "UnknownVariable"}]}) == []
    )
    assert choose_slot([1, 2, 4], None) == 3
    assert choose_slot([], None) == 1
    assert choose_slot([1], 7) == 7


def test_progress_text_and_credential_ref() -> None:
    text = progress_text({JobState.SUCCEEDED: 3, JobState.FAILED: 1, JobState.RUNNING: 2})
    assert text.startswith("4/6 finished") and "1 failed" in text and "2 running" in text
    assert credential_ref(None) is None
    ref = credential_ref("$argon2id$v=19$m=19456,t=2,p=1$salt$hash")
    assert ref is not None and len(ref) == 16 and "argon" not in ref
