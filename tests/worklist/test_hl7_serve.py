"""`manage.py serve` runs the HL7 listener on RADIOLOGY_HL7_PORT: an EHR's message is applied and acknowledged,
and /healthz reports the listener."""
import hl7
import pytest
from hl7.client import MLLPClient

from tests.worklist.hl7_fixtures import adt

pytestmark = pytest.mark.xdist_group("platform-process")


def test_serve_answers_hl7_on_its_port_and_healthz_shows_the_listener(running_platform):
    port = int(running_platform.env["RADIOLOGY_HL7_PORT"])

    with MLLPClient("127.0.0.1", port) as client:
        reply = client.send_message(adt("A04", control_id="SERVE1", mrn="HL7SERVE1", family="Served"))
    ack = hl7.parse(reply.strip(b"\x0b\x1c\r").decode())

    assert [str(field) for field in ack.segment("MSA")[1:3]] == ["AA", "SERVE1"]
    status, health = running_platform.health()
    assert status == 200
    assert health["components"]["hl7"]["status"] == "ok"
