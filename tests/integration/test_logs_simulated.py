"""End to end with our simulator (LOG-01, SIM-06, TC_079 / TC_N_35 / TC_N_25): the CSMS sends
GetLog, the simulated station uploads its own log over HTTPS (verifying the CSMS root) and
reports; the file the CSMS stores is that log. Both versions."""

from __future__ import annotations

from dataclasses import replace

import pytest
from jobkit import wait_job
from rawstation import V16, V201, register_test_station
from test_certificate_lifecycle import Running
from test_jobs_rotation import sim_config

from chargewarden.app import RunningCsms
from chargewarden.pki.material import csms_root_pem
from chargewarden.rpc.versions import OcppVersion
from chargewarden.store.job_records import JobState
from chargewarden.store.transfer_records import LogRequestState, LogType


@pytest.mark.parametrize("version", [V16, V201])
async def test_TC_079_TC_N_35_simulated_station_uploads_its_security_log(
    ca_csms: RunningCsms, version: OcppVersion
) -> None:
    csms, identity = ca_csms, f"LOG-SIM-{version.value}"
    assert csms.logs is not None and csms.files is not None
    await register_test_station(csms.store, identity, version, 1)
    config = replace(
        sim_config(csms, identity, version), csms_root_pem=csms_root_pem(csms.settings)
    )
    async with Running(config):
        job = await csms.logs.fetch(identity, LogType.SECURITY, actor="alice")
        done = await wait_job(csms, job.id, timeout=30)
        assert done.state is JobState.SUCCEEDED, done.message
        diagnostics = await csms.logs.fetch(identity, LogType.DIAGNOSTICS, actor="alice")
        assert (await wait_job(csms, diagnostics.id, timeout=30)).state is JobState.SUCCEEDED

    record = await csms.store.log_requests.get(job.params["request_id"])
    assert record is not None and record.state is LogRequestState.UPLOADED
    assert record.response_status == "Accepted" and record.station_filename
    assert "Uploading" in [h.status for h in record.history]
    assert record.stored_path is not None
    text = csms.files.storage.absolute(record.stored_path).read_text()
    assert any(line.endswith("StartupOfTheDevice") for line in text.splitlines()), text
    other = await csms.store.log_requests.get(diagnostics.params["request_id"])
    assert other is not None and other.stored_path is not None
    assert identity in csms.files.storage.absolute(other.stored_path).read_text()
